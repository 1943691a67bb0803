"""Fixtures every kind of test may use: a real `fraudstream serve` on a free port, a real browser."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from browsers import chromium
from servers import RunningServer, start_server, stop


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernels() -> None:
    """The engine's kernels compiled before any test starts a server (`make install` compiled them,
    but an edit to a kernel since asks again): a server that finds them uncompiled compiles them
    before it is ready (about a minute), longer than the tests' readiness waits. A second or two
    when they are compiled already."""
    subprocess.run([sys.executable, "-m", "fraudstream", "warmup"], check=True, capture_output=True)


@pytest.fixture
def run_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start `fraudstream serve` with environment ``overrides`` (FRAUDSTREAM_ names) on a free port,
    keys off and a test card key unless overridden, and wait until it is ready; stopped afterwards."""
    started: list[RunningServer] = []

    def start(**overrides: str) -> RunningServer:
        server = start_server(tmp_path / f"server-{len(started)}", **overrides)
        started.append(server)
        return server

    yield start
    for server in started:
        stop(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, for the tests of one module (see tests/browsers.py)."""
    with chromium() as found:
        yield found
