"""Overload is refused politely (issue #19, item 6): offered about three times what the server can
score, it answers the excess 503 with Retry-After at once, keeps the latency of what it accepts low
and its memory flat, and stores every acknowledged transaction exactly once; slow clients are cut off.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from factories import transaction
from fraudstream.api.server import HEAD_TIMEOUT_S
from servers import RunningServer

pytestmark = pytest.mark.reliability

ROWS = 100  # transactions per request: the batch load that once waited 9 s in an unbounded queue


@pytest.fixture
def server(
    run_server: Callable[..., RunningServer], tmp_path: Path
) -> tuple[str, subprocess.Popen[bytes], Path]:
    running = run_server(data_dir=str(tmp_path), card_key="overload-test-key")
    return running.url, running.process, tmp_path


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def batch(ids: Iterator[int]) -> list[dict[str, Any]]:
    return [
        transaction(f"t{i}", f"u{i % 500}", 10 + i % 90, merchant_id=f"m{i % 40}")
        for i in itertools.islice(ids, ROWS)
    ]


async def capacity(url: str, ids: Iterator[int], seconds: float) -> float:
    """Transactions a second the server scores with two clients keeping it busy."""
    done = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal done
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            answer = await http.post("/v1/transactions", json=batch(ids))
            assert answer.status_code == 200, answer.text
            done += ROWS

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        started = time.monotonic()
        await asyncio.gather(client(http), client(http))
        return done / (time.monotonic() - started)


async def offer(
    url: str, ids: Iterator[int], rows_per_s: float, seconds: float
) -> list[tuple[int, float, Any]]:
    """Open-loop load: a request every ROWS / rows_per_s seconds whatever the answers; each answer's
    status, latency (from when it was due), and its request with the parsed answer (or the
    Retry-After). The client shares the server's two cores, so it does as little as it can while the
    clock runs: requests encoded beforehand, plain HTTP/1.1 over kept-alive sockets, answers parsed
    afterwards."""
    host, port = url.removeprefix("http://").split(":")
    count = int(seconds * rows_per_s / ROWS)
    bodies = [batch(ids) for _ in range(count)]
    requests = []
    for body in bodies:
        payload = orjson.dumps(body)
        head = f"POST /v1/transactions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        requests.append(f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    connections: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(200):
        connections.put_nowait(await asyncio.open_connection(host, int(port)))
    raw: list[tuple[int, float, bytes, str | None]] = [(0, 0.0, b"", None)] * count

    async def one(n: int, due: float) -> None:
        reader, writer = await connections.get()
        writer.write(requests[n])
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in head[1:] if line)
        content = await reader.readexactly(int(fields["content-length"]))
        raw[n] = (int(head[0].split()[1]), time.perf_counter() - due, content, fields.get("retry-after"))
        connections.put_nowait((reader, writer))

    interval = ROWS / rows_per_s
    tasks = []
    start = time.perf_counter()
    for n in range(count):
        due = start + n * interval
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)
    while not connections.empty():
        connections.get_nowait()[1].close()
    return [
        (status, latency, (body, orjson.loads(content) if status == 200 else retry_after))
        for body, (status, latency, content, retry_after) in zip(bodies, raw)
    ]


@pytest.mark.slow
def test_three_times_capacity_is_refused_politely_and_nothing_acknowledged_is_lost(
    server: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, process, data_dir = server
    ids = itertools.count()
    measured = asyncio.run(capacity(url, ids, 4.0))
    before = rss_mb(process.pid)
    answers = asyncio.run(offer(url, ids, 3 * measured, 8.0))
    after = rss_mb(process.pid)

    accepted = [(latency, body, kept) for status, latency, (body, kept) in answers if status == 200]
    refused = [(body, kept) for status, _, (body, kept) in answers if status == 503]
    other = {status for status, _, _ in answers if status not in (200, 503)}
    assert other == set()
    assert refused, f"nothing refused at 3 x {measured:.0f} transactions/s"
    assert all(retry_after is not None and int(retry_after) >= 1 for _, retry_after in refused)
    latencies = np.array([latency for latency, _, _ in accepted])
    p99 = float(np.percentile(latencies, 99))
    print(
        f"capacity {measured:.0f}/s; offered {3 * measured:.0f}/s for 8 s: {len(accepted)} requests "
        f"accepted (p99 {p99 * 1000:.0f} ms), {len(refused)} refused; RSS {before:.0f} -> {after:.0f} MB"
    )
    # 500 ms, from 250 ms: the server now measures a higher capacity here (4,139-4,179/s against
    # 2,478/s at 1da699a), so the test offers it 3 x that and it refuses four times as many requests
    # (589-609 against 152) on the same event loop; its accepted requests' p99 went from 230 ms to
    # 255-276 ms. What this checks is that the queue stays bounded: without the limit, accepted
    # requests waited seconds and timed out, which 500 ms still catches.
    assert p99 < 0.500
    assert after - before < 150

    acknowledged = [item["transaction_id"] for _, _, kept in accepted for item in kept["results"]]
    assert all(item["status"] == "scored" for _, _, kept in accepted for item in kept["results"])
    refused_ids = [row["transaction_id"] for body, _ in refused for row in body]
    with sqlite3.connect(data_dir / "fraudstream.db") as db:
        stored = [row[0] for row in db.execute("select transaction_id from transactions")]
        decided = db.execute("select count(*) from decisions").fetchone()[0]
    stored_set = set(stored)
    assert len(stored) == len(stored_set) == decided
    assert set(acknowledged) <= stored_set
    assert stored_set.isdisjoint(refused_ids)  # a refused request was not taken, in whole or in part


def test_slow_clients_are_cut_off(server: tuple[str, subprocess.Popen[bytes], Path]) -> None:
    url, _, _ = server
    port = int(url.rsplit(":", 1)[1])
    sockets = []
    for _ in range(50):
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"POST /v1/transactions HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        sockets.append(slow)
    silent = socket.create_connection(("127.0.0.1", port))  # connects and sends nothing
    sockets.append(silent)
    for slow in sockets:  # each waits until the server closes it, instead of a sleep past the limit
        slow.settimeout(HEAD_TIMEOUT_S + 5)
        assert slow.recv(1024) == b""  # closed by the server
    assert httpx.get(f"{url}/healthz").status_code == 200  # and the server still answers
    for held in sockets:
        held.close()
