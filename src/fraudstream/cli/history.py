"""`fraudstream train|evaluate|backtest`: models and rules replayed over history files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fraudstream.cli.app import app, console, out
from fraudstream.cli.inputs import (
    _LABEL_DELAY,
    _MODEL_LABEL_DELAY,
    _DataFromOption,
    _DataToOption,
    _duration_ms,
    _history_or_exit,
    _LabelsOption,
    _MaxInvalidOption,
    _model_delay,
    _registry,
    _RegistryOption,
    _time_ms,
    _TimezoneOption,
)

_DATA_HELP = (
    "History as CSV or Parquet with an is_fraud column, or a data lake (a folder, or "
    "s3://bucket/prefix, that FRAUDSTREAM_LAKE_URL filled) with --labels."
)


@app.command()
def train(
    data: Annotated[str, typer.Option(help=_DATA_HELP)],
    model: Annotated[
        str, typer.Option(help="lightgbm, isolation_forest, random_forest or logistic.")
    ] = "lightgbm",
    train_from: Annotated[
        str | None, typer.Option(help="First transaction time to train on (RFC 3339).")
    ] = None,
    train_to: Annotated[
        str | None, typer.Option(help="End of the training window; later rows are the holdout.")
    ] = None,
    label_delay: Annotated[str, _LABEL_DELAY] = "0s",
    map_: Annotated[
        str | None, typer.Option("--map", help="Column mapping: user_id=CUSTOMER_ID,amount=TX_AMOUNT")
    ] = None,
    registry: _RegistryOption = None,
    promote: Annotated[bool, typer.Option(help="Make the new model the champion.")] = False,
    timezone: _TimezoneOption = None,
    max_invalid: _MaxInvalidOption = "1%",
    labels: _LabelsOption = None,
    data_from: _DataFromOption = None,
    data_to: _DataToOption = None,
) -> None:
    """Train a model on history replayed through the engine, evaluate it on the holdout, register it.

    Example, on the week `fraudstream simulate` writes by default (from 2026-01-01):
    `fraudstream train --data sim.parquet --train-to 2026-01-06T00:00:00+00:00 --label-delay 1d --promote`

    From the data lake a server writes (FRAUDSTREAM_LAKE_URL), with the labels of its transactions:
    `fraudstream train --data s3://datalake --labels labels.parquet --label-delay 1d --promote`
    """
    from fraudstream.errors import FraudstreamError
    from fraudstream.ml.train import train_and_register

    try:
        history = _history_or_exit(
            data, map_, timezone, max_invalid, labels=labels, data_from=data_from, data_to=data_to
        )
        delay = _duration_ms(label_delay)
        console.print(f"replaying {len(history.batch):,} transactions through the engine ...")
        store = _registry(registry)
        # Training replays only the feature state (what the model learns from), not whole decisions.
        trained, summary, report, path = train_and_register(
            history,
            model,
            store,
            label_delay_ms=delay,
            train_from_ms=_time_ms(train_from),
            train_to_ms=_time_ms(train_to),
        )
    except (OSError, ValueError, FraudstreamError) as exc:
        console.print(f"[red]cannot train:[/red] {exc}")
        raise typer.Exit(2) from None
    missed, known = summary["frauds_not_yet_reported"], summary["training_frauds"]
    if missed > known:
        console.print(
            f"[yellow]warning:[/] {missed:,} of the {missed + known:,} frauds among the training rows "
            "were not reported by the end of the window (their label_time is later or empty), so the "
            "model learnt them as legitimate. A longer label delay (--label-delay or "
            f"FRAUDSTREAM_LABEL_DELAY, now {label_delay}) trains on older rows whose labels are in."
        )
    _print_evaluation(report)
    headline = {k: v for k, v in report.items() if k != "threshold_table"}
    out.print_json(
        json.dumps({"version": trained.metadata.version, "path": str(path), **summary, **headline})
    )
    if promote:
        store.promote(trained.metadata.version)
        console.print(f"{trained.metadata.version} is now the champion")


@app.command()
def evaluate(
    data: Annotated[str, typer.Option(help=_DATA_HELP)],
    model: Annotated[
        str, typer.Option(help="Version id, champion, latest, or rules (rules only).")
    ] = "champion",
    from_: Annotated[
        str | None, typer.Option("--from", help="Start of the evaluation window (RFC 3339).")
    ] = None,
    to: Annotated[str | None, typer.Option(help="End of the evaluation window (RFC 3339).")] = None,
    label_delay: Annotated[str | None, _MODEL_LABEL_DELAY] = None,
    map_: Annotated[str | None, typer.Option("--map", help="Column mapping: user_id=CUSTOMER_ID,...")] = None,
    registry: _RegistryOption = None,
    output: Annotated[
        Path | None, typer.Option(help="Write one row per evaluated transaction (.parquet).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write report.json and report.html with charts here.")
    ] = None,
    timezone: _TimezoneOption = None,
    max_invalid: _MaxInvalidOption = "1%",
    labels: _LabelsOption = None,
    data_from: _DataFromOption = None,
    data_to: _DataToOption = None,
) -> None:
    """Replay a history file through the engine and report fraud metrics on a time window.

    Example: `fraudstream evaluate --data sim.parquet --model champion --from 2026-01-05T00:00:00+00:00`
    """
    from fraudstream.core.engine import EngineConfig
    from fraudstream.ml.train import evaluate as measure

    history = _history_or_exit(
        data, map_, timezone, max_invalid, labels=labels, data_from=data_from, data_to=data_to
    )
    chosen = (
        None if model == "rules" else _registry(registry).load(model, EngineConfig().features.feature_names)
    )
    label_delay = _model_delay(chosen, label_delay)
    metrics, replayed, rows = measure(
        history, chosen, from_ms=_time_ms(from_), to_ms=_time_ms(to), label_delay_ms=_duration_ms(label_delay)
    )
    _print_evaluation(metrics)
    out.print_json(json.dumps(metrics))
    if report is not None:
        from fraudstream.core.policy import REVIEW
        from fraudstream.ml.report import write_report

        probability = replayed.probability[rows] if chosen is not None else replayed.score[rows] / 100.0
        flagged = replayed.decision[rows] >= REVIEW
        day = history.batch.timestamp_ms[rows] // 86_400_000
        paths = write_report(metrics, history.is_fraud[rows], probability, flagged, day, report)
        console.print(f"wrote {paths[0]} and {paths[1]}")
    if output is not None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from fraudstream.core.policy import DECISIONS

        pq.write_table(
            pa.table(
                {
                    "transaction_id": history.batch.transaction_id.filter(pa.array(rows)),
                    "probability": replayed.probability[rows],
                    "score": replayed.score[rows],
                    "decision": [DECISIONS[c] for c in replayed.decision[rows].tolist()],
                    "rules": [",".join(r) for r, keep in zip(replayed.rules, rows.tolist()) if keep],
                    "reasons": [r for r, keep in zip(replayed.reasons, rows.tolist()) if keep],
                    "is_fraud": history.is_fraud[rows],
                }
            ),
            output,
        )
        console.print(f"wrote {int(rows.sum())} scored transactions to {output}")


def _print_evaluation(metrics: dict[str, Any]) -> None:
    """What an evaluation shows and its threshold table, for a person (stderr; the JSON goes to stdout)."""
    console.print(
        f"model [bold]{metrics['model']}[/] on data {metrics['data']}, "
        f"{metrics['transactions']:,} transactions ({metrics['frauds']:,} frauds) "
        f"from {metrics['window_from']} to {metrics['window_to']}, "
        f"label delay {metrics['label_delay']}: ROC AUC {metrics['roc_auc']}, "
        f"average precision {metrics['average_precision']}"
    )
    table = Table(
        "score ≥",
        "flagged",
        "share",
        "per day",
        "frauds",
        "precision",
        "recall",
        "fraud amount",
        title="Choosing a threshold: what flagging at or above each score catches",
    )
    for row in metrics["threshold_table"]:
        table.add_row(
            f"{row['threshold']:g}",
            f"{row['flagged']:,}",
            f"{row['review_rate']:.2%}",
            f"{row['flagged_per_day']:,.1f}",
            f"{row['frauds_caught']:,}",
            f"{row['precision']:.3f}",
            f"{row['recall']:.3f}",
            f"{row['fraud_amount_caught_share']:.1%}",
        )
    console.print(table)


@app.command()
def backtest(
    rules: Annotated[Path, typer.Option(help="Candidate rule set (YAML).")],
    data: Annotated[str, typer.Option(help=_DATA_HELP)],
    current: Annotated[
        Path | None, typer.Option(help="Rule set to compare with (default: the built-in).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model version, champion or latest (default: rules only).")
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Count results from this time on (RFC 3339).")
    ] = None,
    label_delay: Annotated[str | None, _MODEL_LABEL_DELAY] = None,
    map_: Annotated[str | None, typer.Option("--map", help="Column mapping: user_id=CUSTOMER_ID,...")] = None,
    registry: _RegistryOption = None,
    timezone: _TimezoneOption = None,
    max_invalid: _MaxInvalidOption = "1%",
    labels: _LabelsOption = None,
    data_from: _DataFromOption = None,
    data_to: _DataToOption = None,
) -> None:
    """Replay history with a candidate rule set and compare it, rule by rule, with the current one.

    Example: `fraudstream backtest --rules candidate.yaml --data sim.parquet`
    """
    from fraudstream.core.engine import EngineConfig, default_names, default_ruleset
    from fraudstream.core.rules import load_ruleset
    from fraudstream.ml.backtest import backtest as run

    config = EngineConfig()
    names = default_names(config.features)
    candidate = load_ruleset(rules.read_text(encoding="utf-8"), names)
    baseline = load_ruleset(current.read_text(encoding="utf-8"), names) if current else default_ruleset()
    history = _history_or_exit(
        data, map_, timezone, max_invalid, labels=labels, data_from=data_from, data_to=data_to
    )
    chosen = None if model is None else _registry(registry).load(model, config.features.feature_names)
    delay, start = _duration_ms(_model_delay(chosen, label_delay)), _time_ms(from_)
    results = {
        "current": run(history, baseline, model=chosen, label_delay_ms=delay, from_ms=start),
        "candidate": run(history, candidate, model=chosen, label_delay_ms=delay, from_ms=start),
    }
    table = Table("policy", "current", "candidate", title="the policy as a whole")
    for metric in (
        "recall_at_threshold",
        "precision_at_threshold",
        "legit_flagged_share",
        "fraud_amount_caught_share",
        "reviews_per_day",
    ):
        table.add_row(
            metric, str(results["current"]["policy"][metric]), str(results["candidate"]["policy"][metric])
        )
    out.print(table)
    per_rule = Table(
        "rule", "hits", "precision", "recall", "fraud money", "alerts/day", title="candidate rules"
    )
    for code, row in results["candidate"]["rules"].items():
        name = f"{code} (shadow)" if row["shadow"] else code
        per_rule.add_row(
            name,
            str(row["hits"]),
            str(row["precision"]),
            str(row["recall"]),
            f"{row['fraud_amount_caught']:,.2f}",
            str(row["alerts_per_day"]),
        )
    out.print(per_rule)
