"""Webhooks and their deliveries: the receivers admins register, and the persistent outbox of signed
events the webhook sink sends them (pending until delivered, retried with backoff, failed at last)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping

from fraudstream.storage.tables import webhook_deliveries, webhooks

__all__ = ["DELIVERY_STATUSES", "Webhooks"]

#: What a delivery can be: waiting for its next attempt, taken by the receiver (2xx), given up after
#: the last attempt, or dropped because its webhook was deleted.
DELIVERY_STATUSES = ("pending", "delivered", "failed", "cancelled")

#: A webhook as listed: everything but its secret.
_LISTED = [c for c in webhooks.c if c.name != "secret"]

#: The columns of a delivery, in the order the outbox writes them.
_DELIVERY_COLUMNS = tuple(c.name for c in webhook_deliveries.c)

#: What an attempt changes.
_OUTCOME_COLUMNS = (
    "status",
    "attempts",
    "next_attempt_ms",
    "last_status_code",
    "last_error",
    "delivered_at_ms",
)

#: What sending a due delivery takes.
_DUE = [webhook_deliveries.c[n] for n in ("id", "event", "payload", "attempts", "next_attempt_ms")]

#: A delivery as listed: everything but its payload (the receiver has that).
_DELIVERY_LISTED = [c for c in webhook_deliveries.c if c.name != "payload"]


def _webhook(row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    return {**row, "events": json.loads(row["events"])}


class Webhooks:
    """The webhook queries of :class:`~fraudstream.storage.Store` (a mixin over its ``engine``),
    parameterized and the same on SQLite and PostgreSQL."""

    engine: Engine

    # --- the receivers --------------------------------------------------------------------------

    def create_webhook(self, row: Mapping[str, Any]) -> None:
        """Store a new webhook: ``row`` holds every column, ``events`` as a list."""
        with self.engine.begin() as connection:
            connection.execute(sa.insert(webhooks), [{**row, "events": json.dumps(list(row["events"]))}])

    def list_webhooks(self) -> list[dict[str, Any]]:
        """The webhooks not deleted, oldest first, without their secrets."""
        query = sa.select(*_LISTED).where(webhooks.c.deleted_at_ms.is_(None))
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(webhooks.c.created_at_ms, webhooks.c.id)).mappings()
            return [_webhook(r) for r in rows]

    def webhook_targets(self) -> list[dict[str, Any]]:
        """The webhooks not deleted, with the secret each delivery to them is signed with: for the
        webhook sink only, never for an answer."""
        query = sa.select(webhooks).where(webhooks.c.deleted_at_ms.is_(None))
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(webhooks.c.created_at_ms, webhooks.c.id)).mappings()
            return [_webhook(r) for r in rows]

    def get_webhook(self, webhook_id: str) -> dict[str, Any] | None:
        """One webhook, deleted or not (``deleted_at_ms``), without its secret; None if unknown."""
        query = sa.select(*_LISTED).where(webhooks.c.id == webhook_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _webhook(row)

    def delete_webhook(self, webhook_id: str, now_ms: int) -> int | None:
        """Delete a webhook and cancel its pending deliveries, in one transaction; how many were
        cancelled, or None when no webhook ``webhook_id`` exists (or it is already deleted).

        The row stays (soft delete), so its deliveries can still be listed."""
        with self.engine.begin() as connection:
            deleted = connection.execute(
                sa.update(webhooks)
                .where(webhooks.c.id == webhook_id, webhooks.c.deleted_at_ms.is_(None))
                .values(deleted_at_ms=now_ms)
            ).rowcount
            if not deleted:
                return None
            cancelled = connection.execute(
                sa.update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.webhook_id == webhook_id, webhook_deliveries.c.status == "pending"
                )
                .values(status="cancelled", last_error="the webhook was deleted")
            ).rowcount
        return int(cancelled)

    # --- the outbox -----------------------------------------------------------------------------

    def add_deliveries(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Queue deliveries (every column given); ids already stored are skipped, so handing the same
        part of the log over again never queues an event twice."""
        if rows:
            statement = self._driver_statement(
                f"INSERT INTO webhook_deliveries ({', '.join(_DELIVERY_COLUMNS)}) "
                f"VALUES ({', '.join(['?'] * len(_DELIVERY_COLUMNS))}) ON CONFLICT DO NOTHING"
            )
            values = [tuple(row[name] for name in _DELIVERY_COLUMNS) for row in rows]
            with self.engine.begin() as connection:
                connection.exec_driver_sql(statement, values)

    def due_deliveries(self, webhook_id: str, now_ms: int, limit: int) -> list[dict[str, Any]]:
        """A webhook's pending deliveries whose next attempt is due, the longest due first: what
        sending one takes (id, event, payload, attempts, next_attempt_ms)."""
        query = (
            sa.select(*_DUE)
            .where(
                webhook_deliveries.c.webhook_id == webhook_id,
                webhook_deliveries.c.status == "pending",
                webhook_deliveries.c.next_attempt_ms <= now_ms,
            )
            .order_by(webhook_deliveries.c.next_attempt_ms)
            .limit(limit)
        )
        names = [column.name for column in _DUE]
        with self.engine.connect() as connection:
            return [dict(zip(names, row)) for row in connection.execute(query).fetchall()]

    def record_attempts(self, outcomes: Sequence[Mapping[str, Any]]) -> None:
        """What came of attempts, in one transaction: each outcome holds the delivery ``id`` and its new
        ``status``, ``attempts``, ``next_attempt_ms``, ``last_status_code``, ``last_error`` and
        ``delivered_at_ms``. Only pending deliveries change: one cancelled meanwhile stays cancelled."""
        if outcomes:
            statement = self._driver_statement(
                f"UPDATE webhook_deliveries SET {', '.join(f'{n} = ?' for n in _OUTCOME_COLUMNS)} "
                "WHERE id = ? AND status = 'pending'"
            )
            values = [(*(o[name] for name in _OUTCOME_COLUMNS), o["id"]) for o in outcomes]
            with self.engine.begin() as connection:
                connection.exec_driver_sql(statement, values)

    def _driver_statement(self, text: str) -> str:
        """``text`` (fixed SQL of this module, ``?`` markers) in the driver's own markers (psycopg:
        ``%s``): for executemany with plain tuples, a fraction of SQLAlchemy's cost per row, which
        counts where each delivery is inserted, read and updated beside the scorer."""
        return text if self.engine.dialect.paramstyle == "qmark" else text.replace("?", "%s")

    def deliveries_due_now(self, webhook_id: str, now_ms: int) -> int:
        """Make every pending delivery of a webhook due now (its receiver answers again, so what waits
        for it need not sit out its backoff); how many were waiting."""
        with self.engine.begin() as connection:
            moved = connection.execute(
                sa.update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.webhook_id == webhook_id,
                    webhook_deliveries.c.status == "pending",
                    webhook_deliveries.c.next_attempt_ms > now_ms,
                )
                .values(next_attempt_ms=now_ms)
            ).rowcount
        return int(moved)

    def webhook_deliveries(self, webhook_id: str, status: str | None, limit: int) -> list[dict[str, Any]]:
        """A webhook's deliveries, newest first, in ``status`` (any when None), without payloads."""
        query = sa.select(*_DELIVERY_LISTED).where(webhook_deliveries.c.webhook_id == webhook_id)
        if status is not None:
            query = query.where(webhook_deliveries.c.status == status)
        query = query.order_by(webhook_deliveries.c.created_at_ms.desc(), webhook_deliveries.c.id.desc())
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(query.limit(limit)).mappings()]
