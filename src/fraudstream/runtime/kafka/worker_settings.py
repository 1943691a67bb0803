"""A Kafka worker's configuration built from the one `Settings`, as `fraudstream worker` builds it."""

from __future__ import annotations

from fraudstream.config import Settings
from fraudstream.errors import ConfigError
from fraudstream.runtime.kafka.clients import user_properties
from fraudstream.runtime.kafka.worker import WorkerConfig

__all__ = ["worker_config"]


def worker_config(settings: Settings, properties: dict[str, str] | None = None) -> WorkerConfig:
    """The worker that ``settings`` describe: the broker, topics, group and checkpoints, the user's
    librdkafka properties (``properties`` if already read, else read now: clients.py), and the card
    key, rules and model the API's engine decides with too, so both decide alike.

    >>> config = worker_config(Settings(demo=True, kafka_brokers="broker:9092", kafka_labels_topic=""))
    >>> config.group, config.topic, config.labels_topic, config.batch_size
    ('fraudstream', 'transactions', None, 4000)
    """
    if not settings.kafka_brokers:
        raise ConfigError(
            "a worker needs a broker to read from: give --brokers host:port or FRAUDSTREAM_KAFKA_BROKERS"
        )
    return WorkerConfig(
        brokers=settings.kafka_brokers,
        group=settings.kafka_group,
        topic=settings.kafka_topic,
        decisions_topic=settings.kafka_decisions_topic,
        alerts_topic=settings.kafka_alerts_topic,
        dlq_topic=settings.kafka_dlq_topic,
        labels_topic=settings.kafka_labels_topic or None,
        control_topic=settings.kafka_control_topic or None,
        checkpoint_dir=settings.checkpoint_dir,
        checkpoint_url=settings.checkpoint_url,
        s3_endpoint_url=settings.s3_endpoint_url,
        batch_size=settings.worker_batch_size,
        max_wait_s=settings.worker_max_wait_s,
        checkpoint_interval_s=settings.checkpoint_interval_s,
        card_key=settings.card_key_bytes,
        transactional_id=settings.kafka_transactional_id or None,
        model_path=settings.model_path,
        models_dir=settings.models_dir,
        rules_path=settings.rules_path,
        client_properties=user_properties(settings) if properties is None else properties,
    )
