"""What the extra sinks cost: decisions/s of `fraudstream serve` with no extra sink against the same
server writing a data lake (folder), Redis alerts and webhooks, in one run.

Run: ``.venv/bin/python bench/sinks.py`` (``--rounds 1 --requests 3000`` for a quicker run). Needs the
local Redis (127.0.0.1:6379; db 15 is used and emptied). The webhook receiver is a small HTTP server in
this process that answers 204 to each delivery.

Both configurations get the same closed loop, alternated over ``--rounds`` so that the machine's
drift touches both alike: single-transaction POSTs from ``--concurrency`` clients, then lists of 100.
One transaction in 50 raises an alert (a decline over 50,000; ``--alert-every`` changes it), which
every sink hands on: the lake takes every transaction and decision, Redis and the webhook (events:
alert) the alerts. An output's cost grows with what it takes: see the alert share in the output. At the end
the sinks must have caught up: the lake holds every transaction once, Redis every alert.
"""

from __future__ import annotations

import argparse
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from http_api import closed_loop as shared_closed_loop
from http_api import free_port, report

#: One transaction in this many raises an alert (``--alert-every``); card issuers see 0.5-3 %.
ALERT_EVERY = 50


def body(run: str, i: int) -> dict[str, object]:
    # Users from a large pool, so that velocity rules stay quiet and the alert share is the one set.
    return {
        "transaction_id": f"{run}-{i}",
        "user_id": f"u{(i * 7919) % 200_000}",
        "amount": 60_000.0 if i % ALERT_EVERY == 0 else float(10 + i % 97),
        "merchant_id": f"m{i % 300}",
        "device_id": f"d{i % 7000}",
        "currency": "USD",
    }


class _Receiver(http.server.BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def receiver() -> int:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


class Server:
    """`fraudstream serve` in its own data directory, with extra settings ``env``."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=f"bench-sinks-{name}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "FRAUDSTREAM_DATA_DIR": str(self.folder / "data"),
            "FRAUDSTREAM_CARD_KEY": "bench-card-key",
            "FRAUDSTREAM_ADMIN_KEY": "bench-admin-key",
            "FRAUDSTREAM_PORT": str(self.port),
            "FRAUDSTREAM_LOG_FORMAT": "json",
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fraudstream", "serve"],
            env=environment,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"the {name} server did not start")
            time.sleep(0.2)
        self.headers = {"X-API-Key": "bench-admin-key", "Content-Type": "application/json"}

    def warm(self, run: str) -> None:
        closed_loop(self.port, run, 2_000, 16, self.headers)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)
        shutil.rmtree(self.folder, ignore_errors=True)


def closed_loop(
    port: int, run: str, requests: int, concurrency: int, headers: dict[str, str], per_request: int = 1
) -> tuple[float, np.ndarray]:
    """`http_api.closed_loop` with this bench's traffic and a minute for an answer."""
    return shared_closed_loop(
        port,
        run,
        requests,
        concurrency,
        headers=headers,
        per_request=per_request,
        make_body=body,
        timeout_s=60,
    )


def wait_caught_up(server: Server, timeout_s: float = 120) -> float:
    """Seconds until every sink of ``server`` has taken the whole log."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        sinks = httpx.get(f"{server.url}/readyz", timeout=5).json().get("sinks", {})
        if all(state["behind"] == 0 and state["state"] == "ok" for state in sinks.values()):
            return time.monotonic() - started
        time.sleep(0.2)
    raise SystemExit(f"the sinks did not catch up in {timeout_s} s: {sinks}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=6_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--alert-every", type=int, default=50)
    options = parser.parse_args()
    global ALERT_EVERY
    ALERT_EVERY = options.alert_every

    import redis

    client = redis.Redis.from_url(options.redis)
    client.flushdb()
    lake = Path(tempfile.mkdtemp(prefix="bench-lake-"))
    hook_port = receiver()
    servers = {
        "no extra sink": Server("plain", {}),
        "lake + Redis + webhook": Server(
            "sinks",
            {
                "FRAUDSTREAM_LAKE_URL": str(lake),
                "FRAUDSTREAM_LAKE_FLUSH_S": "5",
                "FRAUDSTREAM_REDIS_URL": options.redis,
                "FRAUDSTREAM_REDIS_LIST_MAX": "1000000",
            },
        ),
    }
    sinks = servers["lake + Redis + webhook"]
    made = httpx.post(
        f"{sinks.url}/v1/webhooks",
        json={"url": f"http://127.0.0.1:{hook_port}/hook", "events": ["alert"]},
        headers=sinks.headers,
        timeout=10,
    )
    if made.status_code != 201:
        raise SystemExit(f"could not register the webhook: {made.status_code} {made.text}")
    for name, server in servers.items():
        server.warm(f"warm-{name[:2]}")
    results: dict[str, dict[str, list[float]]] = {name: {"single": [], "lists": []} for name in servers}
    sent = 0
    try:
        for round_number in range(options.rounds):
            for name, server in servers.items():
                run = f"r{round_number}-{name[:2]}"
                rate, latencies = closed_loop(
                    server.port, run, options.requests, options.concurrency, server.headers
                )
                results[name]["single"].append(rate)
                report(f"{name}, single POSTs", rate, latencies)
                rate, latencies = closed_loop(
                    server.port, f"{run}-l", options.requests // 20, 8, server.headers, per_request=100
                )
                results[name]["lists"].append(rate)
                report(f"{name}, lists of 100", rate, latencies)
            sent += options.requests + options.requests // 20 * 100
        caught_up = wait_caught_up(sinks)
        print(f"\nthe sinks caught up {caught_up:.1f} s after the last request", flush=True)
        alerts = client.llen("fraud_alerts")
        decided = sent + 2_000  # the sinks server's, warm-up included
        print(f"Redis list: {alerts:,} alerts ({100 * alerts / decided:.1f} % of that server's "
              f"decisions); webhook receiver: {_Receiver.received:,} deliveries")  # fmt: skip
        print("\nmedian decisions/s over the rounds:")
        for kind in ("single", "lists"):
            plain = float(np.median(results["no extra sink"][kind]))
            extra = float(np.median(results["lake + Redis + webhook"][kind]))
            print(f"  {kind:<7} no extra sink {plain:>9,.0f}   with sinks {extra:>9,.0f}   "
                  f"cost {100 * (1 - extra / plain):5.1f} %")  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(lake, ignore_errors=True)
        client.flushdb()


if __name__ == "__main__":
    main()
