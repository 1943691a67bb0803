"""The audit log entries of changes made from the command line (keys, model roles)."""

from __future__ import annotations

import getpass
import time
from collections.abc import Mapping
from typing import Any

from fraudstream.config import Settings

__all__ = ["audit_cli_change", "cli_actor"]


def cli_actor() -> str:
    """Who changed something from the command line: ``cli:`` and the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name for this uid (a container's arbitrary uid)
        return "cli"


def audit_cli_change(settings: Settings, action: str, subject: str, details: Mapping[str, Any]) -> None:
    """Write one audit entry to the database of ``settings`` (migrated first, created if new)."""
    from fraudstream.storage import Store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.effective_database_url)
    try:
        store.upgrade()
        store.audit(cli_actor(), action, subject, details, int(time.time() * 1000))
    finally:
        store.close()
