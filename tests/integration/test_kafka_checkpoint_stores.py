"""Checkpoint stores chosen by URL, against the real services: a directory, PostgreSQL, S3 (moto)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from fraudstream.config import DEMO_CARD_KEY
from fraudstream.core.batch import TransactionBatch
from fraudstream.core.engine import Engine
from fraudstream.errors import ConfigError, StateError
from fraudstream.runtime.kafka.checkpoints import (
    CheckpointStore,
    LocalCheckpoints,
    PostgresCheckpoints,
    S3Checkpoints,
    checkpoint_store,
)
from fraudstream.runtime.kafka.worker import Worker, WorkerConfig
from kafka_broker import create_topic, run_to_the_end

pytestmark = pytest.mark.integration


def _bucket(endpoint: str) -> str:
    import boto3

    name = f"ckpt-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


def _corrupt_local(store: Any, group: str, topic: str, partition: int) -> None:
    path = store.root / f"{group}.{topic}.{partition}.ckpt"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _corrupt_postgres(store: Any, group: str, topic: str, partition: int) -> None:
    import sqlalchemy as sa

    table = store.table
    key = (table.c.group_id == group) & (table.c.topic == topic) & (table.c.partition == partition)
    with store.engine.begin() as connection:
        connection.execute(sa.update(table).where(key).values(state=b"tampered state"))


def _corrupt_s3(store: Any, group: str, topic: str, partition: int) -> None:
    key = store._key(group, topic, partition)
    data = bytearray(store.client.get_object(Bucket=store.bucket, Key=key)["Body"].read())
    data[-1] ^= 0xFF
    store.client.put_object(Bucket=store.bucket, Key=key, Body=bytes(data))


Corrupt = Callable[[Any, str, str, int], None]


@pytest.fixture(params=["local", "postgres", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[CheckpointStore, Corrupt]]:
    """Each kind of store, built from its URL, with a way to damage one of its checkpoints."""
    if request.param == "local":
        yield checkpoint_store(f"file://{tmp_path / 'ckpt'}"), _corrupt_local
    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        yield checkpoint_store(url), _corrupt_postgres
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        url = f"s3://{_bucket(endpoint)}/fraud-eu/checkpoints"
        yield checkpoint_store(url, s3_endpoint_url=endpoint), _corrupt_s3


def _group() -> str:
    """A group id of this test alone: other tests (and other runs) share the database."""
    return f"g-{uuid.uuid4().hex[:10]}"


def test_a_saved_checkpoint_loads_back_with_its_offset(store: tuple[CheckpointStore, Corrupt]) -> None:
    checkpoints, _ = store
    group = _group()
    state = bytes(range(256)) * 40
    checkpoints.save(group, "transactions", 3, state, 1234)
    assert checkpoints.load(group, "transactions", 3) == (state, 1234)
    assert checkpoints.load(group, "transactions", 2) is None  # partitions are separate
    assert checkpoints.load(group, "other-topic", 3) is None


def test_a_state_saved_in_pieces_loads_back_as_their_bytes_joined(
    store: tuple[CheckpointStore, Corrupt],
) -> None:
    """A worker saves its state as pieces (views of the engine's arrays); they load back as one."""
    checkpoints, _ = store
    group = _group()
    engine = Engine()
    engine.score(
        TransactionBatch.from_pydict(
            {"transaction_id": ["t1", "t2"], "timestamp": [1_750_000_000_000, 1_750_000_060_000],
             "user_id": ["u1", "u2"], "amount": [12.5, 80.0], "currency": ["USD", "EUR"]}
        )
    )  # fmt: skip
    pieces = engine.snapshot_parts()
    assert any(isinstance(piece, memoryview) for piece in pieces)
    checkpoints.save(group, "transactions", 5, pieces, 99)
    assert checkpoints.load(group, "transactions", 5) == (engine.snapshot(), 99)


def test_a_later_save_replaces_state_and_offset_together(store: tuple[CheckpointStore, Corrupt]) -> None:
    checkpoints, _ = store
    group = _group()
    checkpoints.save(group, "transactions", 0, b"first state", 10)
    checkpoints.save(group, "transactions", 0, b"second, longer state", 25)
    checkpoints.save(group, "transactions", 0, b"", 26)
    assert checkpoints.load(group, "transactions", 0) == (b"", 26)


def test_a_missing_checkpoint_is_none(store: tuple[CheckpointStore, Corrupt]) -> None:
    checkpoints, _ = store
    assert checkpoints.load(_group(), "transactions", 0) is None


def test_a_corrupted_checkpoint_is_refused_by_its_checksum(store: tuple[CheckpointStore, Corrupt]) -> None:
    checkpoints, corrupt = store
    group = _group()
    checkpoints.save(group, "transactions", 1, b"engine state " * 100, 77)
    corrupt(checkpoints, group, "transactions", 1)
    with pytest.raises(StateError, match="checksum"):
        checkpoints.load(group, "transactions", 1)


def test_the_url_scheme_chooses_the_store(postgres_url: str, s3_endpoint: str, tmp_path: Path) -> None:
    assert isinstance(checkpoint_store(str(tmp_path / "a")), LocalCheckpoints)
    assert isinstance(checkpoint_store(tmp_path / "b"), LocalCheckpoints)
    assert isinstance(checkpoint_store(f"file://{tmp_path / 'c'}"), LocalCheckpoints)
    assert (tmp_path / "c").is_dir()
    assert isinstance(checkpoint_store(postgres_url), PostgresCheckpoints)
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    assert isinstance(checkpoint_store(plain), PostgresCheckpoints)
    url = f"s3://{_bucket(s3_endpoint)}"
    assert isinstance(checkpoint_store(url, s3_endpoint_url=s3_endpoint), S3Checkpoints)
    for wrong in ("redis://localhost/0", "http://example.com/ckpt", "sqlite:///x.db"):
        with pytest.raises(ConfigError, match="file://, postgresql://"):
            checkpoint_store(wrong)


def test_s3_takes_its_endpoint_from_the_aws_environment_too(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    checkpoints = checkpoint_store(f"s3://{_bucket(s3_endpoint)}/p")
    checkpoints.save("g", "t", 0, b"state", 5)
    assert checkpoints.load("g", "t", 0) == (b"state", 5)


@pytest.mark.parametrize("kind", ["postgres", "s3"])
def test_the_worker_checkpoints_each_partition_to_the_store_its_url_names(
    kind: str, broker: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    topic = f"ckpt-{uuid.uuid4().hex[:8]}"
    for name, partitions in (
        (topic, 2),
        (f"{topic}.decisions", 1),
        (f"{topic}.alerts", 1),
        (f"{topic}.dlq", 1),
    ):
        create_topic(broker, name, partitions)
    endpoint = None
    if kind == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        url = f"s3://{_bucket(endpoint)}/workers"
    producer = Producer({"bootstrap.servers": broker})
    for i in range(40):
        record = {"transaction_id": f"{topic}-{i}", "user_id": f"u{i % 7}", "amount": 10.0 + i}
        producer.produce(topic, key=record["user_id"].encode(), value=orjson.dumps(record))
    producer.flush()
    config = WorkerConfig.named_after(
        broker,
        topic,
        checkpoint_url=url,
        s3_endpoint_url=endpoint,
        checkpoint_dir=tmp_path / "unused",
        card_key=DEMO_CARD_KEY.encode(),
        session_timeout_ms=2000,  # a quicker join (about half of it on Tansu)
    )
    worker = Worker(config)
    run_to_the_end(worker)
    assert worker.counts["decisions"] == 40
    store = checkpoint_store(url, s3_endpoint_url=endpoint)
    saved = [store.load(config.group, topic, p) for p in (0, 1)]
    assert sum(found[1] for found in saved if found is not None) == 40
    assert not (tmp_path / "unused").exists(), "the URL replaces the checkpoint directory"
