"""The long commands show their work: `--json` gives scripts one JSON object with counts as integers,
the tables give people current vs candidate, every rule problem at once, and progress goes to stderr
(live in a terminal, a line per finished step in a log)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fraudstream.cli import app
from fraudstream.sim.generator import SimulationConfig, simulate, with_label_times
from fraudstream.sim.output import write_table

pytestmark = pytest.mark.integration

# Demo mode: `score` takes the demo card key (outside it, the server's is required).
runner = CliRunner(env={"FRAUDSTREAM_DEMO": "1"})

#: A candidate that differs from the built-in rules in one known way: amount_spike is disabled.
DISABLED = "amount_spike"


def strict_json(text: str) -> Any:
    """``text`` parsed as JSON that any reader takes: exactly one document, no NaN or Infinity."""

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} is not JSON; a script's reader (jq) refuses it")

    return json.loads(text, parse_constant=refuse)


def counts_are_integers(value: Any, *names: str) -> None:
    for name in names:
        assert type(value[name]) is int, f"{name} = {value[name]!r} is not an integer"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four days of simulated traffic with frauds and when they were reported, 6,000 rows."""
    config = SimulationConfig(count=6_000, seed=3, fraud_rate=0.03, duration_ms=4 * 86_400_000)
    path = tmp_path_factory.mktemp("history") / "sim.parquet"
    write_table(with_label_times(simulate(config), config), path)
    return path


@pytest.fixture
def candidate(tmp_path: Path) -> Path:
    """The built-in rule set as `rules show --yaml` prints it, with amount_spike disabled."""
    shown = runner.invoke(app, ["rules", "show", "--yaml"])
    assert shown.exit_code == 0, shown.output
    text = shown.stdout.replace("version: 1\n", "version: 2\n", 1)
    start = text.index(f"code: {DISABLED}")
    action = text.index("action:", start)
    path = tmp_path / "candidate.yaml"
    path.write_text(text[:action] + "enabled: false\n    " + text[action:])
    return path


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(tmp_path / "data"))  # no models from elsewhere


def test_simulate_json_counts_what_it_made_as_integers(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["simulate", "--count", "3000", "--to", "sim.parquet", "--labels", "labels.parquet", "--json"]
    )
    assert result.exit_code == 0, result.output
    made = strict_json(result.stdout)
    counts_are_integers(made, "transactions", "frauds", "label_events")
    assert made["transactions"] == 3000
    assert sum(made["by_scenario"].values()) == made["frauds"] > 0
    assert made["to"] == "sim.parquet"
    assert "wrote 3,000 transactions to sim.parquet" in result.stderr

    table = runner.invoke(app, ["simulate", "--count", "3000", "--to", "again.parquet"])
    assert table.exit_code == 0, table.output
    assert f"3,000 transactions, {made['frauds']:,} frauds" in table.stdout
    assert "account_takeover" in table.stdout


def test_train_json_has_integer_counts_and_its_table_shows_them_as_integers(history: Path) -> None:
    arguments = ["train", "--data", str(history), "--model", "logistic", "--label-delay", "1d"]
    result = runner.invoke(app, [*arguments, "--registry", "models", "--json"])
    assert result.exit_code == 0, result.output
    trained = strict_json(result.stdout)
    counts_are_integers(trained, "training_rows", "training_frauds", "frauds_not_yet_reported")
    counts_are_integers(trained, "transactions", "frauds", "flagged", "frauds_flagged")
    assert trained["champion"] is False
    assert "-logistic-" in trained["version"]

    shown = runner.invoke(app, [*arguments, "--registry", "models", "--promote"])
    assert shown.exit_code == 0, shown.output
    version = next(line for line in shown.stdout.splitlines() if "version" in line)
    assert "(champion)" in version
    rows = next(line for line in shown.stdout.splitlines() if "training rows" in line)
    assert rows.split("│")[2].strip().replace(",", "").isdigit(), rows  # 4,321, not 4321.0
    assert "Choosing a threshold" in shown.stdout
    assert "{" not in shown.stdout  # a table for people, no JSON


