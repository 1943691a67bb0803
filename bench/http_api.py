"""HTTP throughput and latency of `fraudstream serve` against a one-event-at-a-time seed-style server.

Run: ``.venv/bin/python bench/http_api.py`` (``--requests 5000`` for a quicker run).

Both servers run as subprocesses on loopback and get the same bounded load: single-transaction POSTs,
a fixed number of requests at fixed concurrency; then fraudstream at a paced 1,000 requests/s for its
latency under a steady load. Every decision counted here was committed to SQLite before its answer.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env={**os.environ, **env}, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/v1/transactions", json={}, timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server on port {port} did not start")


def body(run: str, i: int) -> dict[str, object]:
    return {
        "transaction_id": f"{run}-{i}",
        "user_id": f"u{i % 5000}",
        "amount": float(10 + i % 97),
        "merchant_id": f"m{i % 300}",
        "device_id": f"d{i % 7000}",
        "currency": "USD",
    }


def closed_loop(
    port: int,
    run: str,
    requests: int,
    concurrency: int,
    *,
    headers: dict[str, str] | None = None,
    per_request: int = 1,
    make_body: Callable[[str, int], dict[str, object]] = body,
    timeout_s: float = 30,
) -> tuple[float, Any]:
    """``requests`` POSTs of ``per_request`` transactions (one object, or a list) from ``concurrency``
    clients (threads, one keep-alive connection each), each waiting for its answer before sending the
    next: transactions decided per second and per-request latencies (ms). A client that gets an
    unexpected answer stops, and the run fails saying so."""
    latencies: list[float] = []
    failures: list[str] = []
    counter = itertools.count()
    lock = threading.Lock()
    sent_headers = headers or {"Content-Type": "application/json"}

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
        mine = []
        while (i := next(counter)) < requests:
            records = [make_body(run, i * per_request + j) for j in range(per_request)]
            payload = orjson.dumps(records[0] if per_request == 1 else records)
            started = time.perf_counter()
            connection.request("POST", "/v1/transactions", payload, sent_headers)
            response = connection.getresponse()
            response.read()
            if response.status not in (200, 201):
                failures.append(f"status {response.status}")
                return
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} clients stopped on an unexpected answer, e.g. {failures[0]}")
    return requests * per_request / (time.perf_counter() - started), np.array(latencies)


_WRK_SCRIPT = HERE / "baselines" / "wrk_post.lua"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def closed_loop_wrk(port: int, run: str, requests: int, concurrency: int) -> tuple[float, dict[str, float]]:
    """The same closed loop driven by wrk (C, two threads): it costs the shared cores far less per
    request than Python client threads, so more of the machine is left to the server measured."""
    threads = 2
    marker = Path(tempfile.mkstemp(prefix="wrk-done-")[1])
    options = [f"-t{threads}", f"-c{concurrency}", "-d3600s", "-s", str(_WRK_SCRIPT), "--latency"]
    script_args = [run, str(requests // threads), str(threads), str(marker)]
    command = ["wrk", *options, f"http://127.0.0.1:{port}", "--", *script_args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    # wrk runs for its whole duration even when every thread has stopped; interrupt it then, and it
    # prints its figures for the requests done.
    while len(marker.read_text().splitlines()) < threads:
        if process.poll() is not None:
            raise SystemExit("wrk ended before its requests were done")
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=30)[0]
    marker.unlink()
    if "Non-2xx" in output:
        raise SystemExit(f"unexpected answers from the server:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    percentiles = {}
    for label in ("50", "99"):
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        percentiles[label] = float(value) * _UNITS[unit]
    return rate, percentiles


def paced(port: int, run: str, rate: float, seconds: float, connections: int = 64) -> np.ndarray:
    """Open loop: request i is due at start + i/rate whatever the answers do; its latency is measured
    from its due time, so a server that falls behind shows it.

    One asyncio thread drives it over ``connections`` keep-alive sockets (a request waits for a free
    one, and that wait counts): Python sender threads took a share of the two cores from the server
    and, contending for the GIL, added their own milliseconds to the latencies they measured.
    """
    # The sender's own pauses would count as the server's latency: no cyclic collection of its
    # thousands of request tasks in the middle of the run.
    gc.disable()
    try:
        return asyncio.run(_paced(port, run, rate, seconds, connections))
    finally:
        gc.enable()


async def _paced(port: int, run: str, rate: float, seconds: float, connections: int) -> np.ndarray:
    total = int(rate * seconds)
    free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        free.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies = np.zeros(total)
    failures: list[str] = []

    async def send(i: int, due: float) -> None:
        reader, writer = await free.get()
        payload = orjson.dumps(body(run, i))
        writer.write(
            b"POST /v1/transactions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
        answer = await reader.readexactly(length)
        latencies[i] = (time.perf_counter() - due) * 1000
        if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 201")):
            failures.append(f"{head.splitlines()[0]!r} {answer[:200]!r}")
        free.put_nowait((reader, writer))

    start = time.perf_counter() + 0.2
    tasks = []
    for i in range(total):
        due = start + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        tasks.append(asyncio.create_task(send(i, due)))
    await asyncio.gather(*tasks)
    while not free.empty():
        free.get_nowait()[1].close()
    if failures:
        raise SystemExit(f"{len(failures)} paced requests failed, e.g. {failures[0]}")
    return latencies


def report(name: str, rate: float, latencies: np.ndarray | dict[str, float]) -> None:
    if isinstance(latencies, dict):
        p50, p99 = latencies["50"], latencies["99"]
    else:
        p50, p99 = np.percentile(latencies, [50, 99])
    print(f"{name:<44} {rate:>9,.0f} decisions/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seed-requests", type=int, default=1_000)
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="Load generator for the closed loops: wrk (apt-get install wrk) or Python threads; "
        "auto takes wrk when it is installed",
    )
    args = parser.parse_args()
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    load = closed_loop_wrk if use_wrk else closed_loop
    print(f"load generator: {'wrk' if use_wrk else 'Python client threads'}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="fraudstream-bench-"))

    port = free_port()
    env = {
        "FRAUDSTREAM_DATA_DIR": str(work / "fs"),
        "FRAUDSTREAM_CARD_KEY": "bench",
        "FRAUDSTREAM_PORT": str(port),
        "FRAUDSTREAM_API_KEYS_ENABLED": "false",
        "FRAUDSTREAM_LOG_FORMAT": "json",
    }
    server = start([sys.executable, "-m", "fraudstream", "serve"], env, port)
    results = {}
    try:
        closed_loop(port, "warm", 500, 16)
        for concurrency in (32, 64):
            rate, latencies = load(port, f"c{concurrency}", args.requests, concurrency)
            results[concurrency] = rate
            report(f"fraudstream, concurrency {concurrency}", rate, latencies)
        latencies = paced(port, "paced", 1000, 10)
        report("fraudstream, paced at 1,000 requests/s", 1000, latencies)
    finally:
        server.terminate()
        server.wait(30)

    seed_port = free_port()
    seed = start(
        [sys.executable, str(HERE / "baselines" / "seed_server.py"), str(seed_port), str(work / "seed.db")],
        {},
        seed_port,
    )
    try:
        rate, latencies = load(seed_port, "seed", args.seed_requests, 32)
        report("seed-style (pandas + sklearn + commit per event)", rate, latencies)
    finally:
        seed.terminate()
        seed.wait(30)
    print(f"\nfraudstream / seed-style at concurrency 32: {results[32] / rate:,.0f}x (target >= 25x)")


if __name__ == "__main__":
    main()
