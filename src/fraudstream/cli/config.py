"""`fraudstream config show`: the effective settings, where each came from, and what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fraudstream.cli.app import USER_ERROR, app, out
from fraudstream.config import ConfigReport, declared_features, inspect_settings

config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)


app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object, for scripts: valid, values (each with value, source, path), "
            "locations, errors, warnings.",
        ),
    ] = False,
) -> None:
    """Print every setting with its value (secrets masked) and source (default, env, .env, secret,
    file), then every error and warning. It works on a broken configuration, which is when one needs
    it: the exit status is 2 when there are errors, after printing everything.

    Example: `FRAUDSTREAM_PORT=9000 fraudstream config show`
    """
    report = inspect_settings()
    if as_json:
        out.print_json(json.dumps(report.as_json(), default=str))
    else:
        _print(report)
    if report.errors:
        raise typer.Exit(USER_ERROR)


#: How the files and directory read are introduced, above the table.
_LOCATIONS = {".env": ".env file", "secret": "secrets directory", "file": "configuration file"}


def _print(report: ConfigReport) -> None:
    for origin in report.locations:
        out.print(f"{_LOCATIONS[origin.kind]}: {escape(origin.path or '')}", highlight=False)
    table = Table()
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", no_wrap=True)
    invalid = {problem.setting for problem in report.errors}
    for name, value in report.values.items():
        shown = escape(_text(value))
        sources = ", ".join(origin.kind for origin in report.origins[name])
        if name in invalid:
            table.add_row(f"[red]{name}[/red]", f"[red]{shown}[/red]", sources)
        else:
            table.add_row(name, shown, sources if sources != "default" else "[dim]default[/dim]")
    out.print(table)
    _print_declared_features(report, invalid)
    for problem in report.errors:
        out.print(f"[red]error[/red] {escape(str(problem))}", highlight=False, soft_wrap=True)
    for warning in report.warnings:
        out.print(f"[yellow]warning[/yellow] {escape(warning)}", highlight=False, soft_wrap=True)
    if report.errors:
        count = len(report.errors)
        out.print(f"{count} configuration error{'s' if count > 1 else ''}", style="red", highlight=False)


def _print_declared_features(report: ConfigReport, invalid: set[str | None]) -> None:
    """The features the declared-features file adds, by the names rules and models use."""
    path = report.values.get("features_path")
    if not path or "features_path" in invalid:
        return
    try:
        aggregations = declared_features(Path(path)).aggregations
    except ValueError:
        return  # reported among the errors
    names = ", ".join(a.feature_name for a in aggregations) or "none"
    out.print(f"declared features ({escape(str(path))}): {names}", highlight=False, soft_wrap=True)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)
