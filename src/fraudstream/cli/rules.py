"""`fraudstream rules validate|show`: check and list rule sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fraudstream.cli.app import app, console, out
from fraudstream.cli.results import print_json

rules_app = typer.Typer(help="Validate and show rule sets.", no_args_is_help=True)


app.add_typer(rules_app, name="rules")


@rules_app.command("validate")
def rules_validate(
    path: Annotated[Path, typer.Argument(help="YAML rule set.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object (valid, and each problem), for scripts.")
    ] = False,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            envvar="FRAUDSTREAM_FEATURES_PATH",
            help="YAML of declared feature aggregations whose features the rules may use (as the "
            "server's FRAUDSTREAM_FEATURES_PATH).",
        ),
    ] = None,
) -> None:
    """Check a rule set; print every problem at once (rule, key, column, reason) and exit 1 if any.
    Rules may read the transaction's extra fields as `attributes.NAME`, and the features a
    declared-features file adds (`--features`).

    Example: `fraudstream rules validate my-rules.yaml --features features.yaml`
    """
    from fraudstream.config import declared_features
    from fraudstream.core.engine import default_names
    from fraudstream.core.features import FeatureConfig
    from fraudstream.core.rules import load_ruleset, ruleset_errors

    text = path.read_text(encoding="utf-8")
    try:
        config = declared_features(features) if features is not None else FeatureConfig()
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--features") from None
    names = default_names(config)
    errors = ruleset_errors(text, names)
    problems = [
        {"rule": e.rule, "key": e.detail.key or None, "column": e.position, "reason": e.reason}
        for e in errors
    ]
    if errors:
        if as_json:
            print_json({"valid": False, "file": str(path), "errors": problems})
        else:
            _print_problems(path, problems)
        raise typer.Exit(1)
    rules = load_ruleset(text, names)
    if as_json:
        print_json(
            {
                "valid": True,
                "file": str(path),
                "version": rules.version,
                "rules": len(rules.rules),
                "lists": len(rules.lists),
            }
        )
        return
    out.print(f"valid: version {rules.version}, {len(rules.rules)} rules, {len(rules.lists)} lists")


def _print_problems(path: Path, problems: list[dict[str, Any]]) -> None:
    """A rule set's problems, one line each: the rule, the column in its expression, the key and why."""
    count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
    console.print(f"[red]invalid[/red] {escape(str(path))}: {count}", highlight=False)
    for problem in problems:
        at = f" at column {problem['column']}" if problem["column"] is not None else ""
        key = f" ({problem['key']})" if problem["key"] else ""
        line = f"  rule {problem['rule']!r}{at}{key}: {problem['reason']}"
        console.print(escape(line), highlight=False)


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
