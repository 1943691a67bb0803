"""All configuration in one Settings object, from wherever a deployment puts it: command-line flags,
FRAUDSTREAM_* environment variables, a .env file, a secrets directory (one file per setting, as Docker
and Kubernetes mount secrets), a YAML/TOML file; `inspect_settings` says which gave each value."""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import yaml
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)
from pydantic_settings import SettingsError as SourceError

from fraudstream.errors import ConfigError

if TYPE_CHECKING:
    from fraudstream.core.engine import EngineConfig
    from fraudstream.core.features import FeatureConfig
    from fraudstream.core.policy import PolicyConfig

__all__ = [
    "ALERTS_TOPIC",
    "BATCH_SIZE",
    "CHECKPOINT_DIR",
    "CHECKPOINT_INTERVAL_S",
    "CONTROL_TOPIC",
    "DECISIONS_TOPIC",
    "DEMO_CARD_KEY",
    "DLQ_TOPIC",
    "GROUP",
    "LABELS_TOPIC",
    "MAX_WAIT_S",
    "TRANSACTIONS_TOPIC",
    "ConfigProblem",
    "ConfigReport",
    "Origin",
    "Settings",
    "StoreSettings",
    "inspect_settings",
    "secret_property",
    "unknown_settings",
    "unknown_variables",
]

#: Used only in demo mode, so that `make demo` needs no secret; never for real traffic.
DEMO_CARD_KEY = "fraudstream-demo-key-not-secret"

# The default names of the topics, consumer group and checkpoint folder, and the worker's default
# batching: the defaults of `Settings` below, and of `WorkerConfig` for workers built in code.
TRANSACTIONS_TOPIC: Final = "transactions"
DECISIONS_TOPIC: Final = "decisions"
ALERTS_TOPIC: Final = "fraud-alerts"
DLQ_TOPIC: Final = "transactions.dlq"
LABELS_TOPIC: Final = "labels"
CONTROL_TOPIC: Final = "fraudstream-control"

#: The workers' consumer group.
GROUP: Final = "fraudstream"
#: Where a worker keeps its partitions' checkpoints unless given a checkpoint URL.
CHECKPOINT_DIR: Final = "data/checkpoints"

#: Most messages a worker scores together. Large batches spread each batch's fixed cost (a few ms of
#: Arrow and NumPy calls to decode, validate and write outputs) over more events: one worker did
#: ~50,000 events/s at 1,000 and ~65,000 at 4,000 here. Under light load a batch is whatever arrived
#: within ``MAX_WAIT_S``, so the size adds no latency then.
BATCH_SIZE: Final = 4000
#: Longest wait for a batch, seconds.
MAX_WAIT_S: Final = 0.2
#: Seconds between a partition's checkpoints, at least.
CHECKPOINT_INTERVAL_S: Final = 5.0


def secret_property(key: str) -> bool:
    """Whether a librdkafka property holds a secret (sasl.password, ssl.key.password, ...): its value
    is never logged nor shown by `config show`."""
    return "password" in key or "secret" in key


#: The variables that say where the rest of the configuration lives. They are read from the process
#: environment only: a file cannot name another file.
CONFIG_FILE_VARIABLE: Final = "FRAUDSTREAM_CONFIG"
ENV_FILE_VARIABLE: Final = "FRAUDSTREAM_ENV_FILE"
SECRETS_DIR_VARIABLE: Final = "FRAUDSTREAM_SECRETS_DIR"

#: What a setting's value can come from, highest precedence first ("derived" is computed from others,
#: like ``api_keys_required``).
SourceKind = Literal["flag", "env", ".env", "secret", "file", "default", "derived"]


@dataclass(frozen=True)
class Origin:
    """Where a setting's value came from: the kind of source and, for a file, which file."""

    kind: SourceKind
    path: str | None = None

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind} {self.path}"


class _YamlFile(YamlConfigSettingsSource):
    """pydantic-settings' YAML source, whose errors name the file and the line in one sentence."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            data = super()._read_file(file_path)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise ConfigError(f"{file_path} is not valid YAML: {where}{exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file_path} is not valid YAML: {' '.join(str(exc).split())}") from None
        return _mapping(data, file_path)


class _TomlFile(TomlConfigSettingsSource):
    """pydantic-settings' TOML source, whose errors name the file in one sentence."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            return _mapping(super()._read_file(file_path), file_path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file_path} is not valid TOML: {exc}") from None


def _mapping(data: object, file_path: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file_path}: expected a mapping of setting names to values (review_threshold: 70), "
            f"not a {type(data).__name__}"
        )
    return data


