"""A first start: the kernels compiled once and said so, the next start compiling nothing, and the
latency figures free of warm-up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from fraudstream.api import create_app
from fraudstream.cli.warmup import COMPILING
from fraudstream.config import Settings
from servers import free_port

pytestmark = pytest.mark.integration


def _transactions(prefix: str, count: int) -> list[dict[str, object]]:
    now = time.time()
    return [
        {
            "transaction_id": f"{prefix}-{i}",
            "user_id": f"user-{i % 7}",
            "amount": 20.0 + i,
            "currency": "USD",
            "merchant_id": f"m-{i % 3}",
            "device_id": f"d-{i % 4}",
            "ip_address": f"10.0.0.{i % 9}",
            "country": "US",
            "timestamp": now - 60 + i,
            "loyalty_points": i,  # an extra field, which the declared aggregations below read
        }
        for i in range(count)
    ]


def _cache_files(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def _serve(folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = folder / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fraudstream", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a cold compile: about a minute here, more on a busy machine
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url, log
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"serve did not become ready: {log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(30)


def _traffic(url: str, prefix: str) -> None:
    """What a server's day runs: groups of transactions, a label, a rule set change, a restart's replay."""
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(3):
            answer = client.post("/v1/transactions", json=_transactions(f"{prefix}-{i}", 40))
            assert answer.json()["summary"]["scored"] == 40, answer.text
        labelled = client.post("/v1/labels", json=[{"transaction_id": f"{prefix}-0-3", "is_fraud": True}])
        assert labelled.status_code in (200, 201), labelled.text
        answer = client.post("/v1/transactions", json=_transactions(f"{prefix}-after", 10))
        assert answer.status_code == 200, answer.text


def test_a_first_start_compiles_once_saying_so_and_the_next_compiles_nothing(tmp_path: Path) -> None:
    kernels = tmp_path / "kernels"
    # Declared aggregations of a numeric extra field and a distinct count: their kernels too are
    # compiled by the warm-up, not in the first requests.
    features = tmp_path / "features.yaml"
    features.write_text(
        "aggregations:\n"
        "  - {entity: user, function: sum, field: attributes.loyalty_points, window: 1h}\n"
        "  - {entity: merchant, function: distinct, field: device, window: 24h}\n",
        encoding="utf-8",
    )
    env = {
        **{k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"},
        "FRAUDSTREAM_KERNEL_CACHE": str(kernels),
        "FRAUDSTREAM_DATA_DIR": str(tmp_path / "data"),
        "FRAUDSTREAM_CARD_KEY": "test-card-key",
        "FRAUDSTREAM_API_KEYS_ENABLED": "false",
        "FRAUDSTREAM_LOG_FORMAT": "json",
        "FRAUDSTREAM_SNAPSHOT_INTERVAL_S": "1",
        "FRAUDSTREAM_FEATURES_PATH": str(features),
    }
    process, url, log = _serve(tmp_path, env)
    compiled = _cache_files(kernels)  # all the warm-up compiled, before any request
    try:
        _traffic(url, "first")
        time.sleep(1.5)  # a snapshot is taken, so the next start restores one and replays after it
    finally:
        _stop(process)
    first = log.read_text(errors="replace")
    assert COMPILING in first
    assert "compiling kernels (6/7): Kafka messages" in first  # each step is said as it comes
    assert "compiling kernels (7/7): declared features and attributes" in first

    process, url, log = _serve(tmp_path, env)
    try:
        _traffic(url, "second")
    finally:
        _stop(process)
    assert COMPILING not in log.read_text(errors="replace")
    # Nothing the server ran (scoring, labels, snapshots, restore, replay) compiled a kernel the
    # warm-up had not: a kernel it missed would be compiled in the first requests, not at start.
    added = {
        name for name in _cache_files(kernels).keys() - compiled.keys() if "fraudstream-warm" not in name
    }
    changed = {n for n, v in compiled.items() if _cache_files(kernels).get(n, v) != v}
    assert not added, f"kernels compiled after the warm-up: {sorted(added)}"
    assert not changed, f"kernel indexes rewritten after the warm-up: {sorted(changed)}"


def test_the_first_group_s_latency_stays_out_of_the_figures(tmp_path: Path) -> None:
    settings = Settings(demo=True, data_dir=tmp_path, batch_wait_ms=1.0)
    with TestClient(create_app(settings)) as client:
        first = client.post("/v1/transactions", json=_transactions("warm", 1))
        assert first.json()["summary"]["scored"] == 1
        stats = client.get("/v1/stats").json()
        assert stats["transactions"] == 1
        assert stats["latency_ms"] == {"p50": None, "p99": None}
        assert stats["live_latency_ms"] == {"p50": None, "p99": None}
        second = client.post("/v1/transactions", json=_transactions("then", 1))
        assert second.json()["summary"]["scored"] == 1
        stats = client.get("/v1/stats").json()
        assert stats["latency_ms"]["p50"] is not None
        assert stats["live_latency_ms"]["p50"] == stats["latency_ms"]["p50"]
