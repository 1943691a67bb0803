"""A real `fraudstream serve` killed with SIGKILL before it stored its drift counts, then stopped cleanly:
the day's counts come back whole after each restart, each transaction counted once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from fraudstream.ml.dataset import load_history
from fraudstream.ml.registry import Registry
from fraudstream.ml.train import train
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import records_for_http, write_table
from labelled_traffic import send_in_order
from servers import RunningServer, start_server, stop

pytestmark = pytest.mark.reliability

DAY = 86_400_000


def drift(server: RunningServer) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/v1/drift", timeout=30)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def shares(answer: dict[str, Any]) -> dict[str, list[float]]:
    """Each feature's shares per bin, but for those derived from fraud labels: the restart's replay
    applies the labels stored after the last snapshot once it has replayed the transactions."""
    return {f["feature"]: f["actual"] for f in answer["features"] if "fraud" not in f["feature"]}


def test_the_days_drift_counts_survive_kill_9_and_a_clean_restart(tmp_path: Path) -> None:
    table = simulate(SimulationConfig(count=1_200, seed=31, fraud_rate=0.03, duration_ms=3 * DAY))
    write_table(table, tmp_path / "history.parquet")
    history = load_history(tmp_path / "history.parquet")
    model, _ = train(history, "logistic", train_from_ms=None, train_to_ms=None, label_delay_ms=DAY)
    registry = Registry(tmp_path / "models")
    registry.save(model)
    registry.promote(model.metadata.version)
    records = records_for_http(table)
    settings = {
        "registry_dir": str(tmp_path / "models"),
        "card_key": "training",
        "label_delay": "1d",
        "snapshot_interval_s": "3600",  # no snapshot, so no stored count, before the kill
    }

    first = start_server(tmp_path / "run", **settings)
    try:
        with httpx.Client(base_url=first.url, timeout=60) as client:
            send_in_order(client, history, records, 0, len(records))
        before = drift(first)
    finally:
        first.process.kill()  # SIGKILL: the counts in memory die with it
        first.process.wait(30)
    assert before["window"]["transactions"] == len(records)

    second = start_server(tmp_path / "run", **settings)
    try:
        after_kill = drift(second)
    finally:
        stop(second)  # SIGTERM: a clean stop stores the counts with the final snapshot
    third = start_server(tmp_path / "run", **settings)
    try:
        after_stop = drift(third)
    finally:
        stop(third)

    for answer in (after_kill, after_stop):
        assert answer["window"]["transactions"] == len(records)
        assert answer["model_version"] == model.metadata.version

    # Counted as the first server counted them.
    assert shares(after_kill) == shares(before)
    assert shares(after_stop) == shares(before)
