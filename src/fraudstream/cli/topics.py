"""`fraudstream topics create`: the Kafka topics."""

from __future__ import annotations

from typing import Annotated

import typer

from fraudstream.cli.app import _settings, app, out
from fraudstream.cli.kafka import (
    AlertsTopic,
    DecisionsTopic,
    DlqTopic,
    KafkaOption,
    LabelsTopic,
    TransactionsTopic,
    client_properties,
    topic_settings,
)

topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")


@topics_app.command("create")
def topics_create(
    brokers: Annotated[str, typer.Option(envvar="FRAUDSTREAM_KAFKA_BROKERS", help="host:port of a broker.")],
    partitions: Annotated[
        int, typer.Option(help="Partitions of the transactions topic (= most workers).")
    ] = 8,
    transactions_topic: TransactionsTopic = None,
    decisions_topic: DecisionsTopic = None,
    alerts_topic: AlertsTopic = None,
    dlq_topic: DlqTopic = None,
    labels_topic: LabelsTopic = None,
    kafka_option: KafkaOption = None,
) -> None:
    """Create the topics fraudstream uses (existing ones are left alone), under the names the
    settings give them (FRAUDSTREAM_KAFKA_*_TOPIC or the options).

    Example: `fraudstream topics create --brokers localhost:9092 --partitions 12`
    """
    from fraudstream.config import (
        ALERTS_TOPIC,
        CONTROL_TOPIC,
        DECISIONS_TOPIC,
        DLQ_TOPIC,
        LABELS_TOPIC,
        TRANSACTIONS_TOPIC,
    )
    from fraudstream.runtime.kafka.topics import create_topics

    settings = _settings(
        store_only=True,
        kafka_brokers=brokers,
        **topic_settings(
            transactions_topic, decisions_topic, alerts_topic, dlq_topic, labels_topic, kafka_option
        ),
    )
    renamed = {
        TRANSACTIONS_TOPIC: settings.kafka_topic,
        DECISIONS_TOPIC: settings.kafka_decisions_topic,
        ALERTS_TOPIC: settings.kafka_alerts_topic,
        DLQ_TOPIC: settings.kafka_dlq_topic,
        LABELS_TOPIC: settings.kafka_labels_topic,
        CONTROL_TOPIC: settings.kafka_control_topic,
    }
    created = create_topics(brokers, partitions, renamed=renamed, properties=client_properties(settings))
    out.print(f"created: {', '.join(created) or 'nothing (all exist)'}")
