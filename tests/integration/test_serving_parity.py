"""The scores a running server gives equal the ones `evaluate` measures: same model, same events, labels
posted as they become known. Otherwise the figures of `evaluate` (and of bench/handbook.py) would
describe some other system than the one that serves."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from fraudstream.config import Settings
from fraudstream.ml.dataset import load_history
from fraudstream.ml.registry import Registry
from fraudstream.ml.train import evaluate, replay_history, train
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import records_for_http, write_table
from servers import RunningServer

pytestmark = pytest.mark.integration
DAY = 86_400_000


def test_a_running_server_scores_each_transaction_as_evaluate_does(
    tmp_path: Path, run_server: Callable[..., RunningServer]
) -> None:
    config = SimulationConfig(count=3_000, seed=11, fraud_rate=0.03, duration_ms=6 * DAY)
    table = simulate(config)
    path = tmp_path / "history.parquet"
    write_table(table, path)
    history = load_history(path)  # no label_time: each label is known a day after its transaction
    ts = history.batch.timestamp_ms
    delay = DAY
    end = int(ts.min() + 4 * DAY)
    model, _ = train(history, "lightgbm", train_from_ms=None, train_to_ms=end, label_delay_ms=delay)
    _, replayed, _ = evaluate(history, model, from_ms=end, to_ms=None, label_delay_ms=delay)
    assert np.isfinite(replayed.probability).all()

    data_dir = tmp_path / "data"
    registry = Registry(Settings(data_dir=data_dir, card_key="training").models_dir)
    registry.save(model)
    registry.promote(model.metadata.version)

    # The events in history order; each fraud's label posted just before the first transaction at or
    # after the moment it became known, which is when replay applies it.
    records = records_for_http(table)
    ids = history.batch.transaction_id.to_pylist()
    assert ids == [r["transaction_id"] for r in records]  # the file was already in time order
    frauds = np.flatnonzero(history.is_fraud)
    known_at = ts[frauds] + delay
    before = np.searchsorted(ts, known_at, side="left")

    # The card key is the one load_history fingerprints cards with.
    server = run_server(data_dir=str(data_dir), card_key="training", label_delay="1d")
    served: list[float] = []
    with httpx.Client(base_url=server.url, timeout=60) as client:
        stops = sorted(set(before.tolist()) | {len(records)})
        start = 0
        for stop in stops:
            labels = [
                {
                    "transaction_id": ids[i],
                    "is_fraud": True,
                    "label_time": datetime.fromtimestamp((int(ts[i]) + delay) / 1000, UTC).isoformat(),
                }
                for i in frauds[before == start].tolist()
            ]
            if labels:
                answer = client.post("/v1/labels", json=labels)
                assert answer.status_code == 200, answer.text
            for chunk in range(start, stop, 500):
                answer = client.post("/v1/transactions", json=records[chunk : min(chunk + 500, stop)])
                assert answer.status_code == 200, answer.text
                results = answer.json()["results"]
                assert all(r["status"] == "scored" for r in results), results[:3]
                served += [r["probability"] for r in results]
            start = stop

    assert len(served) == len(records)
    # The server answers with 6 decimals.
    np.testing.assert_allclose(np.array(served), replayed.probability, rtol=0, atol=5.01e-7)
    # And the labels mattered: without them the same replay scores differently.
    unlabelled = dataclasses.replace(history, is_fraud=np.zeros_like(history.is_fraud))
    blind = replay_history(unlabelled, delay, model).probability
    assert np.abs(blind - replayed.probability).max() > 1e-3
