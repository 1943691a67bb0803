"""`fraudstream score` on every input it takes (stdin, CSV, JSON lines) and on input it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fraudstream.cli import app
from fraudstream.config import DEMO_CARD_KEY
from fraudstream.core.engine import Engine
from fraudstream.core.models import fit_model
from fraudstream.core.schema import Validator
from fraudstream.ml.registry import Registry
from fraudstream.reference import load_reference
from fraudstream.sim.generator import SimulationConfig, simulate

pytestmark = pytest.mark.integration

# Demo mode: no card key to set (outside it, `score` wants the server's, as `serve` does).
runner = CliRunner(env={"FRAUDSTREAM_DEMO": "1"})


def test_transactions_piped_on_stdin_are_scored_and_printed() -> None:
    rows = [
        {"transaction_id": "s1", "user_id": "u", "amount": 50, "timestamp": "2026-01-01T10:00:00Z"},
        {"transaction_id": "s2", "user_id": "u", "amount": 5000, "timestamp": "2026-01-01T10:01:00Z"},
    ]
    result = runner.invoke(app, ["score", "-"], input=json.dumps(rows))
    assert result.exit_code == 0, result.output
    assert "s2" in result.output
    assert "review" in result.output
    assert "2 scored, 0 invalid" in result.output


def test_a_csv_file_is_scored_into_json_lines(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "transaction_id,user_id,amount,timestamp\n"
        "c1,u,50,2026-01-01T10:00:00Z\n"
        "c2,u,5000,2026-01-01T10:01:00Z\n"
    )
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["score", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    decisions = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["decision"] for d in decisions] == ["approve", "review"]
    assert decisions[1]["reasons"][0]["code"] == "amount_spike"


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("broken.jsonl", '{"transaction_id": "a", "user_id": "u", "amount": 5}\n{"oops": \n', "line 2"),
        ("broken.parquet", "not parquet at all", "cannot be read"),
        ("missing.json", None, "does not exist"),
    ],
)
def test_an_unreadable_file_is_named_with_its_problem_and_exit_code_2(
    tmp_path: Path, name: str, content: str | None, says: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    result = runner.invoke(app, ["score", str(path)])
    assert result.exit_code == 2
    assert says in " ".join(result.output.split())  # Rich wraps long lines
    assert "Traceback" not in result.output


@pytest.fixture(autouse=True)
def _no_models_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`score` decides with the registry's champion by default: keep ./data's models out of the tests."""
    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(tmp_path / "data"))


def test_score_decides_with_the_champion_as_the_server_does_unless_told_otherwise(tmp_path: Path) -> None:
    transactions = simulate(SimulationConfig(count=3_000, seed=2, fraud_rate=0.05))
    source = tmp_path / "in.parquet"
    pq.write_table(transactions.drop_columns(["is_fraud", "fraud_scenario"]), source)
    validator = Validator(load_reference(), DEMO_CARD_KEY.encode())
    batch = validator.table(transactions.drop_columns(["is_fraud", "fraud_scenario"]), received_at_ms=0).batch
    features = Engine().score(batch).features
    labels = transactions.column("is_fraud").to_numpy(zero_copy_only=False).astype(np.int8)
    model = fit_model(
        "lightgbm", features.values, labels, features.names, version="test-champion",
        created="2026-11-30T00:00:00Z", training_fingerprint="test", params={"num_trees": 10},
    )  # fmt: skip
    registry = Registry(tmp_path / "models")
    registry.save(model)
    registry.promote("test-champion")

    for extra, version in (([], "test-champion"), (["--model", "none"], None)):
        out = tmp_path / f"out-{version}.jsonl"
        arguments = ["score", str(source), "-o", str(out), "--registry", str(registry.root), *extra]
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, result.output
        assert f"deciding with {f'model {version}' if version else 'the rules alone'}" in result.output
        decisions = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(decisions) == 3_000
        assert {d["model_version"] for d in decisions} == {version}
        assert all((d["probability"] is None) == (version is None) for d in decisions)
