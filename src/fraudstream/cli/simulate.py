"""`fraudstream simulate`: labelled traffic to a file or a running server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fraudstream.cli.app import _settings, app, console, out
from fraudstream.cli.inputs import _duration_ms
from fraudstream.cli.kafka import KafkaOption, client_properties, topic_settings

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
    table = _generate(config, names, background)
    if to.startswith(("http://", "https://")):
        sent = _send_or_exit(table.drop_columns(["is_fraud", "fraud_scenario"]), to, rate, api_key)
        console.print(f"sent {sent} transactions to {to}")
    elif to.startswith("kafka://"):
        from fraudstream.sim.output import send_kafka

        settings = _settings(
            store_only=True, **topic_settings(transactions_topic, None, None, None, None, kafka_option)
        )
        sent = send_kafka(
            table.drop_columns(["is_fraud", "fraud_scenario"]),
            to,
            rate,
            default_topic=settings.kafka_topic,
            properties=client_properties(settings),
        )
        console.print(f"produced {sent} transactions to {to}")
    else:
        write_table(with_label_times(table, config), Path(to))
        console.print(f"wrote {table.num_rows} transactions to {to}")
    if labels is not None:
        write_table(labels_for(table, config), labels)
        console.print(f"wrote label events to {labels}")


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


def _generate(config: SimulationConfig, names: list[str], background: bool) -> pa.Table:
    """The full simulation, or only the named scenarios (alone, or as the only fraud of the
    legitimate traffic with ``background``)."""
    from fraudstream.sim.generator import simulate, simulate_scenarios

    if not names:
        return simulate(config)
    if background:
        return simulate(replace(config, scenario_weights=dict.fromkeys(names, 1.0)))
    return simulate_scenarios(config, names)


def _send_or_exit(table: pa.Table, url: str, rate: float, api_key: str | None) -> int:
    """``send_http``, or one line saying which status and words the server refused a batch with."""
    import httpx

    from fraudstream.sim.output import send_http
    from fraudstream.sim.testclient import error_detail

    try:
        return send_http(table, url, rate, api_key=api_key)
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        console.print(f"[red]{url} refused a batch with {status}[/red]: {error_detail(exc.response)}")
        raise typer.Exit(1) from None
