"""The public Python API (`fraudstream.score`, `replay`, `evaluate`, `backtest`, `load_model`) agrees
with the `fraudstream` command and the ml/ functions it wraps, and says what it did on its own."""

from __future__ import annotations

import doctest
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import fraudstream
from factories import transaction
from fraudstream.cli import app
from fraudstream.core.engine import default_names
from fraudstream.core.features import FeatureConfig
from fraudstream.core.models import Model, fit_model
from fraudstream.core.rules import load_ruleset
from fraudstream.errors import ConfigError, ModelError
from fraudstream.ml.backtest import backtest as ml_backtest
from fraudstream.ml.dataset import InvalidRowsError, history_of_table, load_history
from fraudstream.ml.registry import Registry
from fraudstream.ml.train import evaluate as ml_evaluate
from fraudstream.ml.train import replay_training_features
from fraudstream.sim.generator import SimulationConfig, simulate

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"

KEYED = fraudstream.Settings(card_key="a-test-card-key")
CANDIDATE_RULES = """
version: 2
rules:
  - code: big_amount
    description: "amount over 1,000"
    expression: "amount > 1000"
    action: review
    weight: 60
"""


@pytest.fixture(scope="module")
def history() -> pa.Table:
    """A small simulated week, labelled, in time order."""
    return simulate(SimulationConfig(count=3_000, seed=11, fraud_rate=0.03))


@pytest.fixture(scope="module")
def payments(history: pa.Table) -> pa.Table:
    """The same transactions as a client sends them: no ground truth."""
    return history.drop_columns(["is_fraud", "fraud_scenario"])


@pytest.fixture(autouse=True)
def _no_models_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The champion is looked for under FRAUDSTREAM_DATA_DIR: keep ./data's models out of the tests."""
    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FRAUDSTREAM_CARD_KEY", raising=False)
    monkeypatch.delenv("FRAUDSTREAM_MODEL_PATH", raising=False)


@pytest.fixture
def champion(tmp_path: Path, history: pa.Table) -> Registry:
    """A registry whose champion is a small LightGBM model trained on the history's features."""
    known, _ = history_of_table(history, "history", "test")
    features, names = replay_training_features(known, 0)
    model: Model = fit_model(
        "lightgbm", features, known.is_fraud.astype(np.int8), names, version="test-champion",
        created="2026-11-30T00:00:00Z", training_fingerprint="test", params={"num_trees": 10},
    )  # fmt: skip
    registry = Registry(tmp_path / "models")
    registry.save(model)
    registry.promote("test-champion")
    return registry


def test_a_dataframe_and_an_arrow_table_get_the_decisions_the_cli_writes(
    tmp_path: Path, payments: pa.Table
) -> None:
    source, out = tmp_path / "in.parquet", tmp_path / "out.jsonl"
    pq.write_table(payments, source)
    result = CliRunner().invoke(
        app, ["score", str(source), "-o", str(out), "--model", "none"], env={"FRAUDSTREAM_DEMO": "1"}
    )
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in out.read_text().splitlines()]

    with pytest.warns(fraudstream.FraudstreamWarning, match="demo key"):  # as the CLI, without a key
        from_frame = fraudstream.score(payments.to_pandas(), model=None)
    with pytest.warns(fraudstream.FraudstreamWarning, match="demo key"):
        from_table = fraudstream.score(payments, model=None, settings=fraudstream.Settings(demo=True))

    for decisions in (from_frame, from_table):
        assert len(decisions) == len(written) == payments.num_rows
        assert decisions["transaction_id"].tolist() == [w["transaction_id"] for w in written]
        assert decisions["decision"].tolist() == [w["decision"] for w in written]
        assert decisions["score"].tolist() == [w["score"] for w in written]
        assert decisions["reasons"].tolist() == [w["reasons"] for w in written]
    assert set(from_frame["decision"]) > {"approve"}, "the week should flag something"


def test_a_card_key_in_the_settings_is_used_without_a_warning(payments: pa.Table) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decisions = fraudstream.score(payments.slice(0, 50), model=None, settings=KEYED)
    assert len(decisions) == 50


def test_the_champion_decides_by_default_and_without_one_the_rules_do_with_a_warning(
    champion: Registry, payments: pa.Table, tmp_path: Path
) -> None:
    decisions = fraudstream.score(payments, settings=KEYED, registry=champion.root)
    assert set(decisions["model_version"]) == {"test-champion"}
    assert decisions["probability"].between(0, 1).all()
    flagged = decisions[decisions["decision"] != "approve"]
    assert any(r["kind"] == "model" for reasons in flagged["reasons"] for r in reasons)

    with pytest.warns(fraudstream.FraudstreamWarning, match="rules alone"):
        alone = fraudstream.score(payments, settings=KEYED, registry=tmp_path / "empty")
    assert alone["model_version"].isna().all()
    assert alone["probability"].isna().all()


