"""`fraudstream score` on every input it takes (stdin, CSV, JSON lines) and on input it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudstream.cli import app

pytestmark = pytest.mark.integration

runner = CliRunner()


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