class _DotEnvFile(DotEnvSettingsSource):
    """pydantic-settings' .env source, taking only the settings' own variables.

    Its own would pass every other line on to the settings, which forbid unknown names: a .env shared
    with other tools (POSTGRES_PASSWORD=...) would stop every command. A misspelt FRAUDSTREAM_ name
    in it is warned about instead, as in the environment (`unknown_settings`)."""

    def __call__(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in super().__call__().items()
            if name in self.settings_cls.model_fields
        }


def _file_source(settings_cls: type[BaseSettings]) -> tuple[Origin, PydanticBaseSettingsSource] | None:
    """The YAML or TOML file named by FRAUDSTREAM_CONFIG, the kind chosen by its suffix."""
    named = os.environ.get(CONFIG_FILE_VARIABLE)
    if not named:
        return None
    path = Path(named).expanduser()
    if not path.is_file():
        raise ConfigError(f"{CONFIG_FILE_VARIABLE}={named}: no such file")
    suffix = path.suffix.lower()
    source: PydanticBaseSettingsSource
    if suffix in (".yaml", ".yml"):
        source = _YamlFile(settings_cls, yaml_file=path.resolve())
    elif suffix == ".toml":
        source = _TomlFile(settings_cls, toml_file=path.resolve())
    else:
        raise ConfigError(
            f"{CONFIG_FILE_VARIABLE}={named}: a configuration file ends in .yaml, .yml or .toml"
        )
    return Origin("file", str(path.resolve())), source


def _env_file() -> Path | None:
    """The .env file to read: FRAUDSTREAM_ENV_FILE ('' for none), else ./.env if there is one."""
    named = os.environ.get(ENV_FILE_VARIABLE)
    if named == "":
        return None
    if named is None:
        default = Path(".env")
        return default if default.is_file() else None
    path = Path(named).expanduser()
    if not path.is_file():
        raise ConfigError(f"{ENV_FILE_VARIABLE}={named}: no such file (set it to '' to read no .env file)")
    return path


def _dotenv_source(settings_cls: type[BaseSettings]) -> tuple[Origin, PydanticBaseSettingsSource] | None:
    path = _env_file()
    if path is None:
        return None
    return Origin(".env", str(path.resolve())), _DotEnvFile(settings_cls, env_file=path)


def _secrets_dir() -> Path | None:
    named = os.environ.get(SECRETS_DIR_VARIABLE)
    if not named:
        return None
    path = Path(named).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"{SECRETS_DIR_VARIABLE}={named}: no such directory (it holds one file per setting, named "
            "like its variable: FRAUDSTREAM_CARD_KEY)"
        )
    return path


def _secrets_source(settings_cls: type[BaseSettings]) -> tuple[Origin, PydanticBaseSettingsSource] | None:
    """pydantic-settings' secrets-directory source: the file FRAUDSTREAM_CARD_KEY (any case, as
    Docker and Kubernetes name mounted secrets) holds card_key, its surrounding whitespace stripped."""
    path = _secrets_dir()
    if path is None:
        return None
    return Origin("secret", str(path.resolve())), SecretsSettingsSource(settings_cls, secrets_dir=path)


#: The sources a deployment puts configuration in, besides arguments and the environment, highest
#: precedence first. A .env file is a developer's or a compose file's override of the deployment's
#: defaults, so it wins over mounted secrets, which win over the shared configuration file; the
#: environment wins over all three, as in pydantic-settings' own order.
_DEPLOYMENT_SOURCES: Final = (_dotenv_source, _secrets_source, _file_source)


