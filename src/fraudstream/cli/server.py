"""`fraudstream serve` and `fraudstream demo`: the API server, alone or with simulated traffic."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    kafka: Annotated[
        str | None, typer.Option(help="Kafka mode: produce transactions to this broker; workers score them.")
    ] = None,
    transactions_topic: TransactionsTopic = None,
    decisions_topic: DecisionsTopic = None,
    alerts_topic: AlertsTopic = None,
    dlq_topic: DlqTopic = None,
    labels_topic: LabelsTopic = None,
    kafka_option: KafkaOption = None,
) -> None:
    """Run the API server (engine + SQLite under FRAUDSTREAM_DATA_DIR).

    Example: `FRAUDSTREAM_CARD_KEY=... fraudstream serve --port 8000`
    """
    import uvicorn

    from fraudstream.api.app import create_app, ensure_port_free
    from fraudstream.api.server import server_config
    from fraudstream.logs import configure_logging
    from fraudstream.runtime.embedded.service import check_storage

    settings = _settings(
        host=host,
        port=port,
        kafka_brokers=kafka,
        **topic_settings(
            transactions_topic, decisions_topic, alerts_topic, dlq_topic, labels_topic, kafka_option
        ),
    )
    if settings.kafka_brokers:
        client_properties(settings)  # a bad properties file: one line now, not a traceback at start
    ensure_port_free(settings.host, settings.port)
    check_storage(settings)  # one line now, rather than a traceback from the app's start
    warm_first()
    _champion_or_exit(settings)
    configure_logging(settings.log_format)
    uvicorn.Server(server_config(create_app(settings), settings)).run()


def _champion_or_exit(settings: Any) -> None:
    """Stop with one line when the champion cannot decide on this server (trained for another label
    delay or feature set), rather than with a traceback from the server's start."""
    from fraudstream.core.engine import Engine
    from fraudstream.errors import ModelError
    from fraudstream.runtime.embedded.service import load_champion

    try:
        champion = load_champion(settings)
        if champion is not None:
            Engine(settings.engine_config()).set_model(champion)
    except ModelError as exc:
        console.print(f"[red]error:[/red] the champion cannot be served: {exc}")
        raise typer.Exit(2) from None


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    rate: Annotated[
        float,
        typer.Option(
            help="Simulated transactions per second. The demo world has 1,500 people: the faster the "
            "traffic, the more often each of them pays, and the more of it velocity rules flag "
            "(about 2% of decisions are alerts at 20/s, 8-10% at 50/s, ~40% at 200/s)."
        ),
    ] = 20.0,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its database.")] = Path("data/demo"),
) -> None:
    """Start the whole system with live simulated traffic and fraud scenarios.

    Example: `fraudstream demo --rate 30`, then open http://127.0.0.1:8000
    """
    console.print("starting the demo: loading the engine", highlight=False)
    from fraudstream.cli.progress import steps
    from fraudstream.demo import check_demo, run_demo, train_demo_models

    settings = _settings(demo=True, port=port, data_dir=data_dir, snapshot_interval_s=10.0)
    check_demo(settings)
    warm_first()
    try:
        with steps() as shown:
            trained = train_demo_models(settings, shown)
    except Exception as exc:  # the demo goes on with the rules alone deciding
        console.print(f"[red]demo models not trained:[/red] {exc!r}; the rules alone decide", highlight=False)
    else:
        if trained is not None:
            console.print(trained, highlight=False)
    run_demo(settings, rate)
