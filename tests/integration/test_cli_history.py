"""Commands that read transaction files (score, train, evaluate, backtest) on files as users export them:
times without a zone (--timezone), integer ids, 0.00 amounts, and a report of the rows they refuse."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fraudstream.cli import app

pytestmark = pytest.mark.integration

# Demo mode: `score` takes the demo card key (outside it, the server's is required).
runner = CliRunner(env={"FRAUDSTREAM_DEMO": "1"})

HANDBOOK_MAP = {
    "transaction_id": "TRANSACTION_ID",
    "timestamp": "TX_DATETIME",
    "user_id": "CUSTOMER_ID",
    "terminal_id": "TERMINAL_ID",
    "amount": "TX_AMOUNT",
    "is_fraud": "TX_FRAUD",
}
MAP = ",".join(f"{field}={column}" for field, column in HANDBOOK_MAP.items())
RULES = "version: 7\nrules:\n  - {code: big, expression: 'amount > 300', action: review, weight: 60}\n"


def handbook_table(rows: int = 2_000, days: int = 20, seed: int = 3) -> pa.Table:
    """Transactions shaped like the Fraud Detection Handbook's: integer ids, naive times from
    2018-04-01, some 0.00 amounts, frauds that spend more."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(31, days * 86_400, rows))
    seconds[0] = 31  # the first: 2018-04-01 00:00:31
    start = datetime(2018, 4, 1)
    fraud = rng.random(rows) < 0.04
    amount = np.round(rng.lognormal(3.5, 0.7, rows) * np.where(fraud, 8.0, 1.0), 2)
    amount[::97] = 0.0  # card-verification requests
    return pa.table(
        {
            "TRANSACTION_ID": pa.array(np.arange(rows), pa.int64()),
            "TX_DATETIME": [str(start + timedelta(seconds=int(s))) for s in seconds],
            "CUSTOMER_ID": pa.array(rng.integers(0, 150, rows), pa.int64()),
            "TERMINAL_ID": pa.array(rng.integers(0, 300, rows), pa.int64()),
            "TX_AMOUNT": amount,
            "TX_FRAUD": pa.array(fraud.astype(np.int64)),
        }
    )


def write(table: pa.Table, path: Path) -> Path:
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


def with_negative_amounts(table: pa.Table, every: int) -> pa.Table:
    """Every ``every``-th row's amount made negative: invalid rows in a known number."""
    amount = table.column("TX_AMOUNT").to_numpy().copy()
    amount[::every] = -np.abs(amount[::every]) - 1.0
    return table.set_column(table.schema.get_field_index("TX_AMOUNT"), "TX_AMOUNT", pa.array(amount))


def command(name: str, data: str, tmp_path: Path) -> list[str]:
    """The arguments of a file-reading command on ``data`` that needs nothing else to run."""
    if name == "score":  # score takes canonical column names, as a file for scoring has them
        return ["score", data, "-o", str(tmp_path / "decisions.jsonl"), "--model", "none"]
    common = ["--data", data, "--map", MAP]
    if name == "train":
        return ["train", *common, "--registry", str(tmp_path / "models"), "--label-delay", "1d"]
    if name == "evaluate":
        return ["evaluate", *common, "--model", "rules", "--label-delay", "1d"]
    (tmp_path / "rules.yaml").write_text(RULES)
    return ["backtest", *common, "--rules", str(tmp_path / "rules.yaml"), "--label-delay", "1d"]


def file_for(name: str, table: pa.Table, tmp_path: Path, suffix: str = ".csv") -> str:
    """The table written where the command reads it (score: with canonical column names)."""
    if name == "score":
        canonical = {column: field for field, column in HANDBOOK_MAP.items()}
        table = table.rename_columns([canonical[c] for c in table.column_names]).drop_columns(["is_fraud"])
    write(table, tmp_path / f"in{suffix}")
    return f"in{suffix}"  # relative (the tests run in tmp_path): short names keep Rich from folding lines


def said(output: str) -> str:
    """The output as one line: Rich wraps long lines, and draws a box around usage errors."""
    return " ".join(output.replace("│", " ").split())


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(tmp_path / "data"))  # no models from elsewhere


