"""What an export costs: rows/s of `GET /v1/transactions.csv` and `.parquet` from a `fraudstream serve`
holding N stored transactions, and the server's memory while it streams them.

Run: ``.venv/bin/python bench/exports.py`` (``--rows 20000,200000`` by default; ≈ 2 min). For each size a
fresh SQLite database is filled directly (transactions and their decisions, with reasons and feature
values as the engine stores them), a server is started on it (it replays the stored history once to
rebuild its feature state), then each export is downloaded in full, once, by a client that counts what
it receives. Memory: the server's resident set before the exports and its peak (VmHWM) after them; an
export streamed page by page keeps the peak the same whatever the number of rows. For reference, the
same rows read through the JSON listing, 500 per page (what a client had to do before).
"""

from __future__ import annotations

import argparse
import io
import json
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
import pyarrow.parquet as pq
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from fraudstream.storage import Store
from fraudstream.storage.tables import decisions, transactions
from http_api import free_port

_BASE_MS = 1_796_000_000_000
_PLACES = [("New York", 40.71, -74.0, "US"), ("London", 51.51, -0.13, "GB"), ("Tokyo", 35.69, 139.69, "JP")]


def fill(store: Store, count: int) -> None:
    """``count`` stored transactions with decisions, as the engine writes them (1 in 40 flagged)."""
    batch = 5000
    with store.engine.begin() as connection:
        for first in range(0, count, batch):
            rows, decided = [], []
            for i in range(first, min(first + batch, count)):
                place, lat, lon, country = _PLACES[i % 3]
                flagged = i % 40 == 0
                amount = 4000.0 + i % 997 if flagged else 10.0 + (i * 7) % 290
                tid = f"tx-{i:08d}"
                rows.append(
                    {
                        "transaction_id": tid, "user_id": f"u{i % 20_000}", "amount": amount,
                        "timestamp_ms": _BASE_MS + i * 1000, "currency": "USD", "merchant_id": f"m{i % 300}",
                        "merchant_category": "grocery", "terminal_id": f"t{i % 900}", "channel": "pos",
                        "location": place, "lat": lat, "lon": lon, "country": country,
                        "device_id": f"d{i % 7000}", "ip": f"10.0.{i % 256}.{i % 200}",
                        "card_fingerprint": f"{i % 30_000:032x}", "card_bin": "424242", "card_last4": "4242",
                        "attributes": json.dumps({"loyalty_tier": "gold"}) if i % 5 == 0 else None,
                        "body_hash": f"{i:064x}", "received_at_ms": _BASE_MS + i * 1000 + 3,
                    }
                )  # fmt: skip
                reasons = (
                    [{"code": "amount_spike", "text": f"Amount {amount:,.2f} is 80x this user's 30-day "
                      "average", "contribution": 60.0, "kind": "rule"}] if flagged else []
                )  # fmt: skip
                features = {
                    "amount": amount, "user.count_24h": float(i % 9), "user.count_30s": 1.0,
                    "user.amount_ratio_30d": 1.2, "geo.speed_kmh": None, "card.count_1h": float(i % 4),
                    "merchant.fraud_rate_7d": 0.001, "device.distinct_users_24h": 1.0,
                }  # fmt: skip
                decided.append(
                    {
                        "transaction_id": tid, "decision": "review" if flagged else "approve",
                        "score": 60 if flagged else i % 20, "probability": None, "is_alert": flagged,
                        "reasons": json.dumps(reasons), "shadow_rules": "[]",
                        "rules": json.dumps(["amount_spike"] if flagged else []), "model_version": None,
                        "features": json.dumps(features),
                        "ruleset_version": 1, "latency_ms": 4.2, "decided_at_ms": _BASE_MS + i * 1000 + 5,
                    }
                )  # fmt: skip
            connection.execute(sa.insert(transactions), rows)
            connection.execute(sa.insert(decisions), decided)


