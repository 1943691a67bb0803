"""`fraudstream db upgrade`: the database schema."""

from __future__ import annotations

import typer

from fraudstream.cli.app import _settings, app, out

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the newest schema version.

    Example: `FRAUDSTREAM_DATABASE_URL=postgresql+psycopg://user@host/db fraudstream db upgrade`
    """
    from fraudstream.storage import Store

    settings = _settings(store_only=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    Store(settings.effective_database_url).upgrade()
    out.print(f"database at the newest schema: {settings.masked()['database_url']}")
