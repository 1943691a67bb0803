"""`fraudstream serve` as a subprocess, for the tests that need a real server (see `run_server`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RunningServer:
    """A `fraudstream serve` process on a free loopback port, its stderr written to ``log_path``."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def log(self) -> str:
        """What the server wrote to stderr, all of it: the server is stopped first if it still runs."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(30)
        return self.log_path.read_text(errors="replace")


def start_server(folder: Path, **overrides: str | None) -> RunningServer:
    """Start `fraudstream serve` with its data and log in ``folder``, keys off, a test card key and
    JSON logs unless ``overrides`` (FRAUDSTREAM_ names, lower case; None to leave a variable unset)
    say otherwise; wait until ready.

    The log goes to a file, not a pipe: a server that logs more than a pipe holds would block."""
    port = free_port()
    env = {
        **os.environ,
        "FRAUDSTREAM_DATA_DIR": str(folder / "data"),
        "FRAUDSTREAM_CARD_KEY": "test-card-key",
        "FRAUDSTREAM_API_KEYS_ENABLED": "false",
        "FRAUDSTREAM_LOG_FORMAT": "json",
        **{f"FRAUDSTREAM_{name.upper()}": value for name, value in overrides.items() if value is not None},
        "FRAUDSTREAM_PORT": str(port),
    }
    for name in [name for name, value in overrides.items() if value is None]:
        env.pop(f"FRAUDSTREAM_{name.upper()}", None)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "fraudstream", "serve"], env=env, stderr=log)
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            process.wait(10)
            pytest.fail(f"the server did not become ready: {log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    """Poll ``condition`` every 0.1 s until it holds; fail, naming ``what``, after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout_s} s for {what}"
        time.sleep(0.1)


def sink_failing(server: RunningServer, sink: str) -> bool:
    """/readyz says 200 "degraded" with ``sink`` failing: the server decides on, the output waits."""
    ready = httpx.get(f"{server.url}/readyz", timeout=5)
    body = ready.json()
    return (
        ready.status_code == 200
        and body["status"] == "degraded"
        and body["sinks"][sink]["state"] == "failing"
    )


def stop(server: RunningServer) -> None:
    """SIGTERM, then SIGKILL if the server has not stopped within 15 s."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(10)


@contextmanager
def serving_in_thread(app: Any) -> Iterator[int]:
    """``app`` served by uvicorn in a thread of this process on a free loopback port, ready when the
    port is yielded (for tests that also look inside the app's service); stopped afterwards."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not become ready in 30 s"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
