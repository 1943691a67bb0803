"""The audit trail as analysts and admins search it: who changed what, when, filtered, newest first."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fraudstream.storage.tables import audit_log

__all__ = ["AuditTrail", "record_audit", "record_audits"]


def record_audit(
    connection: Connection,
    actor: str,
    action: str,
    subject: str | None,
    details: Mapping[str, Any],
    now_ms: int,
) -> None:
    """One audit entry, written in the change's own transaction: the change and its record commit
    together or not at all."""
    entry = {"at_ms": now_ms, "actor": actor, "action": action, "subject": subject, "details": details}
    record_audits(connection, [entry])


def record_audits(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Audit entries (at_ms, actor, action, subject, details) in one statement."""
    if rows:
        connection.execute(sa.insert(audit_log), [{**r, "details": json.dumps(r["details"])} for r in rows])


class AuditTrail:
    """Reads of the audit log, mixed into `Store` (the writes are `Store.audit` and each change's own
    transaction)."""

    engine: Engine

    def audit_page(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        subject: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        cursor: int | None = None,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Audit entries matching every filter given (``since_ms`` inclusive, ``until_ms`` exclusive),
        newest first, and the cursor of the next page (the last entry's id) or None at the end."""
        query = sa.select(audit_log)
        if actor is not None:
            query = query.where(audit_log.c.actor == actor)
        if action is not None:
            query = query.where(audit_log.c.action == action)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        if since_ms is not None:
            query = query.where(audit_log.c.at_ms >= since_ms)
        if until_ms is not None:
            query = query.where(audit_log.c.at_ms < until_ms)
        if cursor is not None:
            query = query.where(audit_log.c.id < cursor)
        query = query.order_by(audit_log.c.id.desc()).limit(limit + 1)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        items = [{**r, "details": json.loads(r["details"] or "{}")} for r in rows[:limit]]
        return items, (int(items[-1]["id"]) if len(rows) > limit else None)

    def audit_actions(self) -> list[str]:
        """Every action the log holds, for a filter's choices."""
        with self.engine.connect() as connection:
            return sorted(connection.execute(sa.select(audit_log.c.action).distinct()).scalars())