class Settings(BaseSettings):
    """Every setting, with its default; `fraudstream config show` prints the effective values."""

    model_config = SettingsConfigDict(env_prefix="FRAUDSTREAM_", extra="forbid")

    data_dir: Path = Field(Path("data"), description="Database file, snapshots and models live here")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///{data_dir}/fraudstream.db"
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    demo: bool = Field(False, description="Demo mode: no API keys, a built-in card key, simulated traffic")
    card_key: SecretStr | None = Field(
        None, description="HMAC key for card fingerprints (required outside demo)"
    )
    api_keys_enabled: bool | None = Field(None, description="Require API keys; default: on, off in demo mode")
    admin_key: SecretStr | None = Field(None, description="Bootstrap admin API key (created at start if set)")
    max_batch: int = Field(1000, ge=1, le=100_000, description="Largest list POST /v1/transactions accepts")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body, in bytes (413 above)")
    batch_wait_ms: float = Field(
        1.0, ge=0, le=100, description="Group commit: longest wait to gather a batch"
    )
    max_pending: int = Field(
        1000,
        ge=1,
        description="Overload: transactions waiting to be scored beyond which new requests are refused "
        "(503 with Retry-After) rather than queued; bounds the latency of those accepted (about one "
        "scoring group, a tenth of a second here, by default)",
    )
    max_connections: int = Field(
        1000, ge=1, description="Open HTTP connections beyond which new requests get 503"
    )
    snapshot_interval_s: float = Field(30.0, gt=0, description="Seconds between engine state snapshots")
    review_threshold: float = Field(60.0, ge=0, le=100)
    decline_threshold: float = Field(90.0, ge=0, le=100)
    challenge_threshold: float | None = Field(None, ge=0, le=100)
    label_delay: str = Field(
        "0s",
        description="How long after a transaction its fraud label usually arrives (0s, 1d, 7d, ...): "
        "label-feedback windows end that far back; a model must be trained with the same --label-delay",
    )
    case_entity: Literal["card", "user", "device"] = Field(
        "card",
        description="Cases: alerts on the same card (fingerprint), user or device join one case; a "
        "transaction without that entity is grouped on its user",
    )
    case_window: str = Field(
        "24h", description="Cases: an alert joins an open case of its entity opened this long before it"
    )
    case_priority_scores: dict[str, float] = Field(
        {"critical": 90, "high": 75, "medium": 50},
        description="Cases: the lowest score of the riskiest alert for each priority (low takes the rest)",
    )
    case_sla: dict[str, str] = Field(
        {"critical": "1h", "high": "4h", "medium": "24h", "low": "72h"},
        description="Cases: how long after it opens a case of each priority is due",
    )
    rules_path: Path | None = Field(
        None, description="YAML rule set to start with (default: the packaged set)"
    )
    features_path: Path | None = Field(
        None,
        description="YAML of declared feature aggregations (entity, function count/sum/mean/max/distinct, "
        "field, window), computed beside the built-in features by every engine: server, workers, "
        "training, backtests",
    )
    model_path: Path | None = Field(
        None, description="Model artifact directory (default: {data_dir}/models/champion)"
    )
    # Path | str: an s3:// URL stays a string (a Path would make it the folder "s3:/bucket/prefix").
    registry_dir: Path | str | None = Field(
        None,
        description="Model registry whose champion decides: a folder, or s3://bucket/prefix in an "
        "S3-compatible store (FRAUDSTREAM_S3_ENDPOINT_URL for MinIO) (default: {data_dir}/models)",
    )
    log_format: Literal["json", "console", "auto"] = "auto"
    access_log: bool = Field(
        False, description="Log every request: method, path, status, duration, caller (never a key)"
    )
    allowed_origins: str = Field(
        "",
        description="Other sites (https://host[:port], comma-separated) whose pages may write with the "
        "dashboard's sign-in, e.g. its public address behind a proxy that changes the Host header",
    )
    kafka_brokers: str | None = Field(
        None,
        description="Kafka: a broker (host:port) the API accepts transactions onto (202, decisions "
        "stored as workers write them) and workers consume from",
    )
    kafka_topic: str = Field(
        TRANSACTIONS_TOPIC, description="Kafka: the topic transactions are produced to and workers read"
    )
    kafka_decisions_topic: str = Field(
        DECISIONS_TOPIC, description="Kafka: the topic workers write decisions to and the API reads"
    )
    kafka_alerts_topic: str = Field(ALERTS_TOPIC, description="Kafka workers: the topic alerts go to")
    kafka_dlq_topic: str = Field(
        DLQ_TOPIC, description="Kafka workers: the dead-letter topic, for messages that are not transactions"
    )
    kafka_labels_topic: str = Field(
        LABELS_TOPIC,
        description="Kafka: the topic analysts' verdicts and posted labels go to, for workers ('' for none)",
    )
    kafka_control_topic: str = Field(
        CONTROL_TOPIC,
        description="Kafka: the topic rule sets and lists changed through the API go to, for workers "
        "('' for none)",
    )
    kafka_config: Path | None = Field(
        None,
        description="Kafka: a properties file (key=value lines, # comments) of librdkafka properties "
        "every client gets: SASL, TLS, client.id, ...",
    )
    kafka_options: dict[str, str] = Field(
        default_factory=dict,
        description="Kafka: librdkafka properties every client gets, over the file's (--kafka-option "
        "KEY=VALUE; as JSON in FRAUDSTREAM_KAFKA_OPTIONS)",
    )
    kafka_outputs: str | None = Field(
        None,
        description="Embedded server: also write every decision to the decisions topic and every alert to "
        "the alerts topic on this broker (host:port), as the Kafka workers write them",
    )
    kafka_group: str = Field(GROUP, description="Kafka workers: their consumer group")
    kafka_transactional_id: str | None = Field(
        None,
        description="Kafka workers: produce outputs in Kafka transactions under this id, one per worker "
        "and the same across its restarts (read_committed readers then see each decision once)",
    )
    checkpoint_dir: Path = Field(
        Path(CHECKPOINT_DIR), description="Kafka workers: the directory partition checkpoints go to"
    )
    checkpoint_url: str | None = Field(
        None,
        description="Kafka workers: where partition checkpoints go, instead of checkpoint_dir (a "
        "directory, file://, postgresql+psycopg://..., s3://bucket/prefix)",
    )
    checkpoint_interval_s: float = Field(
        CHECKPOINT_INTERVAL_S, ge=0, description="Kafka workers: seconds between a partition's checkpoints"
    )
    s3_endpoint_url: str | None = Field(
        None, description="Endpoint of an S3-compatible store (MinIO, ...) for s3:// URLs"
    )
    redis_url: SecretStr | None = Field(
        None,
        description="Redis (redis://[:password@]host:port/db): every alert is pushed onto a list and "
        "published on a channel, as the JSON the live alert stream sends",
    )
    redis_alerts_list: str = Field(
        "fraud_alerts", description="Redis: the list alerts are pushed onto (LPUSH)"
    )
    redis_alerts_channel: str = Field(
        "fraud_alerts", description="Redis: the channel alerts are published on"
    )
    redis_list_max: int = Field(
        10_000, ge=1, description="Redis: the alert list keeps this many newest alerts (LTRIM)"
    )
    lake_url: str | None = Field(
        None,
        description="Data lake: a folder or s3://bucket/prefix that receives every transaction and its "
        "decision as Parquet, in date partitions (AWS_* settings and AWS_ENDPOINT_URL for S3)",
    )
    lake_flush_s: float = Field(
        60, gt=0, description="Data lake: a file is written at least this often (seconds) while traffic flows"
    )
    lake_file_rows: int = Field(
        100_000, ge=1, description="Data lake: a file is written once this many rows are waiting"
    )
    webhook_timeout_s: float = Field(
        5, gt=0, description="Webhooks: seconds a receiver has to answer one delivery"
    )
    webhook_max_attempts: int = Field(
        15,
        ge=1,
        description="Webhooks: attempts (with exponential backoff, up to an hour apart) before a "
        "delivery is marked failed",
    )
    worker_batch_size: int = Field(
        BATCH_SIZE, ge=1, description="Kafka workers: most messages scored together"
    )
    worker_max_wait_s: float = Field(
        MAX_WAIT_S, ge=0, description="Kafka workers: longest wait for a batch, seconds"
    )
    worker_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Kafka workers: serve /metrics and /healthz on this port"
    )
    jobs_interval_s: float = Field(
        30.0, gt=0, description="Jobs: seconds between two looks at the schedules and the new labels"
    )
    retrain_after_labels: int = Field(
        0, ge=0, description="Jobs: retrain once this many labels arrived since the last retrain (0: never)"
    )
    retrain_cron: str = Field(
        "", description="Jobs: retrain on this cron schedule, UTC, e.g. '0 3 * * *' (empty: never)"
    )
    retrain_days: float = Field(30.0, gt=0, le=3650, description="Jobs: a retrain learns from this many days")
    retrain_margin: float = Field(
        0.01, ge=-1, le=1, description="Jobs: a retrained model is promoted only if better by this much AP"
    )
    retrain_kind: Literal["lightgbm", "isolation_forest", "random_forest", "logistic"] = Field(
        "lightgbm", description="Jobs: the kind of model a scheduled retrain trains"
    )
    backtest_cron: str = Field(
        "0 6 * * 1",
        description="Jobs: the backtest report of the last 7 days on this cron schedule (empty: never)",
    )
    drift_watch_psi: float = Field(
        0.1, gt=0, description="Drift: a feature whose PSI against its training data reaches this is 'watch'"
    )
    drift_alert_psi: float = Field(
        0.25, gt=0, description="Drift: a feature whose PSI reaches this is 'drifted', and warns"
    )
    drift_min_transactions: int = Field(
        200, ge=1, description="Drift: fewer transactions in the window than this measure nothing yet"
    )

    @model_validator(mode="after")
    def _drift_thresholds(self) -> Settings:
        if not self.drift_watch_psi < self.drift_alert_psi:
            raise ValueError(
                "drift thresholds must rise: FRAUDSTREAM_DRIFT_WATCH_PSI < FRAUDSTREAM_DRIFT_ALERT_PSI"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments (the command's flags), then the environment, .env, the secrets directory, the
        configuration file; defaults last. `inspect_settings` reads the same sources one by one."""
        found = [source(settings_cls) for source in _DEPLOYMENT_SOURCES]
        return init_settings, env_settings, *(pair[1] for pair in found if pair is not None)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("card_key", "admin_key")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty secret file (mounted before it was written) or variable would key every card
        # fingerprint, or the admin key, with nothing.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is empty; give a long random secret, e.g. $(openssl rand -hex 32)")
        return value

    @field_validator("case_window")
    @classmethod
    def _case_window(cls, value: str) -> str:
        from fraudstream.core.features.spec import format_duration, parse_duration_ms

        try:
            return format_duration(parse_duration_ms(value))
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("case_priority_scores")
    @classmethod
    def _case_scores(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != {"critical", "high", "medium"}:
            raise ValueError(f"give exactly critical, high and medium (got {sorted(value)})")
        if not 100 >= value["critical"] >= value["high"] >= value["medium"] >= 0:
            raise ValueError("scores must fall from critical to medium, within 0-100")
        return value

    @field_validator("case_sla")
    @classmethod
    def _case_sla(cls, value: dict[str, str]) -> dict[str, str]:
        from fraudstream.core.features.spec import format_duration, parse_duration_ms

        if set(value) != {"critical", "high", "medium", "low"}:
            raise ValueError(f"give exactly critical, high, medium and low (got {sorted(value)})")
        try:
            return {priority: format_duration(parse_duration_ms(d)) for priority, d in value.items()}
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("label_delay")
    @classmethod
    def _delay(cls, value: str) -> str:
        from fraudstream.core.features.spec import format_duration, parse_delay_ms

        try:
            return format_duration(parse_delay_ms(value))
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("features_path")
    @classmethod
    def _declared_features(cls, value: Path | None) -> Path | None:
        if value is not None:
            declared_features(value)
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        low = self.challenge_threshold if self.challenge_threshold is not None else -1
        if not low < self.review_threshold < self.decline_threshold:
            raise ValueError(
                "thresholds must rise: FRAUDSTREAM_CHALLENGE_THRESHOLD < FRAUDSTREAM_REVIEW_THRESHOLD < "
                "FRAUDSTREAM_DECLINE_THRESHOLD"
            )
        return self

    @field_validator("retrain_cron", "backtest_cron")
    @classmethod
    def _cron(cls, value: str, info: ValidationInfo) -> str:
        from fraudstream.cron import check_cron

        try:
            return check_cron(value, str(info.field_name))
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _card_key_given(self) -> Settings:
        if self.card_key is None and not self.demo:
            raise ValueError(
                "FRAUDSTREAM_CARD_KEY is required (a long random secret for card fingerprints), "
                "e.g. export FRAUDSTREAM_CARD_KEY=$(openssl rand -hex 32) or a file of that name in "
                "FRAUDSTREAM_SECRETS_DIR; "
                "or run `fraudstream demo` to try it without one"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'fraudstream.db'}"

    @property
    def keys_required(self) -> bool:
        return (not self.demo) if self.api_keys_enabled is None else self.api_keys_enabled

    @property
    def allowed_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.allowed_origins.split(",") if origin.strip()]

    @property
    def card_key_bytes(self) -> bytes:
        if self.card_key is not None:
            return self.card_key.get_secret_value().encode()
        return DEMO_CARD_KEY.encode()

    @property
    def snapshots_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def models_dir(self) -> Path | str:
        """The model registry: a folder (a Path), or a URL such as ``s3://bucket/prefix`` (a str)."""
        if self.registry_dir is None:
            return self.data_dir / "models"
        if isinstance(self.registry_dir, str) and "://" not in self.registry_dir:
            return Path(self.registry_dir)
        return self.registry_dir

    def policy(self) -> PolicyConfig:
        """The decision thresholds, for every engine that decides (the API's, Kafka workers')."""
        # Imported here: the policy compiles with numba, which settings (and `--help`) do not need.
        from fraudstream.core.policy import PolicyConfig

        return PolicyConfig(
            review_threshold=self.review_threshold,
            decline_threshold=self.decline_threshold,
            challenge_threshold=self.challenge_threshold,
        )

    def engine_config(self) -> EngineConfig:
        """How every engine that decides is configured (the API's, Kafka workers'): thresholds and
        the label delay its label-feedback windows respect."""
        from dataclasses import replace

        from fraudstream.core.engine import EngineConfig

        base = EngineConfig(policy=self.policy())
        features = replace(base.features, label_delay=self.label_delay)
        if self.features_path is not None:
            features = declared_features(self.features_path, features)
        return replace(base, features=features)

    def masked(self) -> dict[str, Any]:
        """The effective settings with secrets (and passwords in URLs) shown as ****."""
        values = self.model_dump()
        for name, value in values.items():
            if isinstance(getattr(self, name), SecretStr):
                values[name] = "****"
            elif isinstance(value, Path):
                values[name] = str(value)
        url = self.effective_database_url
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            credentials, host = rest.rsplit("@", 1)
            user = credentials.split(":", 1)[0]
            url = f"{scheme}://{user}:****@{host}"
        values["database_url"] = url
        values["kafka_options"] = {
            key: "****" if secret_property(key) else value for key, value in self.kafka_options.items()
        }
        values["api_keys_required"] = self.keys_required
        return values


def declared_features(path: Path, base: FeatureConfig | None = None) -> FeatureConfig:
    """``base`` (default: the default feature configuration) with the aggregations the YAML file at
    ``path`` declares; a ValueError naming the file and every problem in it."""
    from fraudstream.core.features import FeatureConfig
    from fraudstream.core.features.declared import with_declared_features

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the declared features file {path}: {exc.strerror or exc}") from None
    try:
        return with_declared_features(text, base or FeatureConfig(), source=f"declared features file {path}")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


class StoreSettings(Settings):
    """The settings of commands that use only the database and the model registry (`db upgrade`,
    `keys create`, `retrain`): they never see a card number, so they run without a card key."""

    @model_validator(mode="after")
    def _card_key_given(self) -> StoreSettings:
        return self


#: Variables with the prefix that are read outside the settings: where the configuration lives, the
#: API key the simulator sends, the compiled kernels' folder, the README's screenshots. They are read
#: from the environment only.
_OTHER_VARIABLES = frozenset(
    {
        CONFIG_FILE_VARIABLE,
        ENV_FILE_VARIABLE,
        SECRETS_DIR_VARIABLE,
        "FRAUDSTREAM_API_KEY",
        "FRAUDSTREAM_KERNEL_CACHE",
        "FRAUDSTREAM_SCREENSHOTS",
    }
)


def _variable(name: str) -> str:
    return f"FRAUDSTREAM_{name.upper()}"


def unknown_variables(environ: Mapping[str, object]) -> list[tuple[str, str | None]]:
    """``FRAUDSTREAM_*`` variables that name no setting (a typo is otherwise silently ignored), each
    with the closest known name if one is close.

    >>> unknown_variables({"FRAUDSTREAM_REVIEWTHRESHOLD": "70", "FRAUDSTREAM_PORT": "1", "HOME": "/"})
    [('FRAUDSTREAM_REVIEWTHRESHOLD', 'FRAUDSTREAM_REVIEW_THRESHOLD')]
    """
    known = {_variable(name) for name in Settings.model_fields} | _OTHER_VARIABLES
    return [
        (name, next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.8)), None))
        for name in sorted(environ)
        if name.startswith("FRAUDSTREAM_") and name not in known
    ]


