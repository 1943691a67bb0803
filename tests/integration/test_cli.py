"""The `fraudstream` command, invoked for real on real files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fraudstream import __version__
from fraudstream.cli import app

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["demo"],
        ["score"],
        ["rules", "validate"],
        ["rules", "show"],
        ["config", "show"],
        ["db", "upgrade"],
        ["simulate"],
    ],
)
def test_every_command_explains_itself_with_an_example(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    if command:
        assert "Example" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.output.strip() == f"fraudstream {__version__}"


def test_score_a_file_and_write_decisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(tmp_path / "data"))  # no champion: the rules decide
    monkeypatch.delenv("FRAUDSTREAM_CARD_KEY", raising=False)
    monkeypatch.delenv("FRAUDSTREAM_DEMO", raising=False)
    source = tmp_path / "in.jsonl"
    rows = [
        {"transaction_id": "a", "user_id": "u", "amount": 50, "timestamp": "2026-01-01T10:00:00Z"},
        {"transaction_id": "b", "user_id": "u", "amount": 5000, "timestamp": "2026-01-01T10:01:00Z"},
        {"transaction_id": "c", "user_id": "u", "amount": -1},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.parquet"
    # Outside demo mode, a card key: fingerprints must match the server's.
    keyless = runner.invoke(app, ["score", str(source), "-o", str(out)])
    assert keyless.exit_code == 2, keyless.output
    assert "FRAUDSTREAM_CARD_KEY is required" in keyless.output
    monkeypatch.setenv("FRAUDSTREAM_DEMO", "1")
    result = runner.invoke(app, ["score", str(source), "-o", str(out), "--max-invalid", "50%"])
    assert result.exit_code == 0, result.output
    assert "row 2 skipped" in result.output
    assert "3 rows read, 1 invalid (33.3%)" in " ".join(result.output.split())  # Rich wraps lines
    table = pq.read_table(out).to_pylist()
    assert [r["decision"] for r in table] == ["approve", "review"]
    assert "amount_spike" in table[1]["rules"]


def test_rules_validate_reports_the_rule_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - {code: x, expression: 'user.cnt_30s > 5', action: review}\n")
    result = runner.invoke(app, ["rules", "validate", str(bad)])
    assert result.exit_code == 1
    assert "rule 'x' at column 1" in result.output
    assert "did you mean" in result.output
    assert runner.invoke(app, ["rules", "show"]).exit_code == 0


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FRAUDSTREAM_CARD_KEY", "super-secret-card-key")
    monkeypatch.setenv("FRAUDSTREAM_DATABASE_URL", "postgresql+psycopg://app:hunter2@db.example/fraud")
    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_OPTIONS", '{"sasl.password": "kafka-pass", "client.id": "eu"}')
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "super-secret-card-key" not in result.output
    assert "hunter2" not in result.output
    assert "kafka-pass" not in result.output
    assert "****" in result.output


@pytest.mark.parametrize("command", [["config", "show"], ["worker", "--brokers", "127.0.0.1:9"]])
def test_a_missing_card_key_is_a_clear_configuration_error(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.delenv("FRAUDSTREAM_CARD_KEY", raising=False)
    monkeypatch.delenv("FRAUDSTREAM_DEMO", raising=False)
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert "FRAUDSTREAM_CARD_KEY is required" in result.output


def test_commands_that_only_use_the_database_need_no_card_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Creating API keys, migrating the database and retraining never see a card number."""
    monkeypatch.delenv("FRAUDSTREAM_CARD_KEY", raising=False)
    monkeypatch.delenv("FRAUDSTREAM_DEMO", raising=False)
    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(tmp_path))
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    created = runner.invoke(app, ["keys", "create", "ops", "--role", "admin"])
    assert created.exit_code == 0, created.output
    assert "fs_" in created.output
    # The other settings are still checked.
    monkeypatch.setenv("FRAUDSTREAM_REVIEW_THRESHOLD", "95")
    refused = runner.invoke(app, ["db", "upgrade"])
    assert refused.exit_code == 2
    assert "thresholds must rise" in refused.output


