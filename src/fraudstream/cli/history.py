"""`fraudstream train|evaluate|backtest`: models and rules replayed over history files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from fraudstream.cli.app import app, console, out
from fraudstream.cli.inputs import (
    _LABEL_DELAY,
    _MODEL_LABEL_DELAY,
    _DataFromOption,
    _DataToOption,
    _duration_ms,
    _engine_base,
    _FeaturesOption,
    _history_or_exit,
    _LabelsOption,
    _MaxInvalidOption,
    _model_delay,
    _registry,
    _RegistryOption,
    _time_ms,
    _TimezoneOption,
)
from fraudstream.cli.progress import Report, steps
from fraudstream.cli.results import print_json

_JSON = typer.Option("--json", help="One JSON object on stdout, for scripts (progress stays on stderr).")

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
    as_json: Annotated[bool, _JSON] = False,
    features: _FeaturesOption = None,
) -> None:
    """Train a model on history replayed through the engine, evaluate it on the holdout, register it.

    Example, on the week `fraudstream simulate` writes by default (from 2026-01-01):
    `fraudstream train --data sim.parquet --train-to 2026-01-06T00:00:00+00:00 --label-delay 1d --promote`

    From the data lake a server writes (FRAUDSTREAM_LAKE_URL), with the labels of its transactions:
    `fraudstream train --data s3://datalake --labels labels.parquet --label-delay 1d --promote`
    """
    from fraudstream.errors import FraudstreamError
    from fraudstream.ml.train import train_and_register

    base = _engine_base(features)
    try:
        with steps(f"reading {data}") as progress:
            history = _history_or_exit(
                data, map_, timezone, max_invalid, labels=labels, data_from=data_from, data_to=data_to
            )
            delay = _duration_ms(label_delay)
            store = _registry(registry)
            # Training replays only the feature state (what the model learns from), not whole decisions.
            trained, summary, report, path = train_and_register(
                history,
                model,
                store,
                label_delay_ms=delay,
                train_from_ms=_time_ms(train_from),
                train_to_ms=_time_ms(train_to),
                progress=progress,
                config=base,
            )
            if promote:
                progress("promoting", 0, 0)
                store.promote(trained.metadata.version)
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
    version = trained.metadata.version
    if as_json:
        headline = {k: v for k, v in report.items() if k != "threshold_table"}
        print_json({"version": version, "path": str(path), "champion": promote, **summary, **headline})
        return
    table = Table(show_header=False, title=f"model {version}", title_justify="left")
    table.add_column(no_wrap=True)
    # The version id whole on one line, as `models promote` takes it: the other values fold first.
    table.add_column(overflow="fold", min_width=len(version) + len(" (champion)"))
    table.add_row("version", f"[bold]{version}[/bold]" + (" (champion)" if promote else ""))
    table.add_row("kind", trained.metadata.kind)
    table.add_row("stored in", str(path))
    table.add_row("training rows", f"{summary['training_rows']:,}")
    table.add_row("training frauds", f"{summary['training_frauds']:,} (labels known by the window's end)")
    table.add_row("frauds not yet reported", f"{summary['frauds_not_yet_reported']:,}")
    table.add_row("label delay", label_delay)
    out.print(table)
    _print_evaluation(report, "on the holdout")
    if not promote:
        console.print(f"make it the champion: fraudstream models promote {version}", highlight=False)


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
    as_json: Annotated[bool, _JSON] = False,
    features: _FeaturesOption = None,
) -> None:
    """Replay a history file through the engine and report fraud metrics on a time window.

    Example: `fraudstream evaluate --data sim.parquet --model champion --from 2026-01-05T00:00:00+00:00`
    """
    from fraudstream.ml.train import engine_config
    from fraudstream.ml.train import evaluate as measure

    base = _engine_base(features)
    with steps(f"reading {data}") as progress:
        history = _history_or_exit(
            data, map_, timezone, max_invalid, labels=labels, data_from=data_from, data_to=data_to
        )
        if model != "rules":
            progress(f"loading model {model}", 0, 0)
        chosen = None if model == "rules" else _registry(registry).load(model, base.features.feature_names)
        label_delay = _model_delay(chosen, label_delay)
        metrics, replayed, rows = measure(
            history,
            chosen,
            from_ms=_time_ms(from_),
            to_ms=_time_ms(to),
            label_delay_ms=_duration_ms(label_delay),
            config=engine_config(_duration_ms(label_delay), base),
            progress=progress,
        )
        written: tuple[Path, Path] | None = None
        if report is not None:
            progress(f"writing the report to {report}", 0, 0)
            written = _write_report(history, metrics, replayed, rows, chosen is not None, report)
        if output is not None:
            progress(f"writing {output}", 0, 0)
            _write_rows(history, replayed, rows, output)
    if as_json:
        print_json(metrics)
    else:
        _print_evaluation(metrics, "")
    if written is not None:
        console.print(f"wrote {written[0]} and {written[1]}", highlight=False)
    if output is not None:
        console.print(f"wrote {int(rows.sum()):,} scored transactions to {output}", highlight=False)


def _write_report(
    history: Any, metrics: dict[str, Any], replayed: Any, rows: Any, has_model: bool, folder: Path
) -> tuple[Path, Path]:
    """report.json and report.html (with charts) of an evaluation, in ``folder``."""
    from fraudstream.core.policy import REVIEW
    from fraudstream.ml.report import write_report

    probability = replayed.probability[rows] if has_model else replayed.score[rows] / 100.0
    flagged = replayed.decision[rows] >= REVIEW
    day = history.batch.timestamp_ms[rows] // 86_400_000
    return write_report(metrics, history.is_fraud[rows], probability, flagged, day, folder)


def _write_rows(history: Any, replayed: Any, rows: Any, output: Path) -> None:
    """One row per evaluated transaction, with its decision, score, rules and reasons (.parquet)."""
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


def _print_evaluation(metrics: dict[str, Any], where: str) -> None:
    """An evaluation for a person: what it shows, its headline figures, the threshold table and, for
    simulated data, recall by scenario."""
    window = f"{metrics['window_from']} to {metrics['window_to']}"
    title = f"model {metrics['model']} {where}".replace("  ", " ").strip()
    table = Table(show_header=False, title=title, title_justify="left")
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("data", str(metrics["data"]))
    table.add_row("window", window)
    table.add_row("label delay", str(metrics["label_delay"]))
    table.add_row("transactions", f"{metrics['transactions']:,} ({metrics['frauds']:,} frauds)")
    table.add_row(
        "flagged (review or decline)",
        f"{metrics['flagged']:,} ({metrics['frauds_flagged']:,} frauds), "
        f"{metrics['reviews_per_day']:,.1f} a day",
    )
    for name, label in (
        ("roc_auc", "ROC AUC"),
        ("average_precision", "average precision"),
        ("precision_at_threshold", "precision of flags"),
        ("recall_at_threshold", "recall of frauds flagged"),
        ("recall_at_1pct_fpr", "recall at 1% false positives"),
        ("precision_at_100_per_day", "precision@100 per day"),
        ("user_precision_at_100_per_day", "card (user) precision@100 per day"),
    ):
        table.add_row(label, _figure(metrics.get(name)))
    table.add_row("legitimate traffic flagged", _share(metrics["legit_flagged_share"], 3))
    table.add_row("fraud amount caught", _share(metrics["fraud_amount_caught_share"], 1))
    out.print(table)
    thresholds = Table(
        "score ≥",
        "flagged",
        "share",
        "per day",
        "frauds",
        "precision",
        "recall",
        "fraud amount",
        title="Choosing a threshold: what flagging at or above each score catches",
        title_justify="left",
    )
    for row in metrics["threshold_table"]:
        thresholds.add_row(
            f"{row['threshold']:g}",
            f"{row['flagged']:,}",
            f"{row['review_rate']:.2%}",
            f"{row['flagged_per_day']:,.1f}",
            f"{row['frauds_caught']:,}",
            _figure(row["precision"], 3),
            _figure(row["recall"], 3),
            _share(row["fraud_amount_caught_share"], 1),
        )
    out.print(thresholds)
    scenarios = metrics.get("recall_by_scenario")
    if scenarios:
        by_scenario = Table("scenario", "recall", title="Frauds flagged, by scenario", title_justify="left")
        for name, recall in scenarios.items():
            by_scenario.add_row(name, _figure(recall, 2))
        out.print(by_scenario)


def _figure(value: Any, places: int = 4) -> str:
    """A metric to ``places`` places; a dash where there is none (no fraud in the window, ...)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{places}f}"