def test_load_model_takes_champion_latest_a_version_or_a_directory(
    champion: Registry, tmp_path: Path
) -> None:
    for reference in ("champion", "latest", "test-champion"):
        assert fraudstream.load_model(reference, registry=champion.root).metadata.version == "test-champion"
    directory = champion.root / "test-champion"
    assert fraudstream.load_model(directory).metadata.version == "test-champion"
    assert fraudstream.load_model(str(directory)).metadata.version == "test-champion"
    with pytest.raises(ModelError, match="no champion model"):
        fraudstream.load_model("champion", registry=tmp_path / "empty")
    with pytest.raises(ModelError, match="does not exist"):
        fraudstream.load_model(tmp_path / "nowhere")


def test_a_few_invalid_rows_are_left_out_with_a_warning_and_too_many_are_refused() -> None:
    rows = [transaction(f"t{i}", amount=10.0, timestamp="2026-01-01T10:00:00Z") for i in range(99)]
    rows.append(transaction("bad", amount=-5.0, timestamp="2026-01-01T10:00:00Z"))
    frame = pd.DataFrame(rows)
    with pytest.warns(fraudstream.FraudstreamWarning, match="1 invalid"):
        decisions = fraudstream.score(frame, model=None, settings=KEYED)
    assert "bad" not in set(decisions["transaction_id"])
    with pytest.raises(InvalidRowsError, match="amount"):
        fraudstream.score(frame, model=None, settings=KEYED, max_invalid="0.5%")


def test_columns_are_mapped_and_times_without_a_zone_need_one() -> None:
    frame = pd.DataFrame(
        {"TX_ID": ["a", "b"], "CUSTOMER": ["c", "c"], "TX_AMOUNT": [5.0, 6.0],
         "TX_DATETIME": ["2026-01-01 10:00:00"] * 2}
    )  # fmt: skip
    mapping = {
        "transaction_id": "TX_ID",
        "user_id": "CUSTOMER",
        "amount": "TX_AMOUNT",
        "timestamp": "TX_DATETIME",
    }
    with pytest.raises(ConfigError, match="without a zone"):
        fraudstream.score(frame, model=None, settings=KEYED, mapping=mapping)
    decisions = fraudstream.score(frame, model=None, settings=KEYED, mapping=mapping, timezone="UTC")
    assert decisions["transaction_id"].tolist() == ["a", "b"]


def test_rules_from_a_yaml_file_decide_instead_of_the_packaged_ones(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(CANDIDATE_RULES)
    frame = pd.DataFrame([transaction("t1", amount=1500.0, timestamp="2026-01-01T10:00:00Z")])
    decisions = fraudstream.score(frame, model=None, rules=path, settings=KEYED)
    assert decisions.loc[0, "rules"] == ["big_amount"]
    assert decisions.loc[0, "ruleset_version"] == 2


def test_evaluate_replay_and_backtest_give_what_the_ml_functions_give_for_the_file(
    tmp_path: Path, history: pa.Table
) -> None:
    path = tmp_path / "history.parquet"
    pq.write_table(history, path)
    known = load_history(path)

    report, replayed, _ = ml_evaluate(known, None, from_ms=None, to_ms=None, label_delay_ms=0)
    assert _same(fraudstream.evaluate(path, model=None), report)
    from_frame = fraudstream.evaluate(history.to_pandas(), model=None)
    assert _same({**from_frame, "data": report["data"]}, report)

    frame = fraudstream.replay(history, model=None)
    assert frame["transaction_id"].tolist() == known.batch.transaction_id.to_pylist()
    assert frame["score"].tolist() == replayed.score.tolist()
    assert frame["is_fraud"].tolist() == known.is_fraud.tolist()
    assert frame["reasons"].tolist() == replayed.reasons

    rules = tmp_path / "candidate.yaml"
    rules.write_text(CANDIDATE_RULES)
    candidate = load_ruleset(CANDIDATE_RULES, default_names(FeatureConfig()))
    expected = ml_backtest(known, candidate, label_delay_ms=0)
    assert _same(fraudstream.backtest(path, rules), expected)


def test_a_window_bound_without_a_time_zone_is_refused(history: pa.Table) -> None:
    with pytest.raises(ConfigError, match="no time zone"):
        fraudstream.evaluate(history, model=None, start="2026-01-05T00:00:00")


def test_the_readme_python_example_prints_what_it_shows() -> None:
    section = README.read_text(encoding="utf-8").split("\n## Python API\n", 1)[1]
    example = section.split("```pycon\n", 1)[1].split("```", 1)[0]
    test = doctest.DocTestParser().get_doctest(example, {}, "README Python API", str(README), 0)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def _same(found: dict[str, object], expected: dict[str, object]) -> bool:
    """Reports equal value for value, an undefined metric (NaN) equal to itself."""
    return json.dumps(found, sort_keys=True) == json.dumps(expected, sort_keys=True)
