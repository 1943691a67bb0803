"""The read side behind the dashboard and the API listings: transaction and alert pages, a user's
history, the audit trail, statistics and rule performance."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fraudstream.storage.rows import alert_record, decision_record, transaction_record
from fraudstream.storage.tables import alerts, audit_log, decisions, labels, shadow_scores, transactions

__all__ = [
    "ALERT_ORDERS",
    "ORDERS",
    "TRANSACTION_ORDERS",
    "Reports",
    "SortKey",
    "alert_conditions",
    "sort_keys",
    "transaction_conditions",
]

#: The orders a transaction listing can be sorted in.
ORDERS = ("newest", "oldest", "score_desc", "score_asc", "amount_desc", "amount_asc")

#: A column to sort by, and whether it sorts descending.
SortKey = tuple[sa.ColumnElement[Any], bool]

#: Each order of a transaction listing, as its sort keys: the last one (arrival) makes it total.
TRANSACTION_ORDERS: dict[str, tuple[SortKey, ...]] = {
    "newest": ((transactions.c.seq, True),),
    "oldest": ((transactions.c.seq, False),),
    "score_desc": ((decisions.c.score, True), (transactions.c.seq, True)),
    "score_asc": ((decisions.c.score, False), (transactions.c.seq, True)),
    "amount_desc": ((transactions.c.amount, True), (transactions.c.seq, True)),
    "amount_asc": ((transactions.c.amount, False), (transactions.c.seq, True)),
}

#: Each order of an alert listing: riskiest first (score, then amount, then newest) or newest first;
#: the transaction id makes it total.
ALERT_ORDERS: dict[str, tuple[SortKey, ...]] = {
    "risk": (
        (alerts.c.score, True),
        (alerts.c.amount, True),
        (alerts.c.created_at_ms, True),
        (alerts.c.transaction_id, False),
    ),
    "newest": ((alerts.c.created_at_ms, True), (alerts.c.transaction_id, False)),
}


def sort_keys(keys: Sequence[SortKey]) -> list[sa.ColumnElement[Any]]:
    """The ORDER BY terms of ``keys``."""
    return [column.desc() if descending else column.asc() for column, descending in keys]


def transaction_conditions(
    *,
    user_id: str | None = None,
    decision: str | None = None,
    from_ms: int | None = None,
    to_ms: int | None = None,
    min_score: int | None = None,
    max_score: int | None = None,
    rule: str | None = None,
) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions of a transaction listing's filters (over transactions joined to
    decisions); None leaves a filter out, ``to_ms`` is exclusive."""
    conditions: list[sa.ColumnElement[bool]] = []
    if user_id is not None:
        conditions.append(transactions.c.user_id == user_id)
    if decision is not None:
        conditions.append(decisions.c.decision == decision)
    if from_ms is not None:
        conditions.append(transactions.c.timestamp_ms >= from_ms)
    if to_ms is not None:
        conditions.append(transactions.c.timestamp_ms < to_ms)
    if min_score is not None:
        conditions.append(decisions.c.score >= min_score)
    if max_score is not None:
        conditions.append(decisions.c.score <= max_score)
    if rule is not None:
        # The rule code is matched inside the stored JSON list; % and _ in it are literal.
        literal = rule.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(decisions.c.rules.like(f'%"{literal}"%', escape="\\"))
    return conditions


