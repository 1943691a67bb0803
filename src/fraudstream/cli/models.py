"""`fraudstream models list|show|promote|shadow` and `fraudstream retrain`: the model registry."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from fraudstream.cli.app import _settings, app, out
from fraudstream.cli.audit import audit_cli_change
from fraudstream.cli.inputs import _LABEL_DELAY, _duration_ms, _registry, _RegistryOption

models_app = typer.Typer(help="The model registry: list, show, promote, shadow.", no_args_is_help=True)
app.add_typer(models_app, name="models")


def _metric(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ""


@models_app.command("list")
def models_list(
    registry: _RegistryOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list, for scripts.")] = False,
) -> None:
    """Every registered model with its role and headline metrics; version ids in full, as
    `models promote` takes them.

    Example: `fraudstream models list`
    """
    store = _registry(registry)
    roles = store.roles()
    rows = [
        {
            "version": meta.version,
            "kind": meta.kind,
            "role": store.role_in(roles, meta.version),
            "roc_auc": meta.metrics.get("roc_auc"),
            "average_precision": meta.metrics.get("average_precision"),
            "created": meta.created,
        }
        for meta in store.versions()
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table()
    # A version id is never cut: the other columns give way on a narrow terminal.
    table.add_column("version", no_wrap=True, min_width=max((len(r["version"]) for r in rows), default=7))
    for name in ("kind", "role", "AUC", "avg precision", "created"):
        table.add_column(name)
    for row in rows:
        table.add_row(
            row["version"],
            row["kind"],
            row["role"] or "",
            _metric(row["roc_auc"]),
            _metric(row["average_precision"]),
            row["created"],
        )
    out.print(table)


@models_app.command("show")
def models_show(
    model: Annotated[str, typer.Argument(help="Version id, champion or latest.")] = "champion",
    registry: _RegistryOption = None,
) -> None:
    """A model's card: kind, training data, metrics.

    Example: `fraudstream models show latest`
    """
    store = _registry(registry)
    out.print(store.card(model))


@models_app.command("promote")
def models_promote(
    model: Annotated[str, typer.Argument(help="Version id or latest.")],
    registry: _RegistryOption = None,
) -> None:
    """Make a model the champion; a running server picks it up within a snapshot interval.

    Example: `fraudstream models promote latest`
    """
    version = _registry(registry).promote(model)
    audit_cli_change(_settings(store_only=True), "model_champion", version, {"version": version})
    out.print(f"champion: {version}")


@models_app.command("shadow")
def models_shadow(
    model: Annotated[str, typer.Argument(help="Version id or latest.")],
    registry: _RegistryOption = None,
) -> None:
    """Score a model in shadow next to the champion (recorded, never acting).

    Example: `fraudstream models shadow latest`
    """
    version = _registry(registry).shadow(model)
    audit_cli_change(_settings(store_only=True), "model_challenger", version, {"version": version})
    out.print(f"challenger: {version}")


@app.command()
def retrain(
    days: Annotated[float, typer.Option(help="Train on the stored traffic of the last N days.")] = 30.0,
    margin: Annotated[
        float, typer.Option(help="Promote only if average precision is better by this much.")
    ] = 0.01,
    label_delay: Annotated[str, _LABEL_DELAY] = "0s",
    model: Annotated[str, typer.Option(help="Kind of challenger.")] = "lightgbm",
) -> None:
    """Train a challenger on recent labelled traffic (reviews + chargebacks) and promote it if it beats
    the champion on the same holdout; otherwise it scores in shadow.

    Example: `FRAUDSTREAM_DATA_DIR=data fraudstream retrain --days 14 --margin 0.02`
    """
    from fraudstream.ml.registry import Registry
    from fraudstream.ml.retrain import retrain as run
    from fraudstream.storage import Store

    settings = _settings(store_only=True)
    since = int(time.time() * 1000 - days * 86_400_000)
    result = run(
        Store(settings.effective_database_url),
        Registry(settings.models_dir, settings.s3_endpoint_url),
        since_ms=since,
        label_delay_ms=_duration_ms(label_delay),
        margin=margin,
        kind=model,
    )
    role = "model_champion" if result["promoted"] else "model_challenger"
    audit_cli_change(settings, role, result["version"], {"version": result["version"], "retrained": True})
    out.print_json(json.dumps(result))