COMMANDS = ["score", "train", "evaluate", "backtest"]


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_naive_times_without_a_timezone_stop_the_command_with_one_message(
    tmp_path: Path, name: str, suffix: str
) -> None:
    data = file_for(name, handbook_table(rows=300), tmp_path, suffix)
    result = runner.invoke(app, command(name, data, tmp_path))
    assert result.exit_code == 2, result.output
    column = "timestamp" if name == "score" else "TX_DATETIME"
    message = f"error: {data}: column {column} holds times without a zone (e.g. '2018-04-01 00:00:31')"
    assert message in said(result.output)
    assert "say which zone they are in with --timezone, e.g. --timezone UTC" in said(result.output)
    assert said(result.output).count("without a zone") == 1, "one message, never one per row"
    assert "skipped" not in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_an_unknown_timezone_is_refused_naming_the_flag_before_the_file_is_read(
    tmp_path: Path, name: str
) -> None:
    result = runner.invoke(app, [*command(name, "nowhere.csv", tmp_path), "--timezone", "Europe/Pariss"])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--timezone'" in said(result.output)
    assert "time zone 'Europe/Pariss' is not known; give an IANA name such as UTC or Europe/Paris" in said(
        result.output
    )


@pytest.mark.parametrize("value", ["5", "150%", "lots", "-1%"])
def test_a_max_invalid_that_is_not_a_share_is_refused_naming_the_flag(tmp_path: Path, value: str) -> None:
    result = runner.invoke(app, [*command("evaluate", "in.csv", tmp_path), "--max-invalid", value])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--max-invalid'" in said(result.output)
    assert f"'{value}' is not a share of rows from 0 to 100%" in said(result.output)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_train_reads_a_handbook_file_with_integer_ids_zero_amounts_and_naive_times(
    tmp_path: Path, suffix: str
) -> None:
    data = file_for("train", handbook_table(), tmp_path, suffix)
    arguments = [*command("train", data, tmp_path), "--timezone", "UTC", "--train-to", "2018-04-15T00:00:00Z"]
    result = runner.invoke(app, [*arguments, "--json"])
    assert result.exit_code == 0, result.output
    assert f"{data}: 2,000 rows read, 0 invalid (0.0%)" in result.output
    assert "replaying features 2,000/2,000" in result.output
    trained = json.loads(result.stdout)
    assert trained["training_rows"] > 1_000
    assert 0.0 <= trained["roc_auc"] <= 1.0


def test_score_decides_on_zero_amounts_from_a_naive_time_file(tmp_path: Path) -> None:
    table = handbook_table(rows=300)
    data = file_for("score", table, tmp_path)
    result = runner.invoke(app, [*command("score", data, tmp_path), "--timezone", "Europe/Paris"])
    assert result.exit_code == 0, result.output
    assert "300 scored, 0 invalid" in result.output
    decisions = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    zero = {str(i) for i, a in enumerate(table.column("TX_AMOUNT").to_pylist()) if a == 0.0}
    assert len(zero) == 4
    assert zero <= {d["transaction_id"] for d in decisions}


