"""`fraudstream simulate --scenario NAME`: one scenario alone, to a file, a keyed server or a Kafka topic."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fraudstream.cli import app
from fraudstream.cli.simulate import SCENARIO_HELP
from fraudstream.sim.scenarios import SCENARIOS

pytestmark = pytest.mark.integration

runner = CliRunner()
ADMIN_KEY = "fs_admin_scenario_key_1234567"


def test_the_hacker_scenario_alone_goes_to_a_file_labelled(tmp_path: Path) -> None:
    out = tmp_path / "hacker.parquet"
    result = runner.invoke(app, ["simulate", "--scenario", "hacker", "--count", "200", "--to", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 200
    assert set(table.column("fraud_scenario").to_pylist()) == {"hacker"}
    assert all(table.column("is_fraud").to_pylist())
    assert "label_time" in table.column_names


def test_scenarios_repeat_or_come_comma_separated_and_background_keeps_the_legitimate_traffic(
    tmp_path: Path,
) -> None:
    out = tmp_path / "two.parquet"
    args = ["simulate", "--count", "400", "--to", str(out)]
    for names in (
        ["--scenario", "hacker,card_testing"],
        ["--scenario", "hacker", "--scenario", "card_testing"],
    ):
        assert runner.invoke(app, [*args, *names]).exit_code == 0
        counts = pc.value_counts(pq.read_table(out).column("fraud_scenario")).to_pylist()
        assert {c["values"]: c["counts"] for c in counts} == {"hacker": 200, "card_testing": 200}
    result = runner.invoke(app, [*args, "--scenario", "hacker", "--background", "--fraud-rate", "0.1"])
    assert result.exit_code == 0, result.output
    scenarios = pq.read_table(out).column("fraud_scenario").to_pylist()
    assert set(scenarios) == {"", "hacker"}
    assert 20 <= scenarios.count("hacker") <= 60


def test_an_unknown_scenario_is_refused_in_one_line_naming_the_known_ones(tmp_path: Path) -> None:
    out = tmp_path / "never.parquet"
    result = runner.invoke(app, ["simulate", "--scenario", "hacker,hackr", "--to", str(out)])
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line
    assert "hackr" in line
    assert all(name in line for name in SCENARIOS)
    assert not out.exists()


def test_the_help_names_every_scenario() -> None:
    assert SCENARIO_HELP.split(", ") == list(SCENARIOS)


def test_one_scenario_goes_to_a_keyed_server_at_its_rate(run_server: Callable[..., Any]) -> None:
    server = run_server(api_keys_enabled="true", admin_key=ADMIN_KEY)
    args = ["simulate", "--scenario", "hacker", "--count", "30", "--rate", "20", "--to", server.url]
    started = time.monotonic()
    result = runner.invoke(app, [*args, "--api-key", ADMIN_KEY], env={"FRAUDSTREAM_API_KEY": None})
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    # 30 events at 20/s, two a request: the last is due at 1.4 s.
    assert 1.3 < elapsed < 4
    stats = httpx.get(f"{server.url}/v1/stats", headers={"X-API-Key": ADMIN_KEY}).json()
    assert stats["transactions"] == 30


def test_the_hacker_stream_goes_to_the_topic_seed_003_reads(broker: str) -> None:
    from confluent_kafka import Consumer

    from kafka_broker import create_topic

    create_topic(broker, "raw_transactions", 1)
    args = ["simulate", "--scenario", "hacker", "--count", "20", "--rate", "20"]
    started = time.monotonic()
    result = runner.invoke(app, [*args, "--to", f"kafka://{broker}/raw_transactions"])
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started > 0.9  # 20 events at 20/s: the last is due at 0.95 s
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe(["raw_transactions"])
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(found) < 20 and time.monotonic() < deadline:
        found += [orjson.loads(m.value()) for m in consumer.consume(100, 0.5) if m.error() is None]
    consumer.close()
    assert len(found) == 20
    assert {r["device_id"][:9] for r in found} == {"device-40"}  # the attacker's devices, not the victims'
    assert "fraud_scenario" not in found[0]  # a live stream carries no answer key