def test_db_upgrade_and_simulate_to_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FRAUDSTREAM_CARD_KEY", "k")
    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(tmp_path))
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert (tmp_path / "fraudstream.db").is_file()
    out, labels = tmp_path / "sim.parquet", tmp_path / "labels.parquet"
    result = runner.invoke(app, ["simulate", "--count", "3000", "--to", str(out), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 3000
    assert pq.read_table(labels).num_rows == sum(table.column("is_fraud").to_pylist())


def test_a_worker_given_a_broken_rule_set_says_which_rule_and_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nrules:\n  - code: too_big\n    expression: 'amount >> 5'\n    action: review\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("FRAUDSTREAM_CARD_KEY", "k" * 32)
    # No broker at this address: the rule set is read, and refused, before any connection.
    result = runner.invoke(app, ["worker", "--brokers", "127.0.0.1:9", "--rules", str(rules)])
    assert result.exit_code == 2, result.output
    assert "cannot start the worker" in result.output
    assert "too_big" in result.output


def test_training_without_labels_known_in_the_window_says_what_to_change(tmp_path: Path) -> None:
    data = tmp_path / "sim.parquet"
    assert runner.invoke(app, ["simulate", "--count", "2000", "--to", str(data)]).exit_code == 0
    # A label delay of 7 days is longer than this history: no row has a known label.
    result = runner.invoke(
        app, ["train", "--data", str(data), "--registry", str(tmp_path / "models"), "--label-delay", "7d"]
    )
    assert result.exit_code == 2, result.output
    assert "cannot train" in result.output
    assert "--label-delay" in result.output
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["train", "--data", str(tmp_path / "nowhere.parquet")])
    assert missing.exit_code == 2
    assert "cannot train" in missing.output


@pytest.mark.parametrize(
    ("before", "arguments", "message"),
    [
        ([], ["backtest", "--rules", "missing.yaml", "--data", "sim.parquet"], "No such file or directory"),
        ([], ["evaluate", "--data", "missing.parquet"], "no such file: missing.parquet"),
        ([], ["rules", "show", "bad.yaml"], "rule 'huge' at column 8"),
        ([], ["models", "show", "v-none", "--registry", "models"], "no model version 'v-none'"),
        ([], ["retrain"], "cannot use the database: unable to open database file (check FRAUDSTREAM_"),
        (["db", "upgrade"], ["retrain"], "cannot retrain: only 0 fraud labels since then"),
    ],
)
def test_a_bad_file_or_name_ends_the_command_with_one_line_not_a_traceback(
    tmp_path: Path, before: list[str], arguments: list[str], message: str
) -> None:
    (tmp_path / "bad.yaml").write_text(
        "version: 2\nrules:\n  - code: huge\n    expression: amount >> 5\n    action: review\n"
    )
    (tmp_path / "models").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDSTREAM_")}
    # No database there (retrain) unless the command run before makes one.
    env |= {"FRAUDSTREAM_DEMO": "1", "FRAUDSTREAM_DATA_DIR": str(tmp_path / "data")}
    if before:
        (tmp_path / "data").mkdir()
        subprocess.run([sys.executable, "-m", "fraudstream", *before], env=env, check=True)
    done = subprocess.run(
        [sys.executable, "-m", "fraudstream", *arguments],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ")
    assert message in " ".join(done.stderr.split()), done.stderr


def test_simulate_refuses_a_file_it_cannot_write_before_simulating(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--count", "10", "--to", str(tmp_path / "sim.txt")])
    assert result.exit_code == 2
    assert "Invalid value for --to" in result.output
    assert ".parquet, .csv or .jsonl" in result.output
    assert not (tmp_path / "sim.txt").exists()


def test_rules_show_yaml_gives_the_built_in_set_to_start_a_candidate_from(tmp_path: Path) -> None:
    from fraudstream.core.engine import default_names, default_ruleset
    from fraudstream.core.features import FeatureConfig
    from fraudstream.core.rules import load_ruleset

    result = runner.invoke(app, ["rules", "show", "--yaml"])
    assert result.exit_code == 0, result.output
    shown = load_ruleset(result.output, default_names(FeatureConfig()))
    built_in = default_ruleset()
    assert [(r.code, r.expression, r.action) for r in shown.rules] == [
        (r.code, r.expression, r.action) for r in built_in.rules
    ]
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(result.output.replace("amount > 10000", "amount > 5000"))
    assert "amount > 10000" in result.output
    validated = runner.invoke(app, ["rules", "validate", str(candidate)])
    assert validated.exit_code == 0, validated.output
    assert runner.invoke(app, ["rules", "show", str(candidate), "--yaml"]).output == candidate.read_text()


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_port_in_use_is_refused_at_once_with_one_line(tmp_path: Path, command: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDSTREAM_")}
        env |= {"FRAUDSTREAM_DEMO": "1", "FRAUDSTREAM_DATA_DIR": str(tmp_path / "data")}
        done = subprocess.run(
            [sys.executable, "-m", "fraudstream", command, "--port", str(port)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "is live" not in done.stderr + done.stdout
