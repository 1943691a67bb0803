"""`fraudstream worker`: a Kafka consumer-group member."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudstream.cli.app import _settings, app, console
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
from fraudstream.cli.warmup import warm_first
from fraudstream.config import (
    BATCH_SIZE,
    CHECKPOINT_DIR,
    CHECKPOINT_INTERVAL_S,
    CONTROL_TOPIC,
    GROUP,
    MAX_WAIT_S,
)


@app.command()
def worker(
    brokers: Annotated[
        str | None, typer.Option(help="host:port of a broker (FRAUDSTREAM_KAFKA_BROKERS).")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help=f"Consumer group (FRAUDSTREAM_KAFKA_GROUP; default {GROUP}).")
    ] = None,
    topic: TransactionsTopic = None,
    decisions_topic: DecisionsTopic = None,
    alerts_topic: AlertsTopic = None,
    dlq_topic: DlqTopic = None,
    labels_topic: LabelsTopic = None,
    kafka_option: KafkaOption = None,
    control_topic: Annotated[
        str | None,
        typer.Option(
            help="Topic where the API announces rule sets and lists changed in it; '' for none "
            f"(FRAUDSTREAM_KAFKA_CONTROL_TOPIC; default {CONTROL_TOPIC})."
        ),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where partition checkpoints are kept "
            f"(FRAUDSTREAM_CHECKPOINT_DIR; default {CHECKPOINT_DIR})."
        ),
    ] = None,
    checkpoints: Annotated[
        str | None,
        typer.Option(
            "--checkpoints",
            help="Checkpoint store by URL, instead of --checkpoint-dir: a directory, file://..., "
            "postgresql+psycopg://user@host/db or s3://bucket/prefix (FRAUDSTREAM_CHECKPOINT_URL).",
        ),
    ] = None,
    s3_endpoint_url: Annotated[
        str | None,
        typer.Option(
            help="S3-compatible endpoint (MinIO, ...) for s3:// URLs (FRAUDSTREAM_S3_ENDPOINT_URL)."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=f"Most messages scored together (FRAUDSTREAM_WORKER_BATCH_SIZE; default {BATCH_SIZE})."
        ),
    ] = None,
    max_wait: Annotated[
        float | None,
        typer.Option(
            help=f"Longest wait for a batch, seconds (FRAUDSTREAM_WORKER_MAX_WAIT_S; default {MAX_WAIT_S:g})."
        ),
    ] = None,
    checkpoint_interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between checkpoints "
            f"(FRAUDSTREAM_CHECKPOINT_INTERVAL_S; default {CHECKPOINT_INTERVAL_S:g})."
        ),
    ] = None,
    card_key: Annotated[str | None, typer.Option(help="Card fingerprint key (FRAUDSTREAM_CARD_KEY).")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve /metrics and /healthz on this port (FRAUDSTREAM_WORKER_METRICS_PORT)."),
    ] = None,
    transactional_id: Annotated[
        str | None,
        typer.Option(
            help="Produce outputs in Kafka transactions under this id, one per worker and the same "
            "across its restarts: read_committed readers then see each decision once "
            "(FRAUDSTREAM_KAFKA_TRANSACTIONAL_ID).",
        ),
    ] = None,
    models_dir: Annotated[
        str | None,
        typer.Option(
            help="Model registry whose champion decides, picked up again within 30 s of a promotion: a "
            "folder or s3://bucket/prefix (FRAUDSTREAM_REGISTRY_DIR; default: FRAUDSTREAM_DATA_DIR/models, "
            "as the API keeps it).",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Decide with this model artifact directory instead (FRAUDSTREAM_MODEL_PATH)."),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(help="YAML rule set to decide with (FRAUDSTREAM_RULES_PATH; default: built-in)."),
    ] = None,
) -> None:
    """Join a consumer group and score its partitions of the transactions topic.

    Every option is a setting of `fraudstream config show` too, read from its FRAUDSTREAM_ variable
    when not given, as the API reads it: both fingerprint cards, name topics and decide alike.

    Example: `fraudstream worker --brokers localhost:9092 --group fraud-eu`
    (librdkafka properties such as SASL or TLS: a properties file in FRAUDSTREAM_KAFKA_CONFIG, or
    `--kafka-option security.protocol=SASL_SSL`, repeated)
    (add `--checkpoints postgresql+psycopg://fraud@db/fraud` or `--checkpoints s3://bucket/ckpt` when
    workers run on several machines)
    """
    from fraudstream.errors import FraudstreamError
    from fraudstream.logs import configure_logging
    from fraudstream.runtime.kafka.worker import Worker
    from fraudstream.runtime.kafka.worker_settings import worker_config

    settings = _settings(
        kafka_brokers=brokers,
        kafka_group=group,
        **topic_settings(topic, decisions_topic, alerts_topic, dlq_topic, labels_topic, kafka_option),
        kafka_control_topic=control_topic,
        checkpoint_dir=checkpoint_dir,
        checkpoint_url=checkpoints,
        s3_endpoint_url=s3_endpoint_url,
        worker_batch_size=batch_size,
        worker_max_wait_s=max_wait,
        checkpoint_interval_s=checkpoint_interval,
        card_key=card_key or None,
        worker_metrics_port=metrics_port,
        kafka_transactional_id=transactional_id or None,
        registry_dir=models_dir,
        model_path=model,
        rules_path=rules,
    )
    config = worker_config(settings, client_properties(settings))
    warm_first()
    configure_logging("auto")
    import signal

    try:
        member = Worker(config, settings.engine_config())
    except (OSError, FraudstreamError) as exc:
        console.print(f"[red]cannot start the worker:[/red] {exc}")
        raise typer.Exit(2) from None
    if settings.worker_metrics_port is not None:
        from fraudstream.runtime.kafka.ops import serve_operations

        serve_operations(member, settings.worker_metrics_port)
    # SIGTERM: finish the batch in hand, checkpoint, commit, leave the group.
    signal.signal(signal.SIGTERM, lambda *_: member.stop())
    signal.signal(signal.SIGINT, lambda *_: member.stop())
    member.run()
