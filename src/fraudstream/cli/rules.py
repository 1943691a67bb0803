"""`fraudstream rules validate|show`: check and list rule sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fraudstream.cli.app import app, console, out

rules_app = typer.Typer(help="Validate and show rule sets.", no_args_is_help=True)


app.add_typer(rules_app, name="rules")


@rules_app.command("validate")
def rules_validate(path: Annotated[Path, typer.Argument(help="YAML rule set.")]) -> None:
    """Check a rule set; on error, print the rule, the column and the reason.

    Example: `fraudstream rules validate my-rules.yaml`
    """
    from fraudstream.core.engine import default_names
    from fraudstream.core.features import FeatureConfig
    from fraudstream.core.rules import load_ruleset
    from fraudstream.errors import RuleError

    try:
        rules = load_ruleset(path.read_text(encoding="utf-8"), default_names(FeatureConfig()))
    except RuleError as exc:
        console.print(f"[red]invalid[/red] {exc}")
        raise typer.Exit(1) from None
    out.print(f"valid: version {rules.version}, {len(rules.rules)} rules, {len(rules.lists)} lists")


@rules_app.command("show")
def rules_show(
    path: Annotated[Path | None, typer.Argument(help="YAML rule set (default: the built-in).")] = None,
    yaml_: Annotated[
        bool,
        typer.Option(
            "--yaml", help="Print the rule set as YAML: a start for your own (edit, validate, backtest)."
        ),
    ] = False,
) -> None:
    """List the rules of a rule set (the built-in default when no file is given).

    Example: `fraudstream rules show --yaml > candidate.yaml`, then edit it and
    `fraudstream backtest --rules candidate.yaml --data sim.parquet`
    """
    from importlib import resources

    from fraudstream.core.engine import default_names
    from fraudstream.core.features import FeatureConfig
    from fraudstream.core.rules import load_ruleset

    config = FeatureConfig()
    text = (
        path.read_text(encoding="utf-8")
        if path
        else resources.files("fraudstream.core.rules").joinpath("default.yaml").read_text(encoding="utf-8")
    )
    rules = load_ruleset(text, default_names(config))
    if yaml_:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    table = Table(
        "code", "action", "weight", "expression", "flags", title=f"rule set version {rules.version}"
    )
    for rule in rules.rules:
        flags = ", ".join(f for f, on in (("shadow", rule.shadow), ("disabled", not rule.enabled)) if on)
        table.add_row(rule.code, rule.action, f"{rule.weight:g}", rule.expression, flags)
    out.print(table)