def alert_conditions(status: Sequence[str] | str | None) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions of an alert listing: one status, any of several, or all (None)."""
    if status is None:
        return []
    if isinstance(status, str):
        return [alerts.c.status == status]
    return [alerts.c.status.in_(list(status))]


class Reports:
    """Read-only queries over the stored transactions, decisions, alerts, labels and audit log."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- pages -----------------------------------------------------------------------------

    def get_transaction(self, transaction_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = (
                connection.execute(
                    sa.select(transactions, decisions)
                    .join(
                        decisions, decisions.c.transaction_id == transactions.c.transaction_id, isouter=True
                    )
                    .where(transactions.c.transaction_id == transaction_id)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            alert = connection.execute(
                sa.select(alerts).where(alerts.c.transaction_id == transaction_id)
            ).mappings()
            label_rows = connection.execute(
                sa.select(labels).where(labels.c.transaction_id == transaction_id).order_by(labels.c.id)
            ).mappings()
            result = transaction_record(row)
            result["decision"] = decision_record(row) if row["decision"] is not None else None
            found = alert.first()
            result["alert"] = alert_record(found) if found is not None else None
            result["labels"] = [dict(r) for r in label_rows]
            shadow = connection.execute(
                sa.select(shadow_scores.c.model_version, shadow_scores.c.probability).where(
                    shadow_scores.c.transaction_id == transaction_id
                )
            )
            result["shadow_scores"] = {version: probability for version, probability in shadow}
            return result

    def list_transactions(
        self,
        *,
        user_id: str | None = None,
        decision: str | None = None,
        from_ms: int | None = None,
        to_ms: int | None = None,
        min_score: int | None = None,
        max_score: int | None = None,
        rule: str | None = None,
        cursor: int | None = None,
        limit: int = 50,
        order: str = "newest",
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Transactions with their decisions, filtered; returns the page and the next cursor.

        ``order`` is one of :data:`ORDERS`: arrival (``newest``, ``oldest``) or a value
        (``score_desc``, ``amount_asc``, ...)."""
        query = sa.select(transactions, decisions).join(
            decisions, decisions.c.transaction_id == transactions.c.transaction_id
        )
        conditions = transaction_conditions(
            user_id=user_id, decision=decision, from_ms=from_ms, to_ms=to_ms, min_score=min_score,
            max_score=max_score, rule=rule,
        )  # fmt: skip
        if order in ("newest", "oldest"):
            # Keyset pagination on the arrival order: the cursor is the last row's seq.
            newest = order == "newest"
            if cursor is not None:
                conditions.append(transactions.c.seq < cursor if newest else transactions.c.seq > cursor)
            query = query.where(*conditions).order_by(*sort_keys(TRANSACTION_ORDERS[order]))
        else:
            # Sorted by a value: the cursor is an offset, ties broken by arrival (newest first).
            query = query.where(*conditions).order_by(*sort_keys(TRANSACTION_ORDERS[order]))
            query = query.offset(cursor or 0)
        with self.engine.connect() as connection:
            rows = connection.execute(query.limit(limit + 1)).mappings().all()
        page = rows[:limit]
        items = [{**transaction_record(r), "decision": decision_record(r)} for r in page]
        if len(rows) <= limit:
            return items, None
        return items, int(page[-1]["seq"]) if order in ("newest", "oldest") else (cursor or 0) + limit

    def user_history(self, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
        items, _ = self.list_transactions(user_id=user_id, limit=limit)
        return items

    def list_alerts(
        self,
        *,
        status: Sequence[str] | str | None = None,
        cursor: int | None = None,
        limit: int = 50,
        newest: bool = False,
    ) -> list[dict[str, Any]]:
        """Alerts, the riskiest first (score, then amount) or the newest first; ``cursor`` is an offset."""
        query = sa.select(alerts).where(*alert_conditions(status))
        # The transaction id breaks ties, so that offset pages neither repeat nor skip an alert.
        query = query.order_by(*sort_keys(ALERT_ORDERS["newest" if newest else "risk"]))
        query = query.offset(cursor or 0).limit(limit)
        with self.engine.connect() as connection:
            return [alert_record(r) for r in connection.execute(query).mappings()]

    def alert_counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            found: dict[str, int] = dict(
                connection.execute(
                    sa.select(alerts.c.status, sa.func.count()).group_by(alerts.c.status)
                ).all()
            )
        return {status: int(found.get(status, 0)) for status in ("open", "in_review", "closed")}

    # --- audit trail -----------------------------------------------------------------------

    def audit_entries(self, subject: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(query).mappings()]

    # --- statistics ------------------------------------------------------------------------

    def stats(self, now_ms: int, latency_since_ms: int = 0) -> dict[str, Any]:
        """Totals, decision mix, alerts, labelled fraud rate and a per-minute series of the last hour
        (every minute, empty ones included); latency percentiles of the last five minutes' decisions,
        those decided before ``latency_since_ms`` (a server's warm-up) left out."""
        with self.engine.connect() as connection:
            mix: dict[str, int] = dict(
                connection.execute(
                    sa.select(decisions.c.decision, sa.func.count()).group_by(decisions.c.decision)
                ).all()
            )
            alert_count = connection.execute(sa.select(sa.func.count()).select_from(alerts)).scalar()
            open_alerts = connection.execute(
                sa.select(sa.func.count()).select_from(alerts).where(alerts.c.status != "closed")
            ).scalar()
            fraud = connection.execute(
                sa.select(sa.func.count(sa.distinct(labels.c.transaction_id))).where(labels.c.is_fraud)
            ).scalar()
            labelled = connection.execute(
                sa.select(sa.func.count(sa.distinct(labels.c.transaction_id)))
            ).scalar()
            latencies = [
                float(v)
                for v in connection.execute(
                    sa.select(decisions.c.latency_ms)
                    .where(
                        decisions.c.decided_at_ms >= max(now_ms - 300_000, latency_since_ms),
                        decisions.c.latency_ms.is_not(None),
                    )
                    .order_by(decisions.c.decided_at_ms.desc())
                    .limit(5000)
                ).scalars()
            ]
        total = sum(int(v) for v in mix.values())
        latencies.sort()

        def pct(q: float) -> float | None:
            return (
                round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3) if latencies else None
            )

        return {
            "transactions": total,
            "decisions": {d: int(mix.get(d, 0)) for d in ("approve", "challenge", "review", "decline")},
            "alerts": int(alert_count or 0),
            "open_alerts": int(open_alerts or 0),
            "labelled": int(labelled or 0),
            "confirmed_fraud": int(fraud or 0),
            "fraud_rate": round(int(fraud or 0) / total, 6) if total else 0.0,
            "latency_ms": {"p50": pct(0.5), "p99": pct(0.99)},
            "per_minute": [
                {"minute_ms": b["t_ms"], "transactions": b["transactions"], "alerts": b["alerts"]}
                for b in self.series(now_ms, 3_600_000, 60_000)
            ],
        }

    def series(self, now_ms: int, window_ms: int, bucket_ms: int) -> list[dict[str, int]]:
        """Transactions and alerts per bucket over the last ``window_ms``, oldest first, empty
        buckets included (a chart needs the gaps)."""
        first = (now_ms - window_ms) // bucket_ms + 1
        bucket = (decisions.c.decided_at_ms / bucket_ms).cast(sa.BigInteger)
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(bucket, sa.func.count(), sa.func.sum(sa.cast(decisions.c.is_alert, sa.Integer)))
                .where(decisions.c.decided_at_ms >= first * bucket_ms)
                .group_by(bucket)
            ).all()
        counts = {int(b): (int(n), int(a or 0)) for b, n, a in rows}
        last = now_ms // bucket_ms
        return [
            {
                "t_ms": b * bucket_ms,
                "transactions": counts.get(b, (0, 0))[0],
                "alerts": counts.get(b, (0, 0))[1],
            }
            for b in range(first, last + 1)
        ]

    def rule_performance(self, since_ms: int, limit: int = 200_000) -> dict[str, dict[str, int]]:
        """Per rule code, over decisions since ``since_ms``: hits (acting and shadow), and of those
        hits how many were labelled and how many confirmed fraud (a transaction's latest label)."""
        latest = (
            sa.select(labels.c.transaction_id, sa.func.max(labels.c.id).label("id"))
            .group_by(labels.c.transaction_id)
            .subquery()
        )
        verdicts = (
            sa.select(labels.c.transaction_id, labels.c.is_fraud)
            .join(latest, latest.c.id == labels.c.id)
            .subquery()
        )
        query = (
            sa.select(decisions.c.rules, decisions.c.shadow_rules, verdicts.c.is_fraud)
            .join(verdicts, verdicts.c.transaction_id == decisions.c.transaction_id, isouter=True)
            .where(decisions.c.decided_at_ms >= since_ms)
            .where(sa.or_(decisions.c.rules != "[]", decisions.c.shadow_rules != "[]"))
            .order_by(decisions.c.decided_at_ms.desc())
            .limit(limit)
        )
        found: dict[str, dict[str, int]] = {}
        with self.engine.connect() as connection:
            for fired, shadow, is_fraud in connection.execute(query):
                for code in (*json.loads(fired), *json.loads(shadow)):
                    counts = found.setdefault(code, {"hits": 0, "labelled": 0, "fraud": 0})
                    counts["hits"] += 1
                    if is_fraud is not None:
                        counts["labelled"] += 1
                        counts["fraud"] += int(bool(is_fraud))
        return found