def unknown_settings() -> list[str]:
    """A warning for each ``FRAUDSTREAM_*`` name that no setting takes: in the environment, in the
    .env file and among the secrets directory's files (a missing file or directory is not warned
    about here: reading the settings reports it)."""
    where: list[tuple[str, Mapping[str, object]]] = [("", os.environ)]
    try:
        env_file = _env_file()
        secrets_dir = _secrets_dir()
    except ConfigError:
        env_file = secrets_dir = None
    if env_file is not None:
        from dotenv import dotenv_values

        where.append(
            (f" in {env_file.resolve()}", {k.upper(): v for k, v in dotenv_values(env_file).items()})
        )
    if secrets_dir is not None:
        where.append(
            (f" in {secrets_dir.resolve()}", {file.name.upper(): file for file in secrets_dir.iterdir()})
        )
    warnings = []
    for place, names in where:
        for name, close in unknown_variables(names):
            hint = f"; did you mean {close}?" if close else ""
            warnings.append(f"{name}{place} is not a setting and is ignored{hint}")
        if place:
            warnings += [
                f"{name}{place} is ignored: it is read from the environment only"
                for name in sorted(_OTHER_VARIABLES & set(names))
            ]
    return warnings


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration, in a sentence that names the setting (as the source
    that gave it spells it), the value and what is allowed. ``setting`` is None for a check of
    several settings together, or for a source that could not be read."""

    message: str
    setting: str | None = None
    origin: Origin | None = None

    def __str__(self) -> str:
        return self.message


@dataclass
class ConfigReport:
    """The effective configuration, each value with its source, and everything wrong with it: what
    `fraudstream config show` prints, valid or not."""

    #: The effective values (secrets masked), the invalid ones as given.
    values: dict[str, Any]
    #: Each value's source; a mapping (kafka_options) merges several, the first wins a key.
    origins: dict[str, tuple[Origin, ...]]
    #: The files and directory the configuration was read from.
    locations: list[Origin] = field(default_factory=list)
    errors: list[ConfigProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """One JSON object for scripts (`config show --json`)."""
        return {
            "valid": not self.errors,
            "values": {
                name: {
                    "value": value,
                    "source": self.origins[name][0].kind,
                    "path": self.origins[name][0].path,
                }
                for name, value in self.values.items()
            },
            "locations": [{"source": origin.kind, "path": origin.path} for origin in self.locations],
            "errors": [
                {
                    "setting": problem.setting,
                    "source": problem.origin.kind if problem.origin else None,
                    "path": problem.origin.path if problem.origin else None,
                    "message": problem.message,
                }
                for problem in self.errors
            ],
            "warnings": self.warnings,
        }


def inspect_settings(kind: type[Settings] = Settings, **overrides: Any) -> ConfigReport:
    """What ``kind(**overrides)`` would be built from, source by source, validated as it would be, and
    never raising: a source that cannot be read and every invalid value are listed as errors, the
    other values shown all the same (``overrides`` play the command-line flags, source "flag")."""
    report = ConfigReport(values={}, origins={}, warnings=unknown_settings())
    sources: list[tuple[Origin, PydanticBaseSettingsSource]] = [
        (Origin("flag"), InitSettingsSource(kind, init_kwargs=overrides)),
        (Origin("env"), EnvSettingsSource(kind)),
    ]
    for build in _DEPLOYMENT_SOURCES:
        try:
            found = build(kind)
        except ConfigError as exc:
            report.errors.append(ConfigProblem(str(exc)))
            continue
        if found is not None:
            report.locations.append(found[0])
            sources.append(found)
    given = _gather(kind, sources, report)
    invalid, together = _check(kind, given, report)
    settings = _lenient(kind)(**{n: v for n, v in given.items() if n not in invalid})
    _check_together(kind, settings, invalid, together, report)
    report.values = settings.masked()
    for name in invalid & set(kind.model_fields):
        report.values[name] = "****" if _is_secret(kind, name) else given[name]
    for name in report.values:
        report.origins.setdefault(name, (Origin("default" if name in kind.model_fields else "derived"),))
    return report


def _gather(
    kind: type[Settings], sources: list[tuple[Origin, PydanticBaseSettingsSource]], report: ConfigReport
) -> dict[str, Any]:
    """The sources' values merged as pydantic-settings merges them: the first source that has a
    setting gives it, except that mappings merge key by key. Records each value's origins."""
    given: dict[str, Any] = {}
    for origin, source in sources:
        try:
            values = source()
        except SourceError:  # one value it cannot decode (not JSON where JSON is expected) fails all
            values = _field_by_field(kind, origin, source, report)
        for name, value in values.items():
            where = _secret_file(origin, name) if origin.kind == "secret" else origin
            if name not in given:
                given[name] = value
                report.origins[name] = (where,)
            elif isinstance(given[name], dict) and isinstance(value, dict):
                given[name] = {**value, **given[name]}
                report.origins[name] += (where,)
    return given


