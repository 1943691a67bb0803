"""Settings from every place a deployment puts them, and `inspect_settings`' account of where each
value came from and what is wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from fraudstream.config import Settings, StoreSettings, inspect_settings, unknown_settings
from fraudstream.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No FRAUDSTREAM_* variable of the machine's, and a working directory without a .env file."""
    for name in [n for n in os.environ if n.startswith("FRAUDSTREAM_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def secrets(folder: Path, **files: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_a_secrets_directory_gives_settings_by_file_in_any_case(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Docker mounts /run/secrets/<name>; a Kubernetes secret's keys become files, often upper case.
    folder = secrets(tmp_path / "run-secrets", FRAUDSTREAM_CARD_KEY="card-key-from-a-file\n")
    (folder / "fraudstream_admin_key").write_text("  admin-key-from-a-file  ")
    monkeypatch.setenv("FRAUDSTREAM_SECRETS_DIR", str(folder))
    settings = Settings()
    assert settings.card_key is not None
    assert settings.card_key.get_secret_value() == "card-key-from-a-file"
    assert settings.admin_key is not None
    assert settings.admin_key.get_secret_value() == "admin-key-from-a-file"
    report = inspect_settings()
    assert report.errors == []
    assert report.values["card_key"] == report.values["admin_key"] == "****"
    assert str(report.origins["card_key"][0]) == f"secret {folder.resolve() / 'FRAUDSTREAM_CARD_KEY'}"
    assert str(report.origins["admin_key"][0]) == f"secret {folder.resolve() / 'fraudstream_admin_key'}"
    assert "card-key-from-a-file" not in str(report.as_json())


def test_a_missing_secrets_directory_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDSTREAM_SECRETS_DIR", "/no/such/secrets")
    monkeypatch.setenv("FRAUDSTREAM_DEMO", "1")
    with pytest.raises(ConfigError, match="FRAUDSTREAM_SECRETS_DIR=/no/such/secrets: no such directory"):
        Settings()
    report = inspect_settings()
    assert next(str(e) for e in report.errors).startswith("FRAUDSTREAM_SECRETS_DIR=/no/such/secrets")
    assert report.values["demo"] is True  # the other sources are still read


def test_precedence_flag_env_dotenv_secret_file_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same setting in every source: each removed in turn reveals the next, and `inspect_settings`
    names the one `Settings` took."""
    config = tmp_path / "fraudstream.yaml"
    config.write_text("port: 1005\ndemo: true\n")
    monkeypatch.setenv("FRAUDSTREAM_CONFIG", str(config))
    folder = secrets(tmp_path / "secrets", FRAUDSTREAM_PORT="1004")
    monkeypatch.setenv("FRAUDSTREAM_SECRETS_DIR", str(folder))
    (tmp_path / ".env").write_text("FRAUDSTREAM_PORT=1003\n")
    monkeypatch.setenv("FRAUDSTREAM_PORT", "1002")

    def taken(**flags: int) -> tuple[int, str]:
        report = inspect_settings(**flags)
        assert report.errors == []
        assert report.values["port"] == Settings(**flags).port
        return report.values["port"], report.origins["port"][0].kind

    assert taken(port=1001) == (1001, "flag")
    assert taken() == (1002, "env")
    monkeypatch.delenv("FRAUDSTREAM_PORT")
    assert taken() == (1003, ".env")
    (tmp_path / ".env").unlink()
    assert taken() == (1004, "secret")
    (folder / "FRAUDSTREAM_PORT").unlink()
    assert taken() == (1005, "file")
    config.write_text("demo: true\n")
    assert taken() == (8000, "default")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("fraudstream.yaml", "review_threshold: 70\nport: 9001\nkafka_options:\n  client.id: eu\n"),
        ("fraudstream.yml", "review_threshold: 70\nport: 9001\nkafka_options: {client.id: eu}\n"),
        ("fraudstream.toml", 'review_threshold = 70\nport = 9001\n[kafka_options]\n"client.id" = "eu"\n'),
    ],
)
def test_yaml_and_toml_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    monkeypatch.setenv("FRAUDSTREAM_CONFIG", name)
    monkeypatch.setenv("FRAUDSTREAM_DEMO", "1")
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_OPTIONS", '{"acks": "all"}')
    settings = Settings()
    assert (settings.review_threshold, settings.port) == (70, 9001)
    # A mapping merges key by key across sources, as pydantic-settings merges it.
    assert settings.kafka_options == {"client.id": "eu", "acks": "all"}
    report = inspect_settings()
    assert report.values["kafka_options"] == settings.kafka_options
    assert [origin.kind for origin in report.origins["kafka_options"]] == ["env", "file"]
    assert str(report.origins["port"][0]) == f"file {(tmp_path / name).resolve()}"
    assert report.as_json()["locations"] == [{"source": "file", "path": str((tmp_path / name).resolve())}]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("missing.yaml", None, "FRAUDSTREAM_CONFIG=missing.yaml: no such file"),
        ("settings.ini", "port=1\n", "FRAUDSTREAM_CONFIG=settings.ini: a configuration file ends in .yaml"),
        ("bad.yaml", "port: 1\nreview_threshold: [70\n", "bad.yaml is not valid YAML: line 3, column 1: "),
        ("list.yaml", "- port\n- 1\n", "list.yaml: expected a mapping of setting names to values"),
        ("bad.toml", "port = \n", "bad.toml is not valid TOML: Invalid value (at line 1, column 8)"),
    ],
)
def test_a_configuration_file_that_cannot_be_read_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, text: str | None, message: str
) -> None:
    if text is not None:
        (tmp_path / name).write_text(text)
    monkeypatch.setenv("FRAUDSTREAM_CONFIG", name)
    monkeypatch.setenv("FRAUDSTREAM_PORT", "9001")
    with pytest.raises(ConfigError) as raised:
        Settings(demo=True)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    report = inspect_settings(demo=True)
    assert len(report.errors) == 1
    assert message in str(report.errors[0])
    assert report.values["port"] == 9001  # the environment is still shown


def test_a_dotenv_file_takes_the_settings_own_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A .env shared with other tools (a compose file's) is fine; a misspelt name is warned about; the
    variables that say where configuration lives are read from the environment only."""
    (tmp_path / ".env").write_text(
        "# the compose file's\nPOSTGRES_PASSWORD=pg\nfraudstream_card_key=from-dotenv\n"
        "FRAUDSTREAM_REVIEWTHRESHOLD=70\nFRAUDSTREAM_SECRETS_DIR=/run/secrets\n"
    )
    settings = Settings()
    assert settings.card_key is not None
    assert settings.card_key.get_secret_value() == "from-dotenv"
    assert settings.review_threshold == 60
    dotenv = (tmp_path / ".env").resolve()
    assert unknown_settings() == [
        f"FRAUDSTREAM_REVIEWTHRESHOLD in {dotenv} is not a setting and is ignored; did you mean "
        "FRAUDSTREAM_REVIEW_THRESHOLD?",
        f"FRAUDSTREAM_SECRETS_DIR in {dotenv} is ignored: it is read from the environment only",
    ]
    assert inspect_settings().origins["card_key"][0].kind == ".env"


def test_another_dotenv_file_or_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FRAUDSTREAM_PORT=1001\n")
    (tmp_path / "prod.env").write_text("FRAUDSTREAM_PORT=1002\n")
    monkeypatch.setenv("FRAUDSTREAM_DEMO", "1")
    assert Settings().port == 1001
    monkeypatch.setenv("FRAUDSTREAM_ENV_FILE", "prod.env")
    assert Settings().port == 1002
    monkeypatch.setenv("FRAUDSTREAM_ENV_FILE", "")
    assert Settings().port == 8000
    monkeypatch.setenv("FRAUDSTREAM_ENV_FILE", "staging.env")
    with pytest.raises(ConfigError, match=r"FRAUDSTREAM_ENV_FILE=staging\.env: no such file"):
        Settings()


def test_every_error_at_once_each_naming_the_setting_and_its_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "fraudstream.toml").write_text("reviewthreshold = 70\nlog_format = 'xml'\n")
    monkeypatch.setenv("FRAUDSTREAM_CONFIG", "fraudstream.toml")
    monkeypatch.setenv("FRAUDSTREAM_DECLINE_THRESHOLD", "150")
    with pytest.raises(ValidationError):
        Settings()
    file = (tmp_path / "fraudstream.toml").resolve()
    errors = {problem.setting: str(problem) for problem in inspect_settings().errors}
    assert errors == {
        "reviewthreshold": f"reviewthreshold (file {file}) is not a setting; did you mean review_threshold?",
        "decline_threshold": (
            "FRAUDSTREAM_DECLINE_THRESHOLD='150' (env): Input should be less than or equal to 100"
        ),
        "log_format": f"log_format='xml' (file {file}): Input should be 'json', 'console' or 'auto'",
        # A check of several settings together runs all the same, while values are invalid.
        None: errors[None],
    }
    assert errors[None].startswith("FRAUDSTREAM_CARD_KEY is required")
    assert not any("Value error" in message for message in errors.values())
    # The invalid values are shown as given; the others as validated.
    values = inspect_settings().values
    assert (values["decline_threshold"], values["review_threshold"], values["log_format"]) == (
        "150",
        60,
        "xml",
    )


def test_both_checks_of_several_settings_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic stops at the first failed check; both are listed."""
    monkeypatch.setenv("FRAUDSTREAM_REVIEW_THRESHOLD", "95")
    messages = [str(problem) for problem in inspect_settings().errors]
    assert len(messages) == 2
    assert messages[0].startswith("thresholds must rise")
    assert messages[1].startswith("FRAUDSTREAM_CARD_KEY is required")


def test_a_check_that_reads_an_invalid_value_waits_until_it_is_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    # With the invalid review threshold replaced by its default, "thresholds must rise" would blame
    # a value the user never gave.
    monkeypatch.setenv("FRAUDSTREAM_DEMO", "1")
    monkeypatch.setenv("FRAUDSTREAM_REVIEW_THRESHOLD", "high")
    monkeypatch.setenv("FRAUDSTREAM_DECLINE_THRESHOLD", "50")
    messages = [str(problem) for problem in inspect_settings().errors]
    assert messages == [
        "FRAUDSTREAM_REVIEW_THRESHOLD='high' (env): Input should be a valid number, unable to parse string "
        "as a number"
    ]


def test_store_settings_read_the_same_sources_and_need_no_card_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = secrets(tmp_path / "secrets", FRAUDSTREAM_DATABASE_URL="postgresql+psycopg://app:pw@db/fraud")
    monkeypatch.setenv("FRAUDSTREAM_SECRETS_DIR", str(folder))
    assert StoreSettings().database_url == "postgresql+psycopg://app:pw@db/fraud"
    report = inspect_settings(StoreSettings)
    assert report.errors == []
    assert report.values["database_url"] == "postgresql+psycopg://app:****@db/fraud"
    assert report.origins["database_url"][0].kind == "secret"


def test_an_empty_secret_file_is_an_error_not_an_empty_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = secrets(tmp_path / "secrets", FRAUDSTREAM_CARD_KEY="\n")
    monkeypatch.setenv("FRAUDSTREAM_SECRETS_DIR", str(folder))
    with pytest.raises(ValidationError):
        Settings()
    file = folder.resolve() / "FRAUDSTREAM_CARD_KEY"
    assert [str(problem) for problem in inspect_settings().errors] == [
        f"FRAUDSTREAM_CARD_KEY=**** (secret {file}): is empty; give a long random secret, e.g. "
        "$(openssl rand -hex 32)"
    ]


def test_a_value_that_is_not_json_is_named_and_the_rest_of_its_source_still_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pydantic-settings fails the whole environment for one undecodable value: the demo flag beside
    # it would be lost, and a missing card key reported that is not missing.
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_OPTIONS", "{client.id: eu}")
    monkeypatch.setenv("FRAUDSTREAM_DEMO", "1")
    report = inspect_settings()
    assert [str(problem) for problem in report.errors] == [
        "FRAUDSTREAM_KAFKA_OPTIONS (env) is not valid JSON (Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1))"
    ]
    assert report.values["demo"] is True
