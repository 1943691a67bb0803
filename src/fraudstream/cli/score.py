"""`fraudstream score`: decide on transactions from a file."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fraudstream.cli.app import _settings, app, console, out
from fraudstream.cli.inputs import (
    _checked_or_exit,
    _config_error_exit,
    _DataFromOption,
    _DataToOption,
    _MaxInvalidOption,
    _read_or_exit,
    _registry,
    _RegistryOption,
    _TimezoneOption,
)
from fraudstream.cli.progress import steps
from fraudstream.cli.results import print_json


@app.command()
def score(
    source: Annotated[
        str,
        typer.Argument(
            help="JSON, JSONL, CSV or Parquet file, - for stdin, or a data lake (a folder, or "
            "s3://bucket/prefix, that FRAUDSTREAM_LAKE_URL filled): its transactions in log order."
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write decisions (.jsonl/.csv/.parquet).")
    ] = None,
    card_key: Annotated[
        str | None,
        typer.Option(
            envvar="FRAUDSTREAM_CARD_KEY",
            help="Card fingerprint key, the server's (required outside demo mode, FRAUDSTREAM_DEMO=1).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model version, champion, latest, or none for the rules alone (default: the model the "
            "server decides with: FRAUDSTREAM_MODEL_PATH, else the registry's champion, if any)."
        ),
    ] = None,
    registry: _RegistryOption = None,
    timezone: _TimezoneOption = None,
    max_invalid: _MaxInvalidOption = "1%",
    data_from: _DataFromOption = None,
    data_to: _DataToOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object on stdout, for scripts: the counts by decision, and the decisions "
            "themselves unless --output takes them.",
        ),
    ] = False,
) -> None:
    """Score transactions from a file with the engine, in file order (nothing is stored).

    Example: `fraudstream score transactions.jsonl -o decisions.parquet`
    """
    from fraudstream.core.engine import EngineConfig
    from fraudstream.core.policy import DECISIONS
    from fraudstream.core.schema import Validator
    from fraudstream.errors import ConfigError
    from fraudstream.ml.dataset import validate_file
    from fraudstream.ml.scoring import decide_in_order
    from fraudstream.offline import serving_model
    from fraudstream.reference import load_reference

    if output is not None and output.suffix not in (".jsonl", ".csv", ".parquet"):
        raise typer.BadParameter(f"{output}: write .jsonl, .csv or .parquet", param_hint="--output")
    if model is None:
        chosen = serving_model(_settings(demo=True), registry)
    else:
        names = EngineConfig().features.feature_names
        chosen = None if model == "none" else _registry(registry).load(model, names)
    console.print(f"deciding with {f'model {chosen.metadata.version}' if chosen else 'the rules alone'}")
    # The server's key, so that fingerprints match what it stores: like `serve`, no card key is an
    # error outside demo mode (FRAUDSTREAM_DEMO=1 takes the demo key).
    key = card_key.encode() if card_key else _settings().card_key_bytes
    validator = Validator(load_reference(), key)
    name = "stdin" if source == "-" else source
    with steps(f"reading {name}") as progress:
        data = _read_or_exit(source, data_from, data_to)
        progress(f"checking {len(data):,} transactions", 0, 0)
        now = int(time.time() * 1000)
        try:
            result, reading = validate_file(validator, data, name, received_at_ms=now, timezone=timezone)
        except ConfigError as exc:
            raise _config_error_exit(exc) from None
        for error in result.errors[:20]:
            console.print(
                f"[yellow]row {error.index} skipped[/yellow]: " + "; ".join(e.message for e in error.errors)
            )
        _checked_or_exit(reading, max_invalid)
        records: list[dict[str, Any]] = []
        total = len(result.batch)
        progress("scoring", 0, total)
        for part in decide_in_order(result.batch, chosen):  # one call per batch of thousands
            records += part.to_records()
            progress("scoring", len(records), total)
        if output is not None:
            progress(f"writing {output}", 0, 0)
            _write(records, output)
    counts = Counter(record["decision"] for record in records)
    summary = {
        "source": name,
        "model": chosen.metadata.version if chosen else None,
        "scored": len(records),
        "invalid": len(result.errors),
        "decisions": {decision: counts.get(decision, 0) for decision in DECISIONS},
        "output": str(output) if output is not None else None,
    }
    if as_json:
        print_json(summary if output is not None else {**summary, "records": records})
        return
    if output is None:
        _print_decisions(records)
    else:
        console.print(f"wrote {len(records):,} decisions to {output}", highlight=False)
    mix = ", ".join(f"{counts.get(d, 0):,} {d}" for d in DECISIONS)
    console.print(f"{len(records):,} scored, {len(result.errors):,} invalid: {mix}", highlight=False)


#: Rows of decisions printed in a terminal; more go to a file (--output) or to --json.
SHOWN = 200


def _print_decisions(records: list[dict[str, Any]]) -> None:
    """The first decisions as a table, transaction ids whole."""
    table = Table(title=f"first {SHOWN} of {len(records):,}" if len(records) > SHOWN else None)
    table.add_column(
        "transaction",
        no_wrap=True,
        min_width=min(40, max((len(str(r["transaction_id"])) for r in records[:SHOWN]), default=11)),
    )
    table.add_column("decision")
    table.add_column("score", justify="right")
    table.add_column("reasons", overflow="fold")
    for record in records[:SHOWN]:
        reasons = "; ".join(r["text"] for r in record["reasons"][:2])
        table.add_row(str(record["transaction_id"]), record["decision"], str(record["score"]), reasons)
    out.print(table)


def _write(records: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa  # here, not at the top: `fraudstream --help` need not load Arrow

    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return
    flat = [
        {
            **r,
            "reasons": json.dumps(r["reasons"]),
            "rules": ",".join(r["rules"]),
            "shadow_rules": ",".join(r["shadow_rules"]),
        }
        for r in records
    ]
    table = pa.Table.from_pylist(flat)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        import pyarrow.csv as pv

        pv.write_csv(table, path)