def _field_by_field(
    kind: type[Settings], origin: Origin, source: PydanticBaseSettingsSource, report: ConfigReport
) -> dict[str, Any]:
    """A source's values read one setting at a time, through the same two steps its own reading takes
    (find the value, decode it), so that the one it cannot decode is reported, by name, and the
    others are still taken."""
    values = {}
    for name, info in kind.model_fields.items():
        try:
            value, _, is_complex = source.get_field_value(info, name)
            value = source.prepare_field_value(name, info, value, is_complex)
        except ValueError as exc:
            where = _secret_file(origin, name) if origin.kind == "secret" else origin
            spelt = name if origin.kind in ("flag", "file") else _variable(name)
            problem = f"is not valid JSON ({exc})" if isinstance(exc, json.JSONDecodeError) else str(exc)
            report.errors.append(ConfigProblem(f"{spelt} ({where}) {problem}", name, where))
            continue
        if value is not None:
            values[name] = value
    return values


def _secret_file(directory: Origin, name: str) -> Origin:
    """The file of the secrets directory that held a setting (any case of its variable's name)."""
    assert directory.path is not None
    found = SecretsSettingsSource.find_case_path(Path(directory.path), _variable(name), case_sensitive=False)
    return Origin("secret", str(found) if found else directory.path)