def test_evaluate_json_is_strict_json_with_integer_counts(history: Path) -> None:
    arguments = ["evaluate", "--data", str(history), "--model", "rules", "--json"]
    result = runner.invoke(app, [*arguments, "--from", "2026-01-03T00:00:00+00:00"])
    assert result.exit_code == 0, result.output
    report = strict_json(result.stdout)
    counts_are_integers(report, "transactions", "frauds", "flagged", "frauds_flagged")
    for row in report["threshold_table"]:
        counts_are_integers(row, "flagged", "frauds_caught")
    assert report["window_from"].startswith("2026-01-03")


def test_a_window_without_fraud_has_null_metrics_not_nan(tmp_path: Path) -> None:
    config = SimulationConfig(count=500, seed=5, fraud_rate=0.0, duration_ms=86_400_000)
    write_table(with_label_times(simulate(config), config), tmp_path / "clean.parquet")
    result = runner.invoke(app, ["evaluate", "--data", "clean.parquet", "--model", "rules", "--json"])
    assert result.exit_code == 0, result.output
    report = strict_json(result.stdout)
    assert report["frauds"] == 0
    assert report["roc_auc"] is None


def test_backtest_compares_current_and_candidate_with_the_change(history: Path, candidate: Path) -> None:
    arguments = ["backtest", "--rules", str(candidate), "--data", str(history)]
    result = runner.invoke(app, [*arguments, "--json"])
    assert result.exit_code == 0, result.output
    compared = strict_json(result.stdout)
    assert compared["current"] == {"rules": "built-in", "version": 1}
    assert compared["candidate"] == {"rules": str(candidate), "version": 2}
    alerts = compared["policy"]["flagged"]
    counts_are_integers(alerts, "current", "candidate", "delta")
    assert alerts["delta"] == alerts["candidate"] - alerts["current"]
    for name, row in compared["policy"].items():
        if isinstance(row["current"], int):
            assert row["delta"] == row["candidate"] - row["current"], name
    spike = next(row for row in compared["rules"] if row["code"] == DISABLED)
    assert spike["change"] == "changed"
    assert spike["changed"] == ["disabled"]
    assert spike["current"]["hits"] > 0, "the test needs a rule that hits to disable"
    assert spike["candidate"]["hits"] == 0
    assert spike["delta_hits"] == -spike["current"]["hits"]
    # Disabling a rule that hits changes what is flagged.
    assert alerts["candidate"] != alerts["current"]
    unchanged = [row for row in compared["rules"] if row["code"] != DISABLED]
    assert {row["change"] for row in unchanged} == {"unchanged"}

    table = runner.invoke(app, arguments)
    assert table.exit_code == 0, table.output
    header = next(line for line in table.stdout.splitlines() if "candidate" in line and "change" in line)
    assert header.split() == ["current", "candidate", "change"]
    shown = next(line for line in table.stdout.splitlines() if line.strip().startswith("alerts (reviews"))
    assert shown.split()[-3:] == [
        f"{alerts['current']:,}",
        f"{alerts['candidate']:,}",
        f"{alerts['delta']:+,}",
    ]
    spike_line = next(line for line in table.stdout.splitlines() if line.strip().startswith(DISABLED))
    assert f"{spike['current']['hits']:,} → 0" in spike_line
    assert "disabled" in spike_line


def test_score_json_counts_decisions_and_carries_them_unless_written(tmp_path: Path, history: Path) -> None:
    result = runner.invoke(app, ["score", str(history), "--model", "none", "--json"])
    assert result.exit_code == 0, result.output
    scored = strict_json(result.stdout)
    counts_are_integers(scored, "scored", "invalid")
    assert scored["scored"] == 6_000
    assert sum(scored["decisions"].values()) == scored["scored"]
    assert len(scored["records"]) == scored["scored"]
    assert scored["decisions"]["review"] == sum(r["decision"] == "review" for r in scored["records"])

    written = runner.invoke(app, ["score", str(history), "--model", "none", "-o", "d.jsonl", "--json"])
    assert written.exit_code == 0, written.output
    summary = strict_json(written.stdout)
    assert "records" not in summary
    assert summary["output"] == "d.jsonl"
    assert len((tmp_path / "d.jsonl").read_text().splitlines()) == 6_000


BAD_RULES = """version: 1
rules:
  - {code: big, expression: 'amount > 10000', action: stop}
  - {code: fast, expression: 'user.cnt_30s > 5', action: review}
  - {code: fine, expression: 'amount > 1', action: tag}
  - {code: heavy, expression: 'amount > 5', action: review, weight: 500}
"""


