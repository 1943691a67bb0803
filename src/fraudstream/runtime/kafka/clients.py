"""The librdkafka properties every Kafka client of fraudstream is built with, merged in one place.

A user's properties (SASL, TLS, client id, ...) come from a Java-style properties file
(``FRAUDSTREAM_KAFKA_CONFIG``) and from ``--kafka-option KEY=VALUE``; later keys win, so an option
overrides the file, and either overrides the broker given with ``--brokers``. Each client then adds
the settings fraudstream relies on (group ids, commits, acks), which a user's properties do not
override.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudstream.config import secret_property
from fraudstream.errors import ConfigError

if TYPE_CHECKING:
    from fraudstream.config import Settings

__all__ = [
    "check_properties",
    "client_settings",
    "masked",
    "parse_options",
    "read_properties",
    "user_properties",
]


def read_properties(path: Path) -> dict[str, str]:
    """``key=value`` lines of a properties file; blank lines and ``#`` or ``!`` comments are skipped.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".properties", delete=False) as f:
    ...     _ = f.write("# a managed cluster\\nsecurity.protocol = SASL_SSL\\nsasl.mechanism=PLAIN\\n")
    >>> read_properties(Path(f.name))
    {'security.protocol': 'SASL_SSL', 'sasl.mechanism': 'PLAIN'}
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the Kafka properties file ({exc.strerror})") from None
    properties: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected key=value, got {stripped[:60]!r}")
        properties[key.strip()] = value.strip()
    return properties


def parse_options(options: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (``--kafka-option``) as properties.

    >>> parse_options(["client.id=eu-1", "sasl.password=a=b"])
    {'client.id': 'eu-1', 'sasl.password': 'a=b'}
    """
    properties: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--kafka-option {option!r}: expected KEY=VALUE, e.g. client.id=fraud-eu")
        properties[key.strip()] = value.strip()
    return properties


def user_properties(settings: Settings) -> dict[str, str]:
    """The properties file's and the options' properties, options last (they win)."""
    from_file = read_properties(settings.kafka_config) if settings.kafka_config is not None else {}
    return {**from_file, **settings.kafka_options}


def client_settings(brokers: str, properties: Mapping[str, str] | None = None, **own: Any) -> dict[str, Any]:
    """A client's librdkafka configuration: ``bootstrap.servers``, then the user's ``properties``,
    then the client's ``own`` settings (keywords; librdkafka's names have dots, so ``**{...}``).

    >>> client_settings("b:9092", {"client.id": "eu-1", "bootstrap.servers": "c:9093"}, **{"acks": "all"})
    {'bootstrap.servers': 'c:9093', 'client.id': 'eu-1', 'acks': 'all'}
    """
    return {"bootstrap.servers": brokers, **(properties or {}), **own}


def masked(properties: Mapping[str, Any]) -> dict[str, Any]:
    """``properties`` with secrets (passwords, client secrets) shown as ****.

    >>> masked({"sasl.username": "fraud", "sasl.password": "s3cret"})
    {'sasl.username': 'fraud', 'sasl.password': '****'}
    """
    return {key: "****" if secret_property(key) else value for key, value in properties.items()}


def check_properties(properties: Mapping[str, str]) -> None:
    """Raise ConfigError, with librdkafka's words, if it refuses a property or its value; a command
    then stops at once rather than when its first client is built.

    >>> check_properties({"client.id": "fraud-eu"})
    >>> try:
    ...     check_properties({"socket.timeout.ms": "soon"})
    ... except ConfigError as exc:
    ...     print(exc)
    Kafka properties: Invalid value for configuration property "socket.timeout.ms"
    """
    import logging

    from confluent_kafka import KafkaException, Producer

    # With no broker to connect to, building a producer only checks its configuration; its one
    # complaint (no bootstrap.servers) goes nowhere.
    quiet = logging.getLogger("fraudstream.librdkafka.check")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
    unconnected = {key: value for key, value in properties.items() if key != "bootstrap.servers"}
    try:
        Producer({**unconnected, "logger": quiet})
    except KafkaException as exc:
        raise ConfigError(f"Kafka properties: {exc.args[0].str()}") from None
