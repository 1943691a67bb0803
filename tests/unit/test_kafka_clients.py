"""The librdkafka properties every client gets: read from a file and options, merged, masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudstream.config import Settings
from fraudstream.errors import ConfigError
from fraudstream.runtime.kafka.clients import client_settings, read_properties, user_properties
from fraudstream.runtime.kafka.worker import producer_settings
from fraudstream.runtime.kafka.worker_settings import worker_config


def test_options_win_over_the_file_which_wins_over_brokers_and_the_client_keeps_its_own(
    tmp_path: Path,
) -> None:
    file = tmp_path / "client.properties"
    file.write_text(
        "# managed cluster\n\n! also a comment\nsecurity.protocol=SASL_SSL\n"
        "sasl.username = fraud\nclient.id=from-file\nacks=0\n"
    )
    settings = Settings(
        demo=True,
        kafka_brokers="b:9092",
        kafka_config=file,
        kafka_options={"client.id": "from-option", "sasl.password": "s3cret"},
    )
    properties = user_properties(settings)
    assert properties == {
        "security.protocol": "SASL_SSL",
        "sasl.username": "fraud",
        "client.id": "from-option",
        "acks": "0",
        "sasl.password": "s3cret",
    }
    # The worker's producer gets them all, but keeps acks=all, which its guarantees rest on.
    produced = producer_settings(worker_config(settings))
    assert produced["bootstrap.servers"] == "b:9092"
    assert produced["client.id"] == "from-option"
    assert produced["security.protocol"] == "SASL_SSL"
    assert produced["acks"] == "all"
    assert client_settings("b:9092", {"bootstrap.servers": "c:9093"})["bootstrap.servers"] == "c:9093"


def test_config_show_masks_kafka_secrets() -> None:
    settings = Settings(demo=True, kafka_options={"sasl.password": "s3cret", "client.id": "eu"})
    assert settings.masked()["kafka_options"] == {"sasl.password": "****", "client.id": "eu"}
    assert "s3cret" not in str(settings.masked())


def test_a_malformed_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    file = tmp_path / "bad.properties"
    file.write_text("client.id=eu\n\nsasl.username fraud\n")
    with pytest.raises(ConfigError, match=r"bad.properties:3: expected key=value"):
        read_properties(file)
    with pytest.raises(ConfigError, match=r"missing.properties: cannot read"):
        read_properties(tmp_path / "missing.properties")
