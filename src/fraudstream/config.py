"""All configuration in one Settings object: FRAUDSTREAM_* environment variables or a config file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import yaml
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from fraudstream.errors import ConfigError

if TYPE_CHECKING:
    from fraudstream.core.engine import EngineConfig
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
    "Settings",
    "StoreSettings",
    "secret_property",
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


class _FileSource(PydanticBaseSettingsSource):
    """Values from the YAML/TOML file named by FRAUDSTREAM_CONFIG (environment variables win)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("FRAUDSTREAM_CONFIG")
        if not path:
            return {}
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"FRAUDSTREAM_CONFIG={path}: no such file")
        text = file.read_text(encoding="utf-8")
        if file.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of setting names to values")
        return data


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
    rules_path: Path | None = Field(
        None, description="YAML rule set to start with (default: the packaged set)"
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileSource(settings_cls)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("label_delay")
    @classmethod
    def _delay(cls, value: str) -> str:
        from fraudstream.core.features.spec import format_duration, parse_delay_ms

        try:
            return format_duration(parse_delay_ms(value))
        except ConfigError as exc:
            raise ValueError(f"FRAUDSTREAM_LABEL_DELAY={value!r}: {exc}") from None

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        low = self.challenge_threshold if self.challenge_threshold is not None else -1
        if not low < self.review_threshold < self.decline_threshold:
            raise ValueError(
                "thresholds must rise: FRAUDSTREAM_CHALLENGE_THRESHOLD < FRAUDSTREAM_REVIEW_THRESHOLD < "
                "FRAUDSTREAM_DECLINE_THRESHOLD"
            )
        return self

    @model_validator(mode="after")
    def _card_key_given(self) -> Settings:
        if self.card_key is None and not self.demo:
            raise ValueError(
                "FRAUDSTREAM_CARD_KEY is required (a long random secret for card fingerprints), "
                "e.g. export FRAUDSTREAM_CARD_KEY=$(openssl rand -hex 32); "
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
        return replace(base, features=replace(base.features, label_delay=self.label_delay))

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


class StoreSettings(Settings):
    """The settings of commands that use only the database and the model registry (`db upgrade`,
    `keys create`, `retrain`): they never see a card number, so they run without a card key."""

    @model_validator(mode="after")
    def _card_key_given(self) -> StoreSettings:
        return self


#: Variables with the prefix that are read outside the settings: the settings file, the API key the
#: simulator sends, the compiled kernels' folder, the README's screenshots.
_OTHER_VARIABLES = frozenset(
    {"FRAUDSTREAM_CONFIG", "FRAUDSTREAM_API_KEY", "FRAUDSTREAM_KERNEL_CACHE", "FRAUDSTREAM_SCREENSHOTS"}
)


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """``FRAUDSTREAM_*`` variables that name no setting (a typo is otherwise silently ignored), each
    with the closest known name if one is close.

    >>> unknown_variables({"FRAUDSTREAM_REVIEWTHRESHOLD": "70", "FRAUDSTREAM_PORT": "1", "HOME": "/"})
    [('FRAUDSTREAM_REVIEWTHRESHOLD', 'FRAUDSTREAM_REVIEW_THRESHOLD')]
    """
    import difflib

    known = {f"FRAUDSTREAM_{name.upper()}" for name in Settings.model_fields} | _OTHER_VARIABLES
    return [
        (name, next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.8)), None))
        for name in sorted(environ)
        if name.startswith("FRAUDSTREAM_") and name not in known
    ]
