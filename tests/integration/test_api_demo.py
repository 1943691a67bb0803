"""`fraudstream demo` for real: a subprocess that serves, feeds itself traffic, reports, stops on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_demo_serves_live_traffic_prints_a_summary_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDSTREAM_")}
    command = [sys.executable, "-m", "fraudstream", "demo", "--port", str(port), "--rate", "50",
               "--data-dir", str(tmp_path / "data")]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        stats: dict[str, int] = {}
        while not (stats.get("transactions", 0) > 0 and "decisions/s" in log.read_text()):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no live traffic within 90 s:\n{log.read_text()}"
            with contextlib.suppress(httpx.HTTPError):  # not listening yet
                # Demo mode: no API key needed.
                stats = httpx.get(f"{url}/v1/stats", timeout=2).json()
            time.sleep(0.2)
        output = log.read_text()
        assert f"fraudstream demo is live: {url}" in output
        assert "demo mode" in output
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    assert "stopped cleanly" in output
    assert "Traceback" not in output
    # The last snapshot, written on the way out, holds every stored transaction: nothing to replay.
    with sqlite3.connect(tmp_path / "data" / "fraudstream.db") as connection:
        last_seq = connection.execute("select max(seq) from transactions").fetchone()[0]
    snapshots = sorted((tmp_path / "data").rglob("state-*.bin"))
    assert snapshots[-1].name == f"state-{last_seq:012d}.bin"
    # Ctrl-C does not wait for the demo's models (tens of seconds of training); a model is in the
    # registry whole, or not at all.
    for model in (tmp_path / "data" / "models").glob("[!.]*"):
        assert (model / "metadata.json").is_file(), model
