"""The Kafka options that `worker`, `serve --kafka`, `topics create` and `simulate` share."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fraudstream.cli.app import console
from fraudstream.config import ALERTS_TOPIC, DECISIONS_TOPIC, DLQ_TOPIC, LABELS_TOPIC, TRANSACTIONS_TOPIC

TransactionsTopic = Annotated[
    str | None,
    typer.Option(
        "--transactions-topic",
        "--topic",
        help=f"Topic of transactions (FRAUDSTREAM_KAFKA_TOPIC; default {TRANSACTIONS_TOPIC}).",
    ),
]
DecisionsTopic = Annotated[
    str | None,
    typer.Option(help=f"Topic of decisions (FRAUDSTREAM_KAFKA_DECISIONS_TOPIC; default {DECISIONS_TOPIC})."),
]
AlertsTopic = Annotated[
    str | None,
    typer.Option(help=f"Topic of alerts (FRAUDSTREAM_KAFKA_ALERTS_TOPIC; default {ALERTS_TOPIC})."),
]
DlqTopic = Annotated[
    str | None,
    typer.Option(
        help="Dead-letter topic, for messages that are not transactions "
        f"(FRAUDSTREAM_KAFKA_DLQ_TOPIC; default {DLQ_TOPIC})."
    ),
]
LabelsTopic = Annotated[
    str | None,
    typer.Option(
        help="Topic of fraud labels {transaction_id, is_fraud, label_time?}; '' for none "
        f"(FRAUDSTREAM_KAFKA_LABELS_TOPIC; default {LABELS_TOPIC})."
    ),
]
KafkaOption = Annotated[
    list[str] | None,
    typer.Option(
        "--kafka-option",
        metavar="KEY=VALUE",
        help="A librdkafka property every Kafka client gets (sasl.username=..., client.id=...); "
        "repeatable; wins over the file of FRAUDSTREAM_KAFKA_CONFIG.",
    ),
]


def topic_settings(
    transactions: str | None,
    decisions: str | None,
    alerts: str | None,
    dlq: str | None,
    labels: str | None,
    options: list[str] | None,
) -> dict[str, Any]:
    """The settings these options give (None: not given, the setting's variable or default holds)."""
    from fraudstream.errors import ConfigError
    from fraudstream.runtime.kafka.clients import parse_options

    try:
        parsed = parse_options(options) if options else None
    except ConfigError as exc:
        console.print(f"[red]configuration error[/red] {exc}")
        raise typer.Exit(2) from None
    return {
        "kafka_topic": transactions,
        "kafka_decisions_topic": decisions,
        "kafka_alerts_topic": alerts,
        "kafka_dlq_topic": dlq,
        "kafka_labels_topic": labels,
        "kafka_options": parsed,
    }


def client_properties(settings: Any) -> dict[str, str]:
    """The user's librdkafka properties (file, then options), or exit 2 naming what is wrong."""
    from fraudstream.errors import ConfigError
    from fraudstream.runtime.kafka.clients import check_properties, user_properties

    try:
        properties = user_properties(settings)
        check_properties(properties)
        return properties
    except ConfigError as exc:
        console.print(f"[red]configuration error[/red] {exc}")
        raise typer.Exit(2) from None