def _check(kind: type[Settings], given: dict[str, Any], report: ConfigReport) -> tuple[set[str], list[str]]:
    """Validate the merged values exactly as ``kind`` does and add each invalid value to the report.
    Returns the names of the invalid values, and what the checks of several settings together said
    (`_check_together` reports those).

    A name that is no setting (from a file) is reported here rather than by pydantic, and left out of
    the validation, so that the other checks still run."""
    unknown = {name for name in given if name not in kind.model_fields}
    for name in sorted(unknown):
        origin = report.origins[name][0]
        close = difflib.get_close_matches(name, list(kind.model_fields), n=1, cutoff=0.7)
        hint = f"; did you mean {close[0]}?" if close else ""
        report.errors.append(ConfigProblem(f"{name} ({origin}) is not a setting{hint}", name, origin))
    try:
        _given_only(kind)(**{name: value for name, value in given.items() if name not in unknown})
    except PydanticValidationError as exc:
        problems = exc.errors()
    else:
        return unknown, []
    invalid = set(unknown)
    for problem in [problem for problem in problems if problem["loc"]]:
        name = str(problem["loc"][0])
        invalid.add(name)
        given_by = report.origins[name][0]  # a default is not validated: an invalid value was given
        message = _field_message(kind, name, given[name], given_by, str(problem["msg"]))
        report.errors.append(ConfigProblem(message, name, given_by))
    together = [
        str(problem["msg"]).removeprefix("Value error, ") for problem in problems if not problem["loc"]
    ]
    return invalid, together


