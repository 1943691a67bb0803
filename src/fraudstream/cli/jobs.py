"""`fraudstream jobs run|list`: the scheduled jobs run once from cron, against the database and registry."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fraudstream.cli.app import _settings, app, console, out

jobs_app = typer.Typer(
    help="Scheduled jobs (retrain, rescore, backtest_report): run one now, list the runs.",
    no_args_is_help=True,
)
app.add_typer(jobs_app, name="jobs")

_JOB = typer.Argument(help="retrain, rescore or backtest_report", metavar="JOB", show_default=False)


@jobs_app.command("run")
def run(
    job: Annotated[str, _JOB],
    start: Annotated[
        str | None, typer.Option("--from", help="rescore: the range's start, RFC 3339 with its zone")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="rescore: the range's end (default: now)")] = None,
    rules: Annotated[Path | None, typer.Option(help="rescore: the candidate rule set, a YAML file")] = None,
    rules_version: Annotated[
        int | None, typer.Option(help="rescore: a stored rule set version as the candidate")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="rescore: champion (default) or none (the rules alone)")
    ] = None,
    days: Annotated[
        float | None,
        typer.Option(help="retrain: days of history (retrain_days); backtest_report: days back (7)"),
    ] = None,
    margin: Annotated[
        float | None, typer.Option(help="retrain: promote only if AP is better by this")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="retrain: the kind of challenger (retrain_kind)")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole run, its result included.")
    ] = False,
) -> None:
    """Run one job once, now, against the configured database and model registry, and exit: status 0
    when it is done, 1 when it failed or was skipped (a run of the same job was in progress). The run
    is recorded (trigger "cli") and shows in the dashboard's Jobs page and GET /v1/jobs; a retrain's
    promotion goes to the audit log, and a running server scores with the new champion from its next
    maintenance tick.

    Example (crontab, Mondays at 06:00): `0 6 * * 1 FRAUDSTREAM_DATA_DIR=/srv/fraud fraudstream jobs run
    backtest_report`
    """
    from fraudstream.cli.audit import cli_actor
    from fraudstream.ml.jobs import JobContext, execute, new_run, parse_params
    from fraudstream.storage import Store

    given: dict[str, Any] = {
        "from": start,
        "to": end,
        "rules": rules.read_text(encoding="utf-8") if rules is not None else None,
        "rules_version": rules_version,
        "model": model,
        "days": days,
        "margin": margin,
        "kind": kind,
    }
    params = parse_params(job, {k: v for k, v in given.items() if v is not None})
    settings = _settings(store_only=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.effective_database_url)
    try:
        store.upgrade()
        actor = cli_actor()
        recorded = new_run(store, job, params, "cli", actor, int(time.time() * 1000))
        store.audit(
            actor,
            "run_job",
            job,
            {"run": recorded["id"], "status": recorded["status"]},
            recorded["created_at_ms"],
        )
        if recorded["status"] == "skipped":
            _report(recorded, as_json)
            raise typer.Exit(1)
        context = JobContext(store, settings, lambda: _active_rules(store, context), _say)
        ended = execute(context, recorded["id"], job, params)
        if job == "retrain" and ended["status"] == "done" and ended["result"]["promoted"]:
            version = ended["result"]["version"]
            details = {"version": version, "run": ended["id"]}
            store.audit(actor, "model_champion", version, details, int(time.time() * 1000))
    finally:
        store.close()
    _report(ended, as_json)
    if ended["status"] != "done":
        raise typer.Exit(1)


@jobs_app.command("list")
def list_runs(
    job: Annotated[str | None, typer.Option(help="Only runs of this job")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list, for scripts.")] = False,
) -> None:
    """The newest job runs with their trigger, status and times.

    Example: `fraudstream jobs list --job retrain`
    """
    from fraudstream.storage import Store

    settings = _settings(store_only=True)
    store = Store(settings.effective_database_url)
    try:
        store.upgrade()
        runs = store.list_job_runs(job=job, limit=limit)
    finally:
        store.close()
    if as_json:
        out.print_json(json.dumps(runs))
        return
    table = Table()
    # Ids and job names whole, as `GET /v1/jobs/{id}` takes them; the other columns wrap.
    table.add_column("id", no_wrap=True, min_width=16)
    table.add_column("job", no_wrap=True, min_width=len("backtest_report"))
    for name in ("trigger", "status", "progress", "created", "error"):
        table.add_column(name)
    for found in runs:
        table.add_row(
            found["id"],
            found["job"],
            found["trigger"],
            found["status"],
            f"{found['progress']:.0%}",
            _time(found["created_at_ms"]),
            found["error"] or "",
        )
    out.print(table)


def _active_rules(store: Any, context: Any) -> Any:
    """The rule set a server would decide with: the active stored version, else the built-in set."""
    import dataclasses

    from fraudstream.core.engine import default_ruleset

    active = store.active_ruleset()
    if active is None:
        return default_ruleset(context.settings.engine_config().features)
    version, text = active
    return dataclasses.replace(context.parse_rules(text), version=version)


def _say(done: float) -> None:
    """How far the job is, in a terminal (cron's mail gets only the outcome)."""
    if console.is_terminal:
        console.print(f"{done:.0%}", highlight=False)


def _time(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _report(found: dict[str, Any], as_json: bool) -> None:
    """The run as it ended: all of it with ``as_json``, else one line saying what it found."""
    if as_json:
        out.print_json(json.dumps(found))
        return
    line = f"{found['job']} run {found['id']}: {found['status']}"
    if found["status"] != "done":
        out.print(f"{line}: {found['error']}", highlight=False, soft_wrap=True)
        return
    out.print(f"{line}: {_summary(found['job'], found['result'])}", highlight=False, soft_wrap=True)


def _summary(job: str, result: dict[str, Any]) -> str:
    if job == "retrain":
        verdict = "promoted" if result["promoted"] else "not promoted (scores in shadow)"
        return (
            f"challenger {result['version']} {verdict}: average precision "
            f"{result['challenger_average_precision']} against the champion's "
            f"{result['champion_average_precision']} (margin {result['margin']})"
        )
    if job == "rescore":
        changes = result["changes"]
        return (
            f"{result['transactions']} transactions re-scored, {changes['decisions_changed']} decisions "
            f"change, {changes['alerts_gained']} alerts gained, {changes['alerts_lost']} lost"
        )
    policy = result["report"]["policy"]
    return (
        f"{result['transactions']} transactions, {policy['flagged']} flagged, precision "
        f"{policy['precision_at_threshold']}, recall {policy['recall_at_threshold']}"
    )
