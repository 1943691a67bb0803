"""Topics under the names a user's cluster already has, and librdkafka properties from a file and from
--kafka-option, through the real commands against a real broker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from confluent_kafka.admin import AdminClient

from fraudstream.config import DEMO_CARD_KEY
from kafka_broker import topic_reader

pytestmark = pytest.mark.integration

#: Nothing listens here: a client that reaches the broker got its address from the properties.
NOWHERE = "127.0.0.1:9"


def _fraudstream(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudstream", *arguments],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _names(prefix: str) -> dict[str, str]:
    return {
        "--transactions-topic": f"{prefix}_transactions",
        "--decisions-topic": f"{prefix}_decisions",
        "--alerts-topic": f"{prefix}_alerts",
        "--dlq-topic": f"{prefix}_dlq",
        "--labels-topic": f"{prefix}_labels",
    }


def _read(broker: str, topic: str, expect: int, timeout: float = 60) -> list[dict[str, object]]:
    consumer = topic_reader(broker, topic)
    found: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    while len(found) < expect and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            found.append(orjson.loads(message.value() or b"null"))
    consumer.close()
    return found


def test_topics_create_makes_the_renamed_topics_with_the_broker_from_a_kafka_option(broker: str) -> None:
    names = _names(f"t{uuid.uuid4().hex[:6]}")
    flags = [part for flag, name in names.items() for part in (flag, name)]
    done = _fraudstream(
        "topics", "create", "--brokers", NOWHERE, "--kafka-option", f"bootstrap.servers={broker}", *flags
    )
    assert done.returncode == 0, done.stderr
    existing = set(AdminClient({"bootstrap.servers": broker}).list_topics(timeout=10).topics)
    assert set(names.values()) <= existing
    for name in names.values():
        assert name in done.stdout


def test_serve_kafka_and_a_worker_use_renamed_topics_and_a_properties_file(
    broker: str, tmp_path: Path
) -> None:
    """The API and the worker are told a broker where nothing listens; the real one comes from the
    properties file (worker) and a --kafka-option (API): every one of their clients got them, or no
    decision would come back."""
    prefix = f"n{uuid.uuid4().hex[:6]}"
    names = _names(prefix)
    flags = [part for flag, name in names.items() for part in (flag, name)]
    created = _fraudstream("topics", "create", "--brokers", broker, "--partitions", "2", *flags)
    assert created.returncode == 0, created.stderr
    properties = tmp_path / "client.properties"
    properties.write_text(f"# the cluster\nbootstrap.servers={broker}\nclient.id=fraud-eu\n")
    env = {
        **os.environ,
        "FRAUDSTREAM_CARD_KEY": DEMO_CARD_KEY,
        "FRAUDSTREAM_KAFKA_CONTROL_TOPIC": "",
    }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fraudstream",
            "worker",
            "--brokers",
            NOWHERE,
            "--group",
            f"g-{prefix}",
            "--checkpoint-dir",
            str(tmp_path / "checkpoints"),
            *flags,
        ],
        env={**env, "FRAUDSTREAM_KAFKA_CONFIG": str(properties)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fraudstream",
            "serve",
            "--port",
            str(port),
            "--kafka",
            NOWHERE,
            "--kafka-option",
            f"bootstrap.servers={broker}",
            "--kafka-option",
            "client.id=fraud-api",
            *flags,
        ],
        env={**env, "FRAUDSTREAM_DEMO": "1", "FRAUDSTREAM_DATA_DIR": str(tmp_path / "api")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=5)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            time.sleep(0.5)
        assert ready is not None, "the server never answered"
        assert ready.status_code == 200, ready.text
        big = {
            "transaction_id": f"{prefix}-big",
            "user_id": "u1",
            "amount": 20_000.0,
            "card_number": "4242424242424242",
        }
        assert httpx.post(f"{base}/v1/transactions", json=big, timeout=10).status_code == 202
        found = None
        while time.monotonic() < deadline + 60:
            found = httpx.get(f"{base}/v1/transactions/{prefix}-big", timeout=5)
            if found.status_code == 200:
                break
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            time.sleep(0.3)
        assert found is not None
        assert found.status_code == 200, "no decision came back through the renamed topics"
        assert found.json()["decision"]["decision"] == "review"
    finally:
        for process in (server, worker):
            process.terminate()
            process.wait(30)
    decisions = _read(broker, names["--decisions-topic"], expect=1)
    assert [d["decision"]["transaction_id"] for d in decisions] == [f"{prefix}-big"]  # type: ignore[index]
    alerts = _read(broker, names["--alerts-topic"], expect=1)
    assert len(alerts) == 1


def test_simulate_produces_to_the_transactions_topic_setting_with_the_broker_from_the_file(
    broker: str, tmp_path: Path
) -> None:
    topic = f"s{uuid.uuid4().hex[:6]}_raw_transactions"
    created = _fraudstream("topics", "create", "--brokers", broker, "--transactions-topic", topic)
    assert created.returncode == 0, created.stderr
    properties = tmp_path / "client.properties"
    properties.write_text(f"bootstrap.servers={broker}\n")
    done = _fraudstream(
        "simulate",
        "--count",
        "30",
        "--to",
        f"kafka://{NOWHERE}",
        "--transactions-topic",
        topic,
        "--kafka-option",
        "client.id=fraud-sim",
        env={"FRAUDSTREAM_KAFKA_CONFIG": str(properties)},
    )
    assert done.returncode == 0, done.stderr
    assert len(_read(broker, topic, expect=30, timeout=30)) == 30
