"""Snoozes as stored: created, listed, cancelled (each change audited), and the ones in force."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping

from fraudstream.storage.audit import record_audit
from fraudstream.storage.tables import snoozes

__all__ = ["Snoozes"]


def _snooze(row: Mapping[str, Any] | RowMapping, now_ms: int) -> dict[str, Any]:
    """A stored snooze as the API shows it, with its state at ``now_ms``."""
    state = "cancelled" if row["cancelled_at_ms"] is not None else "active"
    if state == "active" and row["until_ms"] <= now_ms:
        state = "expired"
    return {
        "id": row["id"],
        "entity_kind": row["entity_kind"],
        "entity_id": row["entity_id"],
        "rule": row["rule_code"],
        "until_ms": int(row["until_ms"]),
        "reason": row["reason"] or "",
        "created_at_ms": int(row["created_at_ms"]),
        "created_by": row["created_by"],
        "cancelled_at_ms": row["cancelled_at_ms"],
        "state": state,
    }


class Snoozes:
    """The snooze queries of :class:`~fraudstream.storage.Store` (a mixin over its ``engine``)."""

    engine: Engine

    def create_snooze(self, row: Mapping[str, Any], actor: str, now_ms: int) -> dict[str, Any]:
        """Store a new snooze (``row``: id, entity_kind, entity_id, rule_code, until_ms, reason),
        audited as ``create_snooze``; the snooze as listed."""
        stored = {**row, "created_at_ms": now_ms, "created_by": actor, "cancelled_at_ms": None}
        with self.engine.begin() as connection:
            connection.execute(sa.insert(snoozes), [stored])
            details = {k: row[k] for k in ("entity_kind", "rule_code", "until_ms", "reason")}
            record_audit(connection, actor, "create_snooze", str(row["id"]), details, now_ms)
        return _snooze(stored, now_ms)

    def cancel_snooze(self, snooze_id: str, actor: str, now_ms: int) -> dict[str, Any] | None:
        """Cancel a snooze (audited as ``cancel_snooze``); None when there is no such snooze. One
        already cancelled stays as it was."""
        with self.engine.begin() as connection:
            found = connection.execute(sa.select(snoozes).where(snoozes.c.id == snooze_id)).mappings().first()
            if found is None:
                return None
            row = dict(found)
            if row["cancelled_at_ms"] is None:
                connection.execute(
                    sa.update(snoozes).where(snoozes.c.id == snooze_id).values(cancelled_at_ms=now_ms)
                )
                record_audit(connection, actor, "cancel_snooze", snooze_id, {}, now_ms)
                row = {**row, "cancelled_at_ms": now_ms}
        return _snooze(row, now_ms)

    def list_snoozes(
        self, now_ms: int, *, everything: bool = False, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Snoozes in force at ``now_ms`` (not cancelled, until in the future), soonest to end first;
        ``everything``: expired and cancelled ones too, newest first."""
        query = sa.select(snoozes)
        if everything:
            query = query.order_by(snoozes.c.created_at_ms.desc(), snoozes.c.id)
        else:
            query = query.where(snoozes.c.cancelled_at_ms.is_(None), snoozes.c.until_ms > now_ms).order_by(
                snoozes.c.until_ms, snoozes.c.id
            )
        with self.engine.connect() as connection:
            rows = connection.execute(query.limit(limit)).mappings().all()
        return [_snooze(r, now_ms) for r in rows]

    def snoozes_in_force(self, now_ms: int) -> list[dict[str, Any]]:
        """Every snooze not cancelled whose until is after ``now_ms``, for the engine (not bounded:
        the engine must see them all)."""
        query = sa.select(snoozes).where(snoozes.c.cancelled_at_ms.is_(None), snoozes.c.until_ms > now_ms)
        with self.engine.connect() as connection:
            return [_snooze(r, now_ms) for r in connection.execute(query.order_by(snoozes.c.id)).mappings()]
