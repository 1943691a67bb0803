"""The `fraudstream` Typer app, its output consoles, and how a command's errors end it (`run`)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from fraudstream import __version__

app = typer.Typer(
    name="fraudstream",
    help="Real-time transaction fraud detection.\n\nStart with `fraudstream demo`, then open http://127.0.0.1:8000",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)


# Messages are never wrapped: an error is one line, whatever the terminal's width.
console = Console(stderr=True, soft_wrap=True)
out = Console()


def _version(value: bool) -> None:
    if value:
        out.print(f"fraudstream {__version__}")
        raise typer.Exit()


#: The exit status of a command stopped by an error of its user (a missing file, a bad setting, ...),
#: as for a usage error: the same 2 whether Typer or the command found it.
USER_ERROR = 2


def run() -> None:
    """The ``fraudstream`` command. A missing file, a bad rule set or setting, an unknown model version,
    a database it cannot open and the like end it with one line saying what is wrong (exit status 2)
    instead of a traceback; any other exception is a bug, and shows one."""
    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C while a command compiles, trains or reads: no traceback
        console.print("stopped")
        raise SystemExit(130) from None
    except Exception as exc:
        message = _user_error(exc)
        if message is None:
            raise
        console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
        raise SystemExit(USER_ERROR) from None


def _user_error(exc: Exception) -> str | None:
    """What to tell the user about an error they can fix; None for one that is a bug."""
    from pydantic import ValidationError as SettingsError

    from fraudstream.errors import FraudstreamError

    if isinstance(exc, FileNotFoundError) and not exc.strerror:  # raised with a path alone
        return f"no such file: {exc}"
    if isinstance(exc, FraudstreamError | OSError):
        return " ".join(str(exc).split())  # one line, whatever the message's own line breaks
    if isinstance(exc, SettingsError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import ArgumentError, OperationalError

        if isinstance(exc, OperationalError):
            return (
                f"cannot use the database: {exc.orig} (check FRAUDSTREAM_DATABASE_URL, or "
                "FRAUDSTREAM_DATA_DIR for the default SQLite file)"
            )
        if isinstance(exc, ArgumentError):  # a URL it cannot parse, or of a database it does not know
            return (
                f"cannot use the database URL: {exc}; FRAUDSTREAM_DATABASE_URL is sqlite:///path or "
                "postgresql+psycopg://user@host/db"
            )
    if "confluent_kafka" in sys.modules:
        from confluent_kafka import KafkaException

        if isinstance(exc, KafkaException):
            return f"Kafka: {exc.args[0] if exc.args else exc} (check --brokers or FRAUDSTREAM_KAFKA_BROKERS)"
    return None


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Real-time transaction fraud detection."""


def _settings(*, store_only: bool = False, **overrides: Any) -> Any:
    """The effective settings, or exit with everything that is wrong with them. ``store_only``: for
    commands that use only the database and the model registry, which need no card key."""
    from pydantic import ValidationError as SettingsError
    from pydantic_settings import SettingsError as SourceError

    from fraudstream.config import Settings, StoreSettings, inspect_settings, unknown_settings
    from fraudstream.errors import ConfigError

    for warning in unknown_settings():
        console.print(f"[yellow]warning[/yellow] {escape(warning)}")
    kind = StoreSettings if store_only else Settings
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return kind(**given)
    except (SettingsError, SourceError, ConfigError):
        # Read again source by source, for every problem at once, each naming the setting, the
        # value, where it came from and what is allowed (`fraudstream config show` prints the same).
        for problem in inspect_settings(kind, **given).errors:
            console.print(f"[red]configuration error[/red] {escape(str(problem))}")
        raise typer.Exit(2) from None
