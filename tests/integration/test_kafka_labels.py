"""The worker learns from the labels topic, against a real broker (Tansu): label-derived features of
later transactions change, bad labels are dead-lettered, and a restored partition keeps its labels."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from factories import transaction
from fraudstream.config import DEMO_CARD_KEY
from fraudstream.runtime.kafka.worker import Worker, WorkerConfig
from kafka_broker import create_topic
from servers import wait_for

pytestmark = pytest.mark.integration

#: Two hours ago, so that a label's time can lie between transactions and still be in the past.
BASE_MS = int(time.time() * 1000) - 2 * 3_600_000
MINUTE = 60_000


def topics(broker: str) -> str:
    """A one-partition transactions topic with its outputs, and a two-partition labels topic."""
    name = f"lbl-{uuid.uuid4().hex[:8]}"
    create_topic(broker, name, 1)
    for suffix in ("decisions", "alerts", "dlq"):
        create_topic(broker, f"{name}.{suffix}", 1)
    create_topic(broker, f"{name}.labels", 2)
    return name


def at_terminal(terminal: str, minute: int) -> dict[str, Any]:
    """Where and when a payment happens: ``terminal`` (with a merchant of its own), ``minute`` in."""
    return {"terminal_id": terminal, "merchant_id": f"m-{terminal}", "timestamp": BASE_MS + minute * MINUTE}


def produce(broker: str, topic: str, values: list[Any], partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": broker})
    for value in values:
        producer.produce(
            topic, value=value if isinstance(value, bytes) else orjson.dumps(value), partition=partition
        )
    assert producer.flush(10) == 0


def read(broker: str, topic: str, expect: int, timeout: float = 60) -> list[dict[str, Any]]:
    """The first ``expect`` distinct messages of a one-partition topic (by transaction id or position)."""
    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"reader-{uuid.uuid4().hex}"})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # no group to join: faster
    found: dict[Any, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(found) < expect:
        for message in consumer.consume(100, 0.5):
            if message.error() is None:
                body = orjson.loads(message.value())
                key = body["decision"]["transaction_id"] if "decision" in body else message.offset()
                found.setdefault(key, body)
    consumer.close()
    return list(found.values())


def config(broker: str, topic: str, tmp_path: Path) -> WorkerConfig:
    return WorkerConfig.named_after(
        broker,
        topic,
        checkpoint_dir=tmp_path / "checkpoints",
        checkpoint_interval_s=0.5,
        card_key=DEMO_CARD_KEY.encode(),
        session_timeout_ms=2000,  # a quicker join (about half of it on Tansu)
    )


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(60)
        assert not thread.is_alive(), "the worker did not stop"


def shadow_rules(decisions: list[dict[str, Any]], transaction_id: str) -> list[str]:
    [decision] = [d["decision"] for d in decisions if d["decision"]["transaction_id"] == transaction_id]
    return list(decision["shadow_rules"])


FIRST = [transaction(f"risky-{i}", "label-user", 25.0, **at_terminal("T-risky", i)) for i in range(5)] + [
    transaction(f"clean-{i}", "label-user", 25.0, **at_terminal("T-clean", 5 + i)) for i in range(3)
]
LATER = [
    transaction("risky-later", "label-user", 25.0, **at_terminal("T-risky", 30)),
    transaction("clean-later", "label-user", 25.0, **at_terminal("T-clean", 31)),
]


def test_fraud_labels_raise_the_terminal_fraud_rate_that_later_transactions_see(
    broker: str, tmp_path: Path
) -> None:
    topic = topics(broker)
    labels = f"{topic}.labels"
    produce(broker, topic, FIRST)
    with running(Worker(config(broker, topic, tmp_path))) as worker:
        read(broker, f"{topic}.decisions", expect=len(FIRST))
        produce(
            broker,
            labels,
            [{"transaction_id": "risky-0", "is_fraud": True, "label_time": BASE_MS + 10 * MINUTE}],
        )
        produce(
            broker,
            labels,
            [
                [
                    {"transactionId": "risky-1", "isFraud": True, "label_time": BASE_MS + 10 * MINUTE},
                    {"transaction_id": "clean-0", "is_fraud": False},  # no time: the broker's, still ahead
                    {"transaction_id": "of-another-partition", "is_fraud": True, "label_time": BASE_MS},
                ],
                b"not json",
                {"transaction_id": "risky-2", "is_fraud": "yes"},
            ],
            partition=1,
        )
        wait_for(lambda: worker.counts["labels"] == 4, "the worker has read the four valid labels")
        produce(broker, topic, LATER)
        decisions = read(broker, f"{topic}.decisions", expect=len(FIRST) + len(LATER))
        wait_for(lambda: worker.counts["labels_applied"] == 2, "the two fraud labels were applied")
        assert worker.partitions[0].labels.dropped == 1  # the label of a transaction it never scored
        assert [label[0] for label in worker.partitions[0].labels.pending] == ["clean-0"]
    # Two of the terminal's six transactions are confirmed fraud: the (shadow) terminal rule hits.
    assert "risky_terminal" in shadow_rules(decisions, "risky-later")
    assert "risky_terminal" not in shadow_rules(decisions, "clean-later")
    assert all("risky_terminal" not in shadow_rules(decisions, t["transaction_id"]) for t in FIRST)
    dead = read(broker, f"{topic}.dlq", expect=2, timeout=20)
    assert sorted(d["reason"].split(":")[0] for d in dead) == ["invalid label", "label is not JSON"]
    assert {d["topic"] for d in dead} == {labels}
    [invalid] = [d for d in dead if d["reason"] == "invalid label"]
    assert [e["field"] for e in invalid["errors"]] == ["is_fraud"]


def test_a_restarted_worker_keeps_the_labels_its_checkpoint_had_read(broker: str, tmp_path: Path) -> None:
    topic = topics(broker)
    labels = f"{topic}.labels"
    produce(broker, topic, FIRST)
    with running(Worker(config(broker, topic, tmp_path))) as first:
        read(broker, f"{topic}.decisions", expect=len(FIRST))
        produce(
            broker,
            labels,
            [{"transaction_id": "risky-0", "is_fraud": True, "label_time": BASE_MS + 10 * MINUTE}],
        )
        wait_for(lambda: first.counts["labels"] == 1, "the first worker has read the first label")
    assert first.counts["labels_applied"] == 0  # still waiting for a transaction after its label time
    # While no worker runs, a second label arrives; the next owner must take in both, once each.
    produce(
        broker,
        labels,
        [{"transaction_id": "risky-1", "is_fraud": True, "label_time": BASE_MS + 10 * MINUTE}],
        1,
    )
    with running(Worker(config(broker, topic, tmp_path))) as second:
        wait_for(lambda: second.counts["labels"] >= 1, "the second worker has read the new label")
        produce(broker, topic, LATER)
        decisions = read(broker, f"{topic}.decisions", expect=len(FIRST) + len(LATER))
        wait_for(lambda: second.counts["labels_applied"] == 2, "both labels were applied")
    assert second.counts["labels"] == 1, "the label in the checkpoint is not read a second time"
    assert "risky_terminal" in shadow_rules(decisions, "risky-later")
