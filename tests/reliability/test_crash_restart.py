"""kill -9 under load: every acknowledged transaction has exactly one decision, and features go on."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from factories import transaction, transaction_batch
from fraudstream.core.engine import Engine
from servers import free_port

pytestmark = pytest.mark.reliability

#: Payments of one user dated in 2025 (as the README's example payloads are), among current-dated
#: traffic of everyone else: the last one is sent after the restart.
DATED_2025 = [
    transaction(
        f"dated-2025-{k}",
        "user-dated-2025",
        amount,
        timestamp=f"2025-03-01T10:0{k}:00Z",
        lat=48.85 + k / 100,
        lon=2.35,
    )
    for k, amount in enumerate([20.0, 35.0, 50.0, 80.0])
]


def uninterrupted_key_features(payments: list[dict[str, object]]) -> dict[str, float | None]:
    """The key features of the last of ``payments`` from an engine that saw them all, in order, and
    nothing else: a user's features depend on its own events only."""
    times = [int(datetime.fromisoformat(str(p["timestamp"])).timestamp() * 1000) for p in payments]
    batch = transaction_batch([{**p, "timestamp": ms} for p, ms in zip(payments, times)])
    return Engine().score(batch).key_features(len(payments) - 1)


def snapshots_after(database: Path, seq: int) -> int:
    with sqlite3.connect(database) as connection:
        return int(
            connection.execute("SELECT count(*) FROM snapshots WHERE last_seq > ?", (seq,)).fetchone()[0]
        )


@contextmanager
def server(data_dir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "FRAUDSTREAM_DATA_DIR": str(data_dir),
        "FRAUDSTREAM_CARD_KEY": "crash-test-key",
        "FRAUDSTREAM_API_KEYS_ENABLED": "false",
        "FRAUDSTREAM_PORT": str(port),
        "FRAUDSTREAM_SNAPSHOT_INTERVAL_S": "0.5",
        "FRAUDSTREAM_LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "fraudstream", "serve"], env=env, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        process.kill()
        raise AssertionError(
            f"server did not become ready: {process.stderr.read() if process.stderr else ''}"
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(20)


def test_sigkill_under_load_loses_nothing_duplicates_nothing_and_features_continue(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/transactions"
    now = datetime.now(UTC).isoformat()
    acknowledged: set[str] = set()
    unanswered: set[str] = set()
    submitted: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(timeout=5) as client:
            for i in range(100_000):
                if stop.is_set():
                    return
                tid = f"w{worker}-{i}"
                body = transaction(tid, f"user-{worker}", 10 + i % 7, timestamp=now)
                with lock:
                    submitted.add(tid)
                try:
                    response = client.post(url, json=body)
                except httpx.HTTPError:
                    with lock:
                        unanswered.add(tid)
                    return
                with lock:
                    (acknowledged if response.status_code in (200, 201) else unanswered).add(tid)

    with server(tmp_path, port) as process:
        for payment in DATED_2025[:-1]:
            assert httpx.post(url, json=payment, timeout=10).status_code in (200, 201)
            submitted.add(str(payment["transaction_id"]))
            acknowledged.add(str(payment["transaction_id"]))
        with sqlite3.connect(tmp_path / "fraudstream.db") as connection:
            dated_seq = int(connection.execute("SELECT max(seq) FROM transactions").fetchone()[0])
        threads = [threading.Thread(target=load, args=(w,)) for w in range(16)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        # Current-dated traffic, and snapshots with idle expiry in between, before the kill.
        while (
            len(acknowledged) < 600 or snapshots_after(tmp_path / "fraudstream.db", dated_seq + 100) < 2
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        stop.set()
        for thread in threads:
            thread.join(10)
    assert len(acknowledged) >= 600

    with sqlite3.connect(tmp_path / "fraudstream.db") as connection:
        stored = [r[0] for r in connection.execute("SELECT transaction_id FROM decisions")]
        transactions = connection.execute("SELECT count(*) FROM transactions").fetchone()[0]
    assert len(stored) == len(set(stored)) == transactions
    assert acknowledged <= set(stored)
    # Only requests in flight at the kill may be stored without an answer; never anything else.
    assert set(stored) - acknowledged <= unanswered
    assert set(stored) <= submitted

    with server(tmp_path, port), httpx.Client(timeout=10) as client:
        # A client retries what got no answer: stored ones come back as the same decision.
        for tid in sorted(unanswered):
            worker, i = tid[1:].split("-")
            body = transaction(tid, f"user-{worker}", 10 + int(i) % 7, timestamp=now)
            assert client.post(url, json=body).status_code in (200, 201)
        counts = {}
        for worker in range(16):
            expected = sum(1 for t in submitted if t.startswith(f"w{worker}-")) + 1
            body = transaction(f"after-{worker}", f"user-{worker}", 12, timestamp=now)
            decision = client.post(url, json=body).json()
            counts[worker] = (decision["features"]["user.count_24h"], expected)
        dated = client.post(url, json=DATED_2025[-1]).json()
    assert all(got == want for got, want in counts.values()), counts
    # The 2025-dated user kept its history through current-dated traffic, expiry and the restart.
    assert dated["features"]["user.count_24h"] == len(DATED_2025)
    assert dated["features"] == uninterrupted_key_features(DATED_2025)
    with sqlite3.connect(tmp_path / "fraudstream.db") as connection:
        stored = [r[0] for r in connection.execute("SELECT transaction_id FROM decisions")]
    assert len(stored) == len(set(stored)) == len(submitted) + 16 + 1