def memory_kb(pid: int) -> dict[str, int]:
    """The process's resident set now and its peak, in kB (Linux /proc)."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


class PeakMemory:
    """The largest resident set of process ``pid`` while the block runs (sampled every 20 ms), in MB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, memory_kb(self.pid)["VmRSS"] / 1024)
            self._stop.wait(0.02)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def download(url: str, pid: int, keep: bool) -> tuple[float, int, float, bytes]:
    """Seconds to receive ``url`` in full, its size, the server's peak RSS (MB) meanwhile, and the
    bytes when ``keep``."""
    kept = io.BytesIO()
    size = 0
    with PeakMemory(pid) as memory:
        started = time.perf_counter()
        with httpx.stream("GET", url, timeout=600) as answer:
            answer.raise_for_status()
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if keep:
                    kept.write(chunk)
        seconds = time.perf_counter() - started
    return seconds, size, memory.peak_mb, kept.getvalue()


def json_pages(url: str, pid: int) -> tuple[float, int, float]:
    """Seconds to read every row of the JSON listing at ``url``, 500 per page; the rows; the server's
    peak RSS (MB) meanwhile."""
    rows, cursor = 0, None
    with PeakMemory(pid) as memory, httpx.Client(timeout=600) as client:
        started = time.perf_counter()
        while True:
            page = client.get(url, params={"limit": 500, **({"cursor": cursor} if cursor else {})}).json()
            rows += len(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        seconds = time.perf_counter() - started
    return seconds, rows, memory.peak_mb


def run(count: int, folder: Path) -> dict[str, Any]:
    data = folder / f"data-{count}"
    data.mkdir(parents=True)
    store = Store(f"sqlite:///{data / 'fraudstream.db'}")
    store.upgrade()
    started = time.perf_counter()
    fill(store, count)
    store.engine.dispose()
    print(f"{count:,} rows stored in {time.perf_counter() - started:.1f} s; starting the server", flush=True)
    port = free_port()
    env = {
        **os.environ, "FRAUDSTREAM_DATA_DIR": str(data), "FRAUDSTREAM_API_KEYS_ENABLED": "false",
        "FRAUDSTREAM_CARD_KEY": "bench-card-key", "FRAUDSTREAM_PORT": str(port),
    }  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "fraudstream", "serve"], env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not get ready")
            time.sleep(0.5)
        result: dict[str, Any] = {"rows": count, "rss_before_mb": memory_kb(server.pid)["VmRSS"] / 1024}
        seconds, size, peak, _ = download(f"{url}/v1/transactions.csv", server.pid, keep=False)
        result["csv"] = (count / seconds, size / 1e6, peak)
        seconds, size, peak, body = download(f"{url}/v1/transactions.parquet", server.pid, keep=True)
        metadata = pq.ParquetFile(io.BytesIO(body)).metadata
        assert metadata.num_rows == count, metadata.num_rows
        result["parquet"] = (count / seconds, size / 1e6, peak)
        result["row_groups"] = metadata.num_row_groups
        seconds, rows, peak = json_pages(f"{url}/v1/transactions", server.pid)
        assert rows == count, rows
        result["json"] = (count / seconds, None, peak)
        return result
    finally:
        server.terminate()
        server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="20000,200000", help="stored transactions, comma-separated sizes")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fraudstream-bench-exports-"))
    try:
        results = [run(int(n), folder) for n in args.rows.split(",")]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("\n| stored rows | how | rows/s | size | server's peak RSS meanwhile (before) |")
    print("|---:|---|---:|---:|---:|")
    for r in results:
        for how, label in (
            ("csv", "CSV export"),
            ("parquet", "Parquet export"),
            ("json", "JSON pages of 500"),
        ):
            rate, size, peak = r[how]
            shown = f"{size:.1f} MB" if size is not None else "–"
            before = r["rss_before_mb"]
            print(f"| {r['rows']:,} | {label} | {rate:,.0f} | {shown} | {peak:.0f} MB ({before:.0f} MB) |")
        print(f"| {r['rows']:,} | Parquet row groups | {r['row_groups']} | | |")


if __name__ == "__main__":
    main()
