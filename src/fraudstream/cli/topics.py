"""`fraudstream topics create`: the Kafka topics."""

from __future__ import annotations

from typing import Annotated

import typer

from fraudstream.cli.app import app, out

topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")


@topics_app.command("create")
def topics_create(
    brokers: Annotated[str, typer.Option(envvar="FRAUDSTREAM_KAFKA_BROKERS", help="host:port of a broker.")],
    partitions: Annotated[
        int, typer.Option(help="Partitions of the transactions topic (= most workers).")
    ] = 8,
) -> None:
    """Create the topics fraudstream uses (existing ones are left alone).

    Example: `fraudstream topics create --brokers localhost:9092 --partitions 12`
    """
    from fraudstream.runtime.kafka.topics import create_topics

    created = create_topics(brokers, partitions)
    out.print(f"created: {', '.join(created) or 'nothing (all exist)'}")
