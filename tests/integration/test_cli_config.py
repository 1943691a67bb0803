"""`fraudstream config show` on working and broken configurations from every source, and a real
server that takes its keys from a secrets directory."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from fraudstream.cli import app
from fraudstream.core.cards import card_fingerprint
from servers import start_server, stop

pytestmark = pytest.mark.integration

runner = CliRunner()


def environment(**variables: str) -> dict[str, str | None]:
    """For `runner.invoke(env=...)`: ``variables`` (FRAUDSTREAM_ names, lower case) and none of the
    machine's own FRAUDSTREAM_* variables; a wide terminal, so that a table row is one line."""
    return {
        **{name: None for name in os.environ if name.startswith("FRAUDSTREAM_")},
        **{f"FRAUDSTREAM_{name.upper()}": value for name, value in variables.items()},
        "COLUMNS": "200",
    }


def show(*options: str, **variables: str) -> tuple[int, str]:
    result = runner.invoke(app, ["config", "show", *options], env=environment(**variables))
    return result.exit_code, result.output


def row(output: str, setting: str) -> list[str]:
    """The cells of a setting's row in the table."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if cells[0] == setting:
            return cells
    raise AssertionError(f"no row for {setting} in:\n{output}")


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A working directory of the test's own: a .env file there is the test's."""
    monkeypatch.chdir(tmp_path)


def test_a_broken_configuration_is_shown_whole_with_every_error_and_exit_2() -> None:
    # Outside demo mode without a card key, and a threshold out of range.
    code, output = show(data_dir="data", review_threshold="150", port="9001")
    assert code == 2, output
    assert row(output, "port") == ["port", "9001", "env"]
    assert row(output, "review_threshold") == ["review_threshold", "150", "env"]
    assert row(output, "decline_threshold") == ["decline_threshold", "90.0", "default"]
    assert row(output, "card_key") == ["card_key", "", "default"]
    errors = [line.removeprefix("error ") for line in output.splitlines() if line.startswith("error ")]
    assert errors == [
        "FRAUDSTREAM_REVIEW_THRESHOLD='150' (env): Input should be less than or equal to 100",
        "FRAUDSTREAM_CARD_KEY is required (a long random secret for card fingerprints), e.g. export "
        "FRAUDSTREAM_CARD_KEY=$(openssl rand -hex 32) or a file of that name in FRAUDSTREAM_SECRETS_DIR; "
        "or run `fraudstream demo` to try it without one",
    ]
    assert "Value error" not in output
    assert output.rstrip().endswith("2 configuration errors")
    # The errors come after the whole table.
    assert output.index("api_keys_required") < output.index("error ")


def test_a_misspelt_variable_is_warned_about_with_the_one_meant() -> None:
    code, output = show("--json", demo="1", reviewthreshold="70")
    assert code == 0, output
    report = json.loads(output)
    assert report["warnings"] == [
        "FRAUDSTREAM_REVIEWTHRESHOLD is not a setting and is ignored; "
        "did you mean FRAUDSTREAM_REVIEW_THRESHOLD?"
    ]
    assert report["values"]["review_threshold"] == {"value": 60.0, "source": "default", "path": None}
    code, output = show(demo="1", reviewthreshold="70")
    assert "warning FRAUDSTREAM_REVIEWTHRESHOLD is not a setting and is ignored; did you mean" in output


def test_secrets_from_a_secrets_directory_are_taken_and_masked(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "FRAUDSTREAM_CARD_KEY").write_text("a-card-key-only-in-a-file\n")
    (folder / "fraudstream_redis_url").write_text("redis://:redis-pass@cache:6379/0")
    code, output = show(secrets_dir=str(folder))
    assert code == 0, output
    assert f"secrets directory: {folder.resolve()}" in output
    assert row(output, "card_key") == ["card_key", "****", "secret"]
    assert row(output, "redis_url") == ["redis_url", "****", "secret"]
    assert "a-card-key-only-in-a-file" not in output
    assert "redis-pass" not in output
    code, output = show("--json", secrets_dir=str(folder))
    assert json.loads(output)["values"]["card_key"] == {
        "value": "****",
        "source": "secret",
        "path": str(folder.resolve() / "FRAUDSTREAM_CARD_KEY"),
    }


