"""Challengers score in shadow in a Kafka worker exactly as in the embedded server: the same events
give the same stored shadow scores, transaction by transaction (a real Tansu broker)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from confluent_kafka import Producer

from fraudstream.config import Settings
from fraudstream.core.engine import Engine
from fraudstream.core.models import fit_model
from fraudstream.core.schema import Validator
from fraudstream.ml.registry import Registry
from fraudstream.reference import load_reference
from fraudstream.runtime.embedded import ScoringService
from fraudstream.runtime.kafka.sink import store_decisions
from fraudstream.runtime.kafka.worker import Worker, WorkerConfig
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import records_for_http
from fraudstream.storage import Store
from fraudstream.storage.tables import shadow_scores
from kafka_broker import create_topic, run_to_the_end

pytestmark = pytest.mark.integration
CARD_KEY = "shadow-test-card-key"
CHALLENGERS = ("c-lightgbm", "c-logistic")


def traffic(count: int, seed: int) -> list[dict[str, Any]]:
    table = simulate(SimulationConfig(count=count, seed=seed, fraud_rate=0.05, duration_ms=2 * 86_400_000))
    return records_for_http(table.drop_columns(["is_fraud", "fraud_scenario"]))


def registry_with_challengers(root: Path) -> Registry:
    """A champion and two challengers of other kinds, trained on simulated traffic's features."""
    table = simulate(SimulationConfig(count=2000, seed=5, fraud_rate=0.05, duration_ms=86_400_000))
    labels = table.column("is_fraud").to_numpy(zero_copy_only=False).astype("int8")
    records = records_for_http(table.drop_columns(["is_fraud", "fraud_scenario"]))
    batch = Validator(load_reference(), CARD_KEY.encode()).records(records, received_at_ms=0).batch
    features = Engine().score(batch).features
    registry = Registry(root)
    for kind, version, params in (
        ("lightgbm", "m-champion", {"num_trees": 20}),
        ("lightgbm", CHALLENGERS[0], {"num_trees": 7}),
        ("logistic", CHALLENGERS[1], {}),
    ):
        model = fit_model(
            kind, features.values, labels, features.names, version=version,
            created="2026-12-01T00:00:00Z", training_fingerprint=version, params=params,
        )  # fmt: skip
        registry.save(model)
    registry.promote("m-champion")
    for version in CHALLENGERS:
        registry.shadow(version)
    return registry


def stored_shadow_scores(store: Store) -> dict[tuple[str, str], float]:
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(shadow_scores)).mappings().all()
    return {(r["transaction_id"], r["model_version"]): r["probability"] for r in rows}


def served(settings: Settings, records: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """The embedded server's shadow scores: the records sent in order, 100 to a request."""

    async def run() -> None:
        service = ScoringService(settings)
        await service.start()
        try:
            for start in range(0, len(records), 100):
                outcomes = await service.score(records[start : start + 100])
                assert {o.status for o in outcomes} == {"scored"}
        finally:
            await service.stop()

    asyncio.run(run())
    store = Store(settings.effective_database_url)
    try:
        return stored_shadow_scores(store)
    finally:
        store.close()


def test_a_worker_stores_the_same_shadow_scores_as_the_embedded_server(broker: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "server", card_key=CARD_KEY, snapshot_interval_s=3600)
    registry = registry_with_challengers(settings.models_dir)
    records = traffic(1500, seed=31)
    embedded = served(settings, records)

    # One partition: the worker sees every event in the server's order, so every feature agrees.
    topic = f"shadow-{uuid.uuid4().hex[:8]}"
    for name in (topic, f"{topic}.decisions", f"{topic}.alerts", f"{topic}.dlq"):
        create_topic(broker, name, 1)
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 5})
    for record in records:
        producer.produce(topic, key=str(record["user_id"]).encode(), value=orjson.dumps(record))
    assert producer.flush(10) == 0
    worker = Worker(
        WorkerConfig.named_after(
            broker,
            topic,
            checkpoint_dir=tmp_path / "checkpoints",
            card_key=CARD_KEY.encode(),
            session_timeout_ms=2000,  # a quicker join (about half of it on Tansu)
            models_dir=registry.root,
            labels_topic=None,
            control_topic=None,
        )
    )
    run_to_the_end(worker)
    assert worker.counts["decisions"] == len(records)
    store = Store(f"sqlite:///{tmp_path / 'sink.db'}")
    store.upgrade()
    # Drained once no message came for 1 s: the topic is complete by now (the default waits 3 s).
    store_decisions(broker, f"{topic}.decisions", store, group=f"sink-{topic}", idle_s=1.0)
    from_kafka = stored_shadow_scores(store)

    ids = {r["transaction_id"] for r in records}
    assert set(embedded) == {(t, v) for t in ids for v in CHALLENGERS}
    assert from_kafka == embedded  # equal per transaction and challenger, to the last bit
    assert len({round(p, 6) for p in embedded.values()}) > 100  # scores that tell events apart