def test_rules_validate_names_every_bad_rule_at_once(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_RULES)
    result = runner.invoke(app, ["rules", "validate", "bad.yaml"])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "invalid bad.yaml: 3 problems" in said
    assert "rule 'big' (action): action 'stop' is not one of" in said
    assert "rule 'fast' at column 1 (expression): unknown name 'user.cnt_30s'" in said
    assert "rule 'heavy' (weight): weight 500 must be a number of score points from 0 to 100" in said
    assert "'fine'" not in said

    as_json = runner.invoke(app, ["rules", "validate", "bad.yaml", "--json"])
    assert as_json.exit_code == 1
    found = strict_json(as_json.stdout)
    assert found["valid"] is False
    assert [(e["rule"], e["key"], e["column"]) for e in found["errors"]] == [
        ("big", "action", None),
        ("fast", "expression", 1),
        ("heavy", "weight", None),
    ]
    # Commands that load a rule set stop on it naming every problem too (one line, from `run`).
    shown = runner.invoke(app, ["rules", "show", "bad.yaml"])
    assert str(shown.exception).startswith("3 problems: rule 'big': action 'stop'")


def test_training_reports_progress_once_per_chunk_not_per_row(history: Path) -> None:
    from fraudstream.ml.dataset import read_history
    from fraudstream.ml.train import train

    loaded, _ = read_history(history, {})
    heard: list[tuple[str, int, int]] = []
    train(
        loaded,
        "logistic",
        train_from_ms=None,
        train_to_ms=None,
        label_delay_ms=86_400_000,
        progress=lambda step, done, total: heard.append((step, done, total)),
    )
    replays = [call for call in heard if call[0] == "replaying features"]
    assert replays[-1] == ("replaying features", 6_000, 6_000)
    # One call per chunk (65,536 rows, cut where labels become known), never one per row.
    assert len(replays) < len(loaded.batch) / 10
    assert [done for _, done, _ in replays] == sorted(done for _, done, _ in replays)
    assert heard[-1][0].startswith("fitting logistic")


def run_cli(arguments: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed command, its stderr a pipe (or, with TTY_COMPATIBLE=1, taken for a terminal)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    environment.update(FRAUDSTREAM_DATA_DIR=str(cwd / "data"), TERM="xterm", COLUMNS="100", **env)
    command = [sys.executable, "-m", "fraudstream", *arguments]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120)


def test_progress_is_live_on_a_terminal_and_a_line_per_step_in_a_pipe(tmp_path: Path) -> None:
    arguments = ["simulate", "--count", "3000", "--to", "sim.parquet", "--json"]
    terminal = run_cli(arguments, tmp_path, TTY_COMPATIBLE="1")
    assert terminal.returncode == 0, terminal.stderr
    assert "\x1b[?25l" in terminal.stderr  # the live display hides the cursor while it draws
    assert "simulating" in terminal.stderr
    piped = run_cli(arguments, tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b" not in piped.stderr  # no redrawing, no colour: a log reads clean
    lines = piped.stderr.splitlines()
    assert any(line.startswith("✓ drawing 75 people") for line in lines), piped.stderr
    assert any(line.startswith("✓ writing sim.parquet") for line in lines), piped.stderr
    assert len(lines) < 12
    # stdout holds the JSON alone (coloured on a terminal), whatever stderr is.
    assert strict_json(piped.stdout)["transactions"] == 3000
    assert '"transactions"' in terminal.stdout


def test_put_rules_with_several_bad_rules_names_them_all_in_the_same_422(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from fraudstream.api import create_app
    from fraudstream.config import Settings

    with TestClient(create_app(Settings(demo=True, data_dir=tmp_path))) as client:
        before = client.get("/v1/rules").json()
        answer = client.put("/v1/rules", content=BAD_RULES, headers={"content-type": "application/yaml"})
        assert answer.status_code == 422
        body = answer.json()
        # The shape of a single problem's answer, the first problem's rule, and every problem named.
        assert set(body) == {"error", "detail", "rule", "position", "reason"}
        assert (body["error"], body["rule"], body["position"]) == ("invalid_rules", "big", None)
        assert body["detail"].startswith("3 problems: rule 'big': action 'stop'")
        assert "rule 'fast' at column 1: unknown name" in body["detail"]
        assert "rule 'heavy': weight 500" in body["detail"]
        assert client.get("/v1/rules").json() == before