def test_score_refuses_naive_times_in_json_lines_naming_the_field(tmp_path: Path) -> None:
    rows = [{"transaction_id": "a", "user_id": "u", "amount": 0.0, "time": "2018-04-01T00:00:31"}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    refused = runner.invoke(app, command("score", "in.jsonl", tmp_path))
    assert refused.exit_code == 2, refused.output
    assert "in.jsonl: field time holds times without a zone (e.g. '2018-04-01T00:00:31')" in said(
        refused.output
    )
    scored = runner.invoke(app, [*command("score", "in.jsonl", tmp_path), "--timezone", "UTC"])
    assert scored.exit_code == 0, scored.output
    assert "1 scored, 0 invalid" in scored.output


@pytest.mark.parametrize("name", COMMANDS)
def test_more_invalid_rows_than_max_invalid_stop_the_command_with_the_reading_report(
    tmp_path: Path, name: str
) -> None:
    data = file_for(name, with_negative_amounts(handbook_table(), every=20), tmp_path)
    result = runner.invoke(app, [*command(name, data, tmp_path), "--timezone", "UTC"])
    assert result.exit_code == 2, result.output
    text = said(result.output)
    assert f"{data}: 2,000 rows read, 100 invalid (5.0%) amount: must be >= 0 — 100 rows" in text
    assert (
        f"error: 100 of the 2,000 rows of {data} (5.0%) are invalid, more than --max-invalid 1.0% allows: "
        f"fix the file or its --map, or skip them with --max-invalid 5%"
    ) in text
    assert "Traceback" not in result.output
    allowed = runner.invoke(app, [*command(name, data, tmp_path), "--timezone", "UTC", "--max-invalid", "5%"])
    assert allowed.exit_code == 0, allowed.output


@pytest.mark.parametrize("name", ["evaluate", "backtest"])
def test_invalid_rows_under_the_limit_are_reported_and_the_command_goes_on(tmp_path: Path, name: str) -> None:
    data = file_for(name, with_negative_amounts(handbook_table(), every=250), tmp_path)
    result = runner.invoke(
        app, [*command(name, data, tmp_path), "--timezone", "UTC", "--max-invalid", "0.01"]
    )
    assert result.exit_code == 0, result.output
    assert f"{data}: 2,000 rows read, 8 invalid (0.4%) amount: must be >= 0 — 8 rows" in said(result.output)
    assert "error" not in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_a_file_with_no_valid_row_stops_with_a_message_not_a_library_error(tmp_path: Path, name: str) -> None:
    data = file_for(name, with_negative_amounts(handbook_table(rows=50), every=1), tmp_path)
    result = runner.invoke(
        app, [*command(name, data, tmp_path), "--timezone", "UTC", "--max-invalid", "100%"]
    )
    assert result.exit_code == 2, result.output
    assert f"error: no row of {data} is valid: fix the file or its --map" in said(result.output)
    assert "concatenate" not in result.output
    assert "Traceback" not in result.output


def test_evaluate_reports_what_it_shows_its_curves_and_a_threshold_table(tmp_path: Path) -> None:
    data = str(write(handbook_table(rows=3_000), tmp_path / "in.parquet"))
    models = str(tmp_path / "models")
    trained = runner.invoke(
        app,
        [
            "train",
            "--data",
            data,
            "--map",
            MAP,
            "--timezone",
            "UTC",
            "--registry",
            models,
            "--label-delay",
            "1d",
        ],
    )
    assert trained.exit_code == 0, trained.output
    folder = tmp_path / "report"
    args = ["evaluate", "--data", data, "--map", MAP, "--timezone", "UTC", "--registry", models]
    # No --label-delay: the model's own (1d) is used, so its label windows mean what they meant in training.
    result = runner.invoke(
        app, [*args, "--model", "latest", "--from", "2018-04-15T00:00:00Z", "--report", str(folder)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((folder / "report.json").read_text())
    assert "-lightgbm-" in report["model"]
    assert report["label_delay"] == "1d"
    assert report["window_from"].startswith("2018-04-15")
    assert isinstance(report["transactions"], int)
    assert isinstance(report["frauds"], int)
    table = report["threshold_table"]
    assert [row["threshold"] for row in table] == sorted((row["threshold"] for row in table), reverse=True)
    flagged = [row["flagged"] for row in table]
    assert flagged == sorted(flagged)  # a lower threshold flags at least as many
    assert table[-1]["recall"] >= table[0]["recall"]
    assert all(isinstance(row["frauds_caught"], int) for row in table)
    page = (folder / "report.html").read_text()
    for text in (
        "ROC curve",
        "false positive rate (legitimate flagged)",
        "true positive rate (recall)",
        "Precision–recall curve",
        "recall (share of frauds caught)",
        "Choosing a threshold",
        "label delay",
    ):
        assert text in page, text
    assert "Choosing a threshold" in result.output
    # backtest, too, replays with the model's own label delay (with 0s the engine would refuse it).
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    backtested = runner.invoke(
        app,
        ["backtest", "--rules", str(rules), *args[1:], "--model", "latest"],
    )
    assert backtested.exit_code == 0, backtested.output