def _share(value: Any, places: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{places}%}"


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
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Replay history with the current rule set and with a candidate, and compare them: the policy as
    a whole (alerts, declines, precision, recall, fraud money caught) side by side with the change,
    then rule by rule (added, removed, changed, and each one's hits).

    Example: `fraudstream rules show --yaml > candidate.yaml`, edit it, then
    `fraudstream backtest --rules candidate.yaml --data sim.parquet`
    """
    from fraudstream.core.engine import EngineConfig, default_names, default_ruleset
    from fraudstream.core.rules import load_ruleset
    from fraudstream.ml.backtest import backtest as run
    from fraudstream.ml.backtest import compare

    config = EngineConfig()
    names = default_names(config.features)
    candidate = load_ruleset(rules.read_text(encoding="utf-8"), names)
    baseline = load_ruleset(current.read_text(encoding="utf-8"), names) if current else default_ruleset()
    with steps(f"reading {data}") as progress:
        history = _history_or_exit(
            data, map_, timezone, max_invalid, labels=labels, data_from=data_from, data_to=data_to
        )
        chosen = None if model is None else _registry(registry).load(model, config.features.feature_names)
        delay, start = _duration_ms(_model_delay(chosen, label_delay)), _time_ms(from_)
        results = {
            side: run(
                history,
                ruleset,
                model=chosen,
                label_delay_ms=delay,
                from_ms=start,
                progress=_with_rules(progress, side),
            )
            for side, ruleset in (("current", baseline), ("candidate", candidate))
        }
    compared = compare(results["current"], results["candidate"], baseline, candidate)
    sides = {
        "current": {"rules": str(current) if current else "built-in", "version": baseline.version},
        "candidate": {"rules": str(rules), "version": candidate.version},
    }
    if as_json:
        print_json({**sides, "model": chosen.metadata.version if chosen else None, "from": from_, **compared})
        return
    _print_comparison(compared, sides)


def _with_rules(progress: Report, side: str) -> Report:
    """``progress`` with the replay named by the rule set it uses."""

    def named(step: str, done: int, total: int) -> None:
        progress(f"{step} with the {side} rules", done, total)

    return named


#: How the comparison shows each figure of the policy: its label and its kind (count, share, money,
#: per day, or a ratio to three places).
_POLICY_ROWS = {
    "flagged": ("alerts (reviews and declines)", "count"),
    "frauds_flagged": ("frauds among them", "count"),
    "reviews": ("reviews", "count"),
    "declines": ("declines", "count"),
    "challenges": ("challenges", "count"),
    "precision_at_threshold": ("precision of alerts", "ratio"),
    "recall_at_threshold": ("recall of frauds", "ratio"),
    "legit_flagged_share": ("legitimate traffic flagged", "share"),
    "fraud_amount_caught": ("fraud money caught", "money"),
    "fraud_amount_caught_share": ("share of fraud money caught", "share"),
    "reviews_per_day": ("alerts per day", "per day"),
}


def _shown(value: Any, kind: str, signed: bool = False) -> str:
    """A figure as the comparison shows it; ``signed`` for a change (+12, -0.013)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    sign = "+" if signed else ""
    if kind == "count":
        return f"{value:{sign},}"
    if kind == "share":
        return f"{value * 100:{sign}.3f}" + (" pt" if signed else "%")
    if kind == "money":
        return f"{value:{sign},.2f}"
    if kind == "per day":
        return f"{value:{sign},.1f}"
    return f"{value:{sign}.3f}"


def _print_comparison(compared: dict[str, Any], sides: dict[str, dict[str, Any]]) -> None:
    """The policy as a whole, current vs candidate with the change, then rule by rule."""
    now, then = sides["current"], sides["candidate"]
    policy = Table(
        "",
        "current",
        "candidate",
        "change",
        title=f"current ({now['rules']}, version {now['version']}) vs candidate ({then['rules']}, "
        f"version {then['version']})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for column in policy.columns[1:]:
        column.justify = "right"
    for name, (label, kind) in _POLICY_ROWS.items():
        row = compared["policy"][name]
        change = _shown(row["delta"], kind, signed=True)
        if row["delta"] == 0:
            change = f"[dim]{change}[/dim]"
        policy.add_row(label, _shown(row["current"], kind), _shown(row["candidate"], kind), change)
    out.print(policy)
    per_rule = Table(
        title="rule by rule: hits current → candidate, and the candidate's precision and fraud money",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    per_rule.add_column("rule", no_wrap=True)
    per_rule.add_column("change")
    per_rule.add_column("hits", justify="right", no_wrap=True)
    per_rule.add_column("Δ hits", justify="right", no_wrap=True)
    per_rule.add_column("precision", justify="right", no_wrap=True)
    per_rule.add_column("fraud money", justify="right")
    for row in compared["rules"]:
        ours, theirs = row["current"] or {}, row["candidate"] or {}
        shadow = (theirs or ours).get("shadow")
        delta = row["delta_hits"]
        per_rule.add_row(
            f"{row['code']} (shadow)" if shadow else row["code"],
            _change(row),
            f"{_shown(ours.get('hits'), 'count')} → {_shown(theirs.get('hits'), 'count')}",
            _shown(delta, "count", signed=True) if delta else "[dim]0[/dim]",
            _shown(theirs.get("precision"), "ratio"),
            _shown(theirs.get("fraud_amount_caught"), "money"),
        )
    out.print(per_rule)
    console.print(
        "A disabled rule has no hits; a shadow rule's hits are recorded but never act.", highlight=False
    )


def _change(row: dict[str, Any]) -> str:
    """What happened to a rule, in a word or two."""
    if row["change"] in ("added", "removed"):
        return f"[bold]{row['change']}[/bold]"
    if row["change"] == "unchanged":
        return ""
    return ", ".join(row["changed"])
