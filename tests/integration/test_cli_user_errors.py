"""Every command stopped by its user's mistake says what is wrong in one line and exits 2."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fraudstream.cli import run

pytestmark = pytest.mark.integration

BAD_RULES = "version: 2\nrules:\n  - code: huge\n    expression: amount >> 5\n    action: review\n"


@pytest.mark.parametrize(
    ("arguments", "environment", "message"),
    [
        (["serve", "--port", "70000"], {}, "port=70000 (flag): Input should be less than or equal to 65535"),
        (["demo", "--port", "0"], {}, "port=0 (flag): Input should be greater than or equal to 1"),
        (["score", "missing.jsonl"], {}, "missing.jsonl does not exist"),
        (["score", "bad.jsonl"], {}, "line 2: is not JSON"),
        (["rules", "validate", "missing.yaml"], {}, "No such file or directory: 'missing.yaml'"),
        (["rules", "show", "bad.yaml"], {}, "rule 'huge' at column 8"),
        (["serve"], {"FRAUDSTREAM_LABEL_DELAY": "soon"}, "FRAUDSTREAM_LABEL_DELAY='soon' (env): window"),
        # A check of the whole configuration: its own words, not "configuration error : Value error, ...".
        (
            ["serve"],
            {"FRAUDSTREAM_DEMO": "0"},
            "configuration error FRAUDSTREAM_CARD_KEY is required",
        ),
        (["db", "upgrade"], {"FRAUDSTREAM_DATABASE_URL": "ftp://host/db"}, "cannot use the database URL"),
        (["keys", "list"], {"FRAUDSTREAM_DATABASE_URL": "mysql:/"}, "FRAUDSTREAM_DATABASE_URL is"),
        (["keys", "revoke", "nobody"], {}, "no valid API key named 'nobody'"),
        (["simulate", "--duration", "5 weeks"], {}, "5 weeks"),
        (["models", "show", "v-none", "--registry", "models"], {}, "no model version 'v-none'"),
        (["models", "promote", "v-none", "--registry", "models"], {}, "no model version 'v-none'"),
        (["train", "--data", "missing.parquet"], {}, "cannot train"),
        (["train", "--data", "sim.csv", "--map", "user_id"], {}, "--map"),
        (["evaluate", "--data", "missing.parquet"], {}, "no such file: missing.parquet"),
        (["backtest", "--rules", "bad.yaml", "--data", "sim.csv"], {}, "rule 'huge' at column 8"),
        (["worker", "--brokers", "127.0.0.1:9", "--checkpoints", "ftp://host/x"], {}, "scheme 'ftp'"),
        (["worker"], {}, "a worker needs a broker to read from"),
        (
            ["worker", "--brokers", "b:9"],
            {"FRAUDSTREAM_KAFKA_CONFIG": "none.properties"},
            "none.properties: cannot",
        ),
        (
            ["worker", "--brokers", "b:9"],
            {"FRAUDSTREAM_KAFKA_CONFIG": "bad.properties"},
            "bad.properties:3: expected",
        ),
        (["serve", "--kafka", "b:9", "--kafka-option", "client.id"], {}, "--kafka-option 'client.id'"),
        (
            ["topics", "create", "--brokers", "b:9", "--kafka-option", "socket.timeout.ms=soon"],
            {},
            '"socket.timeout.ms"',
        ),
        (["retrain"], {}, "cannot use the database: unable to open database file"),
    ],
)
def test_a_user_error_is_one_line_and_exit_status_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    environment: dict[str, str],
    message: str,
) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_RULES)
    (tmp_path / "bad.jsonl").write_text('{"transaction_id": "a"}\nnot json\n')
    (tmp_path / "sim.csv").write_text("transaction_id,user_id,amount,timestamp,is_fraud\n")
    (tmp_path / "bad.properties").write_text("# a managed cluster\nclient.id=eu\nsasl.username fraud\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "data").mkdir()
    for name in [n for n in os.environ if n.startswith("FRAUDSTREAM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FRAUDSTREAM_DEMO", "1")
    # A data directory that does not exist has no database for retrain to open.
    monkeypatch.setenv(
        "FRAUDSTREAM_DATA_DIR", str(tmp_path / ("none" if arguments == ["retrain"] else "data"))
    )
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["fraudstream", *arguments])
    with pytest.raises(SystemExit) as stopped:
        run()
    captured = capsys.readouterr()
    assert stopped.value.code == 2, captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    problem = [line for line in lines if message in line]
    assert problem, captured.err
    assert "Traceback" not in captured.err
    # What the command reported before its error (which model decides, ...) is fine; the error is one
    # line, the last.
    assert lines[-1] == problem[0], captured.err


def test_a_misspelt_setting_is_named_with_the_one_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("FRAUDSTREAM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FRAUDSTREAM_DEMO", "1")
    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FRAUDSTREAM_REVIEWTHRESHOLD", "70")
    monkeypatch.setattr(sys, "argv", ["fraudstream", "db", "upgrade"])
    with pytest.raises(SystemExit) as stopped:
        run()
    captured = capsys.readouterr()
    assert stopped.value.code == 0, captured.err
    assert (
        "FRAUDSTREAM_REVIEWTHRESHOLD is not a setting and is ignored; did you mean "
        "FRAUDSTREAM_REVIEW_THRESHOLD?" in " ".join(captured.err.split())
    )