def test_a_dotenv_file_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FRAUDSTREAM_CARD_KEY=from-dotenv\nFRAUDSTREAM_PORT=9002\nOTHER_TOOL=x\n")
    code, output = show()
    assert code == 0, output
    assert f".env file: {(tmp_path / '.env').resolve()}" in output
    assert row(output, "card_key") == ["card_key", "****", ".env"]
    assert row(output, "port") == ["port", "9002", ".env"]
    # The environment wins over .env.
    code, output = show(port="9003")
    assert row(output, "port") == ["port", "9003", "env"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("fraudstream.yaml", "demo: true\nport: 9004\nlabel_delay: 7d\n"),
        ("fraudstream.toml", "demo = true\nport = 9004\nlabel_delay = '7d'\n"),
    ],
)
def test_yaml_and_toml_configuration_files(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    code, output = show("--json", config=name)
    assert code == 0, output
    values = json.loads(output)["values"]
    path = str((tmp_path / name).resolve())
    assert values["port"] == {"value": 9004, "source": "file", "path": path}
    assert values["label_delay"] == {"value": "7d", "source": "file", "path": path}
    # Every other source wins over the file.
    (tmp_path / ".env").write_text("FRAUDSTREAM_PORT=9005\n")
    code, output = show("--json", config=name)
    assert json.loads(output)["values"]["port"]["source"] == ".env"


def test_a_configuration_file_that_is_not_valid_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "fraudstream.yaml").write_text("demo: true\nport: [9004\n")
    code, output = show(config="fraudstream.yaml", port="9006")
    assert code == 2, output
    assert f"error {(tmp_path / 'fraudstream.yaml')} is not valid YAML: line 3, column 1: " in output
    assert row(output, "port") == ["port", "9006", "env"]  # the rest is still shown
    # Any other command stops with the same one line.
    result = runner.invoke(app, ["db", "upgrade"], env=environment(config="fraudstream.yaml"))
    assert result.exit_code == 2
    assert "is not valid YAML: line 3, column 1" in result.output


def test_json_output_has_the_documented_shape(tmp_path: Path) -> None:
    (tmp_path / "fraudstream.toml").write_text("review_threshold = 70\nreview_treshold = 71\n")
    code, output = show("--json", config="fraudstream.toml", decline_threshold="150", data_dir="data")
    assert code == 2
    report: dict[str, Any] = json.loads(output)
    assert set(report) == {"valid", "values", "locations", "errors", "warnings"}
    assert report["valid"] is False
    file = str((tmp_path / "fraudstream.toml").resolve())
    assert report["locations"] == [{"source": "file", "path": file}]
    assert all(set(value) == {"value", "source", "path"} for value in report["values"].values())
    assert report["values"]["review_threshold"] == {"value": 70.0, "source": "file", "path": file}
    assert report["values"]["decline_threshold"] == {"value": "150", "source": "env", "path": None}
    assert report["values"]["data_dir"]["value"] == str(tmp_path / "data")
    assert report["values"]["api_keys_required"] == {"value": True, "source": "derived", "path": None}
    assert [error["setting"] for error in report["errors"]] == ["review_treshold", "decline_threshold", None]
    assert report["errors"][0] == {
        "setting": "review_treshold",
        "source": "file",
        "path": file,
        "message": f"review_treshold (file {file}) is not a setting; did you mean review_threshold?",
    }
    assert report["errors"][2]["message"].startswith("FRAUDSTREAM_CARD_KEY is required")
    assert report["warnings"] == []


def test_a_server_takes_its_card_key_and_admin_key_from_a_secrets_directory(tmp_path: Path) -> None:
    """Not only the CLI: `fraudstream serve` reads the secrets directory, as a container's would be."""
    folder = tmp_path / "run-secrets"
    folder.mkdir()
    (folder / "FRAUDSTREAM_CARD_KEY").write_text("card-key-from-the-secrets-dir\n")
    (folder / "FRAUDSTREAM_ADMIN_KEY").write_text("admin-key-from-the-secrets-dir\n")
    server = start_server(
        tmp_path / "server", card_key=None, api_keys_enabled="true", secrets_dir=str(folder)
    )
    try:
        payment = {"transaction_id": "s-1", "user_id": "u1", "amount": 25, "card_number": "4242424242424242"}
        refused = httpx.post(f"{server.url}/v1/transactions", json=payment, timeout=30)
        assert refused.status_code == 401
        headers = {"X-API-Key": "admin-key-from-the-secrets-dir"}
        answer = httpx.post(f"{server.url}/v1/transactions", json=payment, headers=headers, timeout=30)
        assert answer.is_success, answer.text
    finally:
        stop(server)
    with sqlite3.connect(tmp_path / "server" / "data" / "fraudstream.db") as database:
        (stored,) = database.execute(
            "SELECT card_fingerprint FROM transactions WHERE transaction_id = 's-1'"
        ).fetchone()
    assert stored == card_fingerprint("4242424242424242", b"card-key-from-the-secrets-dir").fingerprint
