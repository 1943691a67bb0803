"""`fraudstream simulate`: labelled traffic to a file or a running server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fraudstream.cli.app import _settings, app, console, out
from fraudstream.cli.inputs import _duration_ms
from fraudstream.cli.kafka import KafkaOption, client_properties, topic_settings
from fraudstream.cli.progress import Steps, steps
from fraudstream.cli.results import print_json

if TYPE_CHECKING:
    import pyarrow as pa

    from fraudstream.sim.generator import SimulationConfig

#: The scenarios --help names, without importing the simulator (NumPy) for every command; a test
#: keeps them equal to `fraudstream.sim.scenarios.SCENARIOS`.
SCENARIO_HELP = (
    "large_amount, rapid_burst, location_jump, card_testing, account_takeover, compromised_terminal, "
    "compromised_card, hacker, low_and_slow, gift_card_ring"
)


@app.command()
def simulate(
    count: Annotated[int, typer.Option(help="How many transactions.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Same seed, same traffic.")] = 7,
    fraud_rate: Annotated[float, typer.Option(help="Share of fraudulent transactions.")] = 0.01,
    days: Annotated[float, typer.Option(help="Time span of the traffic, in days.")] = 7.0,
    duration: Annotated[
        str | None, typer.Option(help="Time span as a duration (30m, 12h, 7d); wins over --days.")
    ] = None,
    to: Annotated[
        str,
        typer.Option(help="Output: a .parquet/.csv/.jsonl file, http://host:port or kafka://host:port/topic"),
    ] = "sim.parquet",
    labels: Annotated[
        Path | None,
        typer.Option(help="Also write label events (reported frauds, when reported) to this file."),
    ] = None,
    rate: Annotated[
        float,
        typer.Option(help="With --to http or kafka: transactions per second (0 = as fast as possible)."),
    ] = 0,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="Only this fraud scenario's events (repeat it or separate names with commas), --count "
            "of them shared evenly, labelled as usual; --fraud-rate does not apply. Scenarios: "
            + SCENARIO_HELP
            + ".",
        ),
    ] = None,
    background: Annotated[
        bool,
        typer.Option(
            help="With --scenario: keep the legitimate traffic too, with the named scenarios as its only "
            "fraud (at --fraud-rate). Off by default: only the scenarios' events are sent."
        ),
    ] = False,
    test: Annotated[
        str | None,
        typer.Option(help="Send a test scenario to --to (a URL): large, rapid, location, random or all."),
    ] = None,
    delay: Annotated[float, typer.Option(help="With --test random: seconds between transactions.")] = 1.0,
    health: Annotated[bool, typer.Option(help="With --test: check the server's health first.")] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="FRAUDSTREAM_API_KEY",
            help="With --to http: the API key to send as X-API-Key (a server outside demo mode requires "
            "one with the ingest, analyst or admin role).",
        ),
    ] = None,
    transactions_topic: Annotated[
        str | None,
        typer.Option(
            help="With --to kafka://host:port (no topic in the URL): the topic to produce to "
            "(FRAUDSTREAM_KAFKA_TOPIC; default transactions)."
        ),
    ] = None,
    kafka_option: KafkaOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (what was made and where it went).")
    ] = False,
) -> None:
    """Generate labelled traffic with fraud scenarios, to a file or a running server.

    A file also gets label_time: when each fraud was reported (days to weeks later; empty if never).

    Example: `fraudstream simulate --count 100000 --to sim.parquet --labels labels.parquet`

    One scenario alone, as seed 003's hacker producer sends it: `fraudstream simulate --scenario hacker
    --count 500 --rate 2 --to kafka://localhost:9092/raw_transactions` (or --to http://127.0.0.1:8000,
    or a file).

    Test client: `fraudstream simulate --test all --to http://127.0.0.1:8000 --health` sends the large,
    rapid and location scenarios (and --count random ones) and exits 1 if an expected alert is missing
    or the server refused a request (each refusal is printed with its status and the server's words).
    """
    if test is not None:
        from fraudstream.sim.testclient import SCENARIO_TESTS, run_tests

        url = to if to.startswith("http") else "http://127.0.0.1:8000"
        chosen = [*SCENARIO_TESTS, "random"] if test == "all" else [test]
        if not set(chosen) <= {*SCENARIO_TESTS, "random"}:
            console.print(f"[red]--test {test}[/red]: choose large, rapid, location, random or all")
            raise typer.Exit(2)
        random_count = count if count != 10_000 else 10
        pause = delay if test == "random" else 0.0
        passed = run_tests(url, chosen, random_count, pause, health, out.print, api_key=api_key)
        raise typer.Exit(0 if passed else 1)
    from fraudstream.sim.generator import SimulationConfig, labels_for, with_label_times
    from fraudstream.sim.output import OUTPUT_FORMATS, writable, write_table

    names = _scenario_names(scenario or [])

    for name, target in (("--to", to), ("--labels", labels)):
        is_file = target is not None and not str(target).startswith(("http://", "https://", "kafka://"))
        if is_file and not writable(Path(str(target))):
            raise typer.BadParameter(f"{target}: {OUTPUT_FORMATS}", param_hint=name)
    span = _duration_ms(duration) if duration else int(days * 86_400_000)
    config = SimulationConfig(count=count, seed=seed, fraud_rate=fraud_rate, duration_ms=span)
    label_events = None
    with steps() as progress:
        table = _generate(config, names, background, progress)
        if to.startswith(("http://", "https://")):
            sent = _send_or_exit(
                table.drop_columns(["is_fraud", "fraud_scenario"]), to, rate, api_key, progress
            )
            done = f"sent {sent:,} transactions to {to}"
        elif to.startswith("kafka://"):
            from fraudstream.sim.output import send_kafka

            settings = _settings(
                store_only=True, **topic_settings(transactions_topic, None, None, None, None, kafka_option)
            )
            progress(f"connecting to {to}", 0, 0)
            sent = send_kafka(
                table.drop_columns(["is_fraud", "fraud_scenario"]),
                to,
                rate,
                default_topic=settings.kafka_topic,
                properties=client_properties(settings),
                progress=progress,
            )
            done = f"produced {sent:,} transactions to {to}"
        else:
            progress(f"writing {to}", 0, 0)
            write_table(with_label_times(table, config), Path(to))
            done = f"wrote {table.num_rows:,} transactions to {to}"
        if labels is not None:
            progress(f"writing {labels}", 0, 0)
            events = labels_for(table, config)
            write_table(events, labels)
            label_events = events.num_rows
    console.print(done, highlight=False)
    if labels is not None:
        console.print(f"wrote {label_events:,} label events to {labels}", highlight=False)
    made = _made(table)
    if as_json:
        print_json(
            {
                **made,
                "to": to,
                "labels": str(labels) if labels is not None else None,
                "label_events": label_events,
                "seed": seed,
                "start": _iso(config.start_ms),
                "end": _iso(config.start_ms + config.duration_ms),
            }
        )
        return
    _print_made(made)


def _made(table: pa.Table) -> dict[str, Any]:
    """What a simulation made: how many transactions and frauds, and the frauds of each scenario."""
    import pyarrow.compute as pc

    frauds = table.filter(table.column("is_fraud"))
    by_scenario = pc.value_counts(frauds.column("fraud_scenario")).to_pylist() if frauds.num_rows else []
    return {
        "transactions": table.num_rows,
        "frauds": frauds.num_rows,
        "by_scenario": {
            row["values"]: row["counts"] for row in sorted(by_scenario, key=lambda r: r["values"])
        },
    }


def _print_made(made: dict[str, Any]) -> None:
    share = made["frauds"] / made["transactions"] if made["transactions"] else 0.0
    out.print(
        f"{made['transactions']:,} transactions, {made['frauds']:,} frauds ({share:.2%})", highlight=False
    )
    table = Table("scenario", "frauds")
    table.columns[1].justify = "right"
    for name, frauds in made["by_scenario"].items():
        table.add_row(name, f"{frauds:,}")
    out.print(table)


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _scenario_names(values: list[str]) -> list[str]:
    """The scenarios named by --scenario (repeated or comma-separated), or one line naming the known
    ones and exit 2."""
    from fraudstream.sim.scenarios import SCENARIOS

    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        console.print(
            f"[red]--scenario {', '.join(unknown)}[/red]: unknown; choose from {', '.join(SCENARIOS)}",
            highlight=False,
        )
        raise typer.Exit(2)
    return list(dict.fromkeys(names))


def _generate(config: SimulationConfig, names: list[str], background: bool, progress: Steps) -> pa.Table:
    """The full simulation, or only the named scenarios (alone, or as the only fraud of the
    legitimate traffic with ``background``)."""
    from fraudstream.sim.generator import simulate, simulate_scenarios

    if not names:
        return simulate(config, progress)
    if background:
        return simulate(replace(config, scenario_weights=dict.fromkeys(names, 1.0)), progress)
    progress(f"simulating {', '.join(names)}", 0, 0)
    return simulate_scenarios(config, names)


def _send_or_exit(table: pa.Table, url: str, rate: float, api_key: str | None, progress: Steps) -> int:
    """``send_http``, or one line saying which status and words the server refused a batch with."""
    import httpx

    from fraudstream.sim.output import send_http
    from fraudstream.sim.testclient import error_detail

    try:
        return send_http(table, url, rate, api_key=api_key, progress=progress)
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        console.print(f"[red]{url} refused a batch with {status}[/red]: {error_detail(exc.response)}")
        raise typer.Exit(1) from None
