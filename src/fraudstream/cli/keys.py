"""`fraudstream keys create|list|revoke`: API keys."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from fraudstream.cli.app import USER_ERROR, _settings, app, console, out
from fraudstream.cli.audit import cli_actor

keys_app = typer.Typer(help="API keys for clients and dashboard users.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for, e.g. an analyst's name.")],
    role: Annotated[str, typer.Option(help="admin, analyst, ingest or viewer.")] = "analyst",
) -> None:
    """Create an API key and print it once (only its hash is stored).

    Example: `fraudstream keys create alice --role analyst`
    """
    import time as clock

    from fraudstream.storage import Store
    from fraudstream.storage.store import ROLES

    if role not in ROLES:
        raise typer.BadParameter(f"{role!r} is not a role; allowed: {', '.join(ROLES)}", param_hint="--role")
    settings = _settings(store_only=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.effective_database_url)
    store.upgrade()
    key = store.create_api_key(name, role, int(clock.time() * 1000), actor=cli_actor())
    out.print(f"API key for {name} ({role}); shown only now, keep it secret:")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List who holds an API key: name, role, when created, whether revoked (never the key itself).

    Example: `fraudstream keys list`
    """
    from datetime import UTC, datetime

    from fraudstream.storage import Store

    settings = _settings(store_only=True)
    store = Store(settings.effective_database_url)
    store.upgrade()
    table = Table("name", "role", "created (UTC)", "revoked", title="API keys")
    for key in store.list_api_keys():
        created = datetime.fromtimestamp(key["created_at_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(key["name"], key["role"], created, "revoked" if key["revoked"] else "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The holder whose keys stop working (see `keys list`).")],
) -> None:
    """Revoke every valid API key of NAME. A running server refuses them within 30 s (at once when
    revoked through DELETE /v1/keys/NAME).

    Example: `fraudstream keys revoke alice`
    """
    from fraudstream.storage import Store

    settings = _settings(store_only=True)
    store = Store(settings.effective_database_url)
    store.upgrade()
    revoked = store.revoke_api_keys(name)
    if revoked:
        store.audit(cli_actor(), "revoke_keys", name, {"revoked": revoked}, int(time.time() * 1000))
    if revoked == 0:
        console.print(f"[red]no valid API key named {name!r}[/red]; `fraudstream keys list` shows them")
        raise typer.Exit(USER_ERROR)
    out.print(f"revoked {revoked} API key{'s' if revoked > 1 else ''} of {name}")