class _Reads:
    """A settings object that notes which settings a check reads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.names.add(name)
        return getattr(self.settings, name)


def _check_together(
    kind: type[Settings], settings: Settings, invalid: set[str], said: list[str], report: ConfigReport
) -> None:
    """Report what each of ``kind``'s checks of several settings together (the card key outside demo
    mode, rising thresholds) finds wrong with the valid values, ``settings``.

    pydantic runs them only when every value is valid, and stops at the first that fails: each runs
    here on its own, so that all are listed at once. A check that reads an invalid value is left for
    when that value is fixed. ``said``: what pydantic's own run said, reported should a check not
    be found here."""
    found = []
    for check in kind.__pydantic_decorators__.model_validators.values():
        if check.info.mode != "after":
            continue
        reads = _Reads(settings)
        try:
            check.func(reads)
        except ValueError as exc:
            if not reads.names & invalid:
                found.append(str(exc))
    found += [message for message in said if message not in found]
    report.errors += [ConfigProblem(message) for message in found]


def _field_message(kind: type[Settings], name: str, value: Any, origin: Origin, message: str) -> str:
    """The setting named as its source spells it, the value as given (masked if secret), the source
    and what is allowed: FRAUDSTREAM_PORT='0' (env): Input should be greater than or equal to 1."""
    shown = "****" if _is_secret(kind, name) else repr(value) if isinstance(value, str) else value
    spelt = name if origin.kind in ("flag", "file") else _variable(name)
    return f"{spelt}={shown} ({origin}): {message.removeprefix('Value error, ')}"


def _is_secret(kind: type[Settings], name: str) -> bool:
    annotation = kind.model_fields[name].annotation if name in kind.model_fields else None
    return annotation is not None and "SecretStr" in str(annotation)


def _accept(self: Settings) -> Settings:
    return self


@cache
def _given_only(kind: type[Settings]) -> type[Settings]:
    """``kind`` built from its arguments alone: to validate values already gathered from the sources
    with the very validators every command runs."""

    class Given(kind):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    return Given


@cache
def _lenient(kind: type[Settings]) -> type[Settings]:
    """``kind`` without its checks of several settings together (the card key outside demo mode,
    rising thresholds), for showing the valid values of an invalid configuration."""
    checks = kind.__pydantic_decorators__.model_validators
    return type(
        f"Lenient{kind.__name__}",
        (_given_only(kind),),
        {name: model_validator(mode="after")(_accept) for name in checks},
    )
