"""`fraudstream config show`: the effective settings."""

from __future__ import annotations

import json

import typer

from fraudstream.cli.app import _settings, app, out

config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)


app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration, secrets masked.

    Example: `FRAUDSTREAM_PORT=9000 fraudstream config show`
    """
    settings = _settings()
    out.print_json(json.dumps(settings.masked(), default=str))
