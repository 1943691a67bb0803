"""Cases: the open alerts on one entity (card, user or device) within a window, worked as one unit with
a status, an assignee, a priority and due time, a comment thread and one verdict that labels them all.

Alerts join cases in the same database transaction that stores them (`Cases.attach_to_cases`, called
by `Store.write_scored` in every runtime), so no stored alert is ever outside a case.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from fraudstream.errors import FraudstreamError
from fraudstream.storage.audit import record_audit, record_audits
from fraudstream.storage.tables import alerts, audit_log, case_comments, cases, labels, transactions

if TYPE_CHECKING:
    from fraudstream.config import Settings

__all__ = [
    "CASE_ENTITIES",
    "CASE_STATUSES",
    "PRIORITIES",
    "VERDICTS",
    "CaseClosedError",
    "CasePolicy",
    "CaseVerdictError",
    "Cases",
]

#: The entities a case can gather alerts on; a transaction without the configured one (no card, no
#: device) falls back to its user, which every transaction has.
CASE_ENTITIES = ("card", "user", "device")
CASE_STATUSES = ("open", "in_review", "closed")
#: Riskiest first.
PRIORITIES = ("critical", "high", "medium", "low")
VERDICTS = ("fraud", "legit")

#: The `transactions` column holding each entity's key.
_ENTITY_COLUMNS = {"card": "card_fingerprint", "user": "user_id", "device": "device_id"}
_HOUR_MS = 3_600_000


class CaseClosedError(FraudstreamError):
    """A change asked of a case that is closed already."""


class CaseVerdictError(FraudstreamError):
    """A verdict (or per-transaction verdict map) that does not fit the case; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class CasePolicy:
    """How alerts form cases: on which entity, within which window, and how a case's riskiest alert
    sets its priority, whose SLA sets its due time.

    >>> policy = CasePolicy()
    >>> policy.priority(93), policy.priority(75), policy.priority(12)
    ('critical', 'high', 'low')
    >>> policy.due(opened_at_ms=0, priority="high") // 3_600_000
    4
    """

    entity: str = "card"
    window_ms: int = 24 * _HOUR_MS
    #: The lowest score of each priority but ``low`` (which takes the rest).
    scores: Mapping[str, float] = field(
        default_factory=lambda: {"critical": 90.0, "high": 75.0, "medium": 50.0}
    )
    #: How long a case of each priority may wait for its verdict.
    sla_ms: Mapping[str, int] = field(
        default_factory=lambda: {
            "critical": _HOUR_MS,
            "high": 4 * _HOUR_MS,
            "medium": 24 * _HOUR_MS,
            "low": 72 * _HOUR_MS,
        }
    )

    @classmethod
    def of(cls, settings: Settings) -> CasePolicy:
        """The policy a deployment configured (``FRAUDSTREAM_CASE_*``)."""
        from fraudstream.core.features.spec import parse_duration_ms

        return cls(
            entity=settings.case_entity,
            window_ms=parse_duration_ms(settings.case_window),
            scores=dict(settings.case_priority_scores),
            sla_ms={p: parse_duration_ms(d) for p, d in settings.case_sla.items()},
        )

    def priority(self, risk: float) -> str:
        for name in PRIORITIES[:-1]:
            if risk >= self.scores[name]:
                return name
        return PRIORITIES[-1]

    def due(self, *, opened_at_ms: int, priority: str) -> int:
        return opened_at_ms + self.sla_ms[priority]

    def entity_of(self, row: Mapping[str, Any] | RowMapping) -> tuple[str, str]:
        """(kind, key) of the entity a stored transaction's alert is grouped on."""
        key = row[_ENTITY_COLUMNS[self.entity]]
        return (self.entity, str(key)) if key else ("user", str(row["user_id"]))


#: Case ids need to be unique, not secret: a generator seeded once from the system's randomness
#: costs nothing per case, where uuid4 reads the system's randomness each time.
_IDS = random.Random(os.urandom(16))


def _new_case_id() -> str:
    return f"case_{_IDS.getrandbits(64):016x}"


def _case_record(row: Mapping[str, Any] | RowMapping, now_ms: int | None = None) -> dict[str, Any]:
    record = dict(row)
    if now_ms is not None:
        record["overdue"] = record["status"] != "closed" and int(record["due_at_ms"]) < now_ms
    return record


def _marks(connection: Connection, count: int) -> str:
    """``count`` parameter markers in the driver's own style (SQLite ``?``, psycopg ``%s``)."""
    return ", ".join(["?" if connection.dialect.paramstyle == "qmark" else "%s"] * count)


def _driver(connection: Connection, statement: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows of a statement in the driver's SQL (see `attach_to_cases`)."""
    return [tuple(row) for row in connection.exec_driver_sql(statement, tuple(parameters)).fetchall()]


def _driver_many(connection: Connection, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        connection.exec_driver_sql(statement, list(rows))


class Cases:
    """Case writes and reads, mixed into `Store`."""

    engine: Engine
    case_policy: CasePolicy

    if TYPE_CHECKING:

        @staticmethod
        def _enrich(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]: ...

    # --- forming cases (inside the scored write) -----------------------------------------------

    def attach_to_cases(self, connection: Connection, transaction_ids: Sequence[str]) -> None:
        """Put each alert of ``transaction_ids`` not yet in a case into the open case of its entity
        opened within the window before it, else into a new case; raise the case's risk, priority and
        due time when a riskier alert joins. Runs in the caller's transaction (the one storing the
        alerts): six statements at most per stored group, whatever its size, none without alerts,
        written in the driver's own SQL as the rest of the scored write is (SQLAlchemy's statement
        building tripled their cost)."""
        policy = self.case_policy
        ids = list(dict.fromkeys(transaction_ids))
        found = _driver(
            connection,
            "SELECT a.transaction_id, a.score, a.created_at_ms, t.card_fingerprint, t.user_id, t.device_id "
            "FROM alerts AS a JOIN transactions AS t ON t.transaction_id = a.transaction_id "
            f"WHERE a.transaction_id IN ({_marks(connection, len(ids))}) AND a.case_id IS NULL "
            "ORDER BY a.created_at_ms, t.seq",
            ids,
        )
        if not found:
            return
        rows = [
            {"transaction_id": r[0], "score": int(r[1]), "at": int(r[2]),
             "card_fingerprint": r[3], "user_id": r[4], "device_id": r[5]}
            for r in found
        ]  # fmt: skip
        entities = [policy.entity_of(row) for row in rows]
        open_cases = self._open_cases(connection, entities, min(r["at"] for r in rows) - policy.window_ms)
        new: dict[str, dict[str, Any]] = {}
        changed: dict[str, dict[str, Any]] = {}
        joined: list[tuple[str, str]] = []
        audit: list[dict[str, Any]] = []
        for row, entity in zip(rows, entities):
            at, risk, transaction_id = row["at"], row["score"], row["transaction_id"]
            case = open_cases.get(entity)
            if case is None or case["opened_at_ms"] < at - policy.window_ms:
                priority = policy.priority(risk)
                case = {
                    "id": _new_case_id(), "entity_kind": entity[0], "entity_id": entity[1],
                    "status": "open", "priority": priority, "risk": risk, "assignee": None,
                    "verdict": None, "due_at_ms": policy.due(opened_at_ms=at, priority=priority),
                    "opened_at_ms": at, "updated_at_ms": at, "closed_at_ms": None,
                }  # fmt: skip
                new[case["id"]] = open_cases[entity] = case
                details = {"entity_kind": entity[0], "entity_id": entity[1]}
                action = "open_case"
            else:
                if risk > case["risk"]:
                    case["risk"], case["priority"] = risk, policy.priority(risk)
                    case["due_at_ms"] = policy.due(
                        opened_at_ms=case["opened_at_ms"], priority=case["priority"]
                    )
                case["updated_at_ms"] = max(case["updated_at_ms"], at)
                if case["id"] not in new:
                    changed[case["id"]] = case
                details, action = {}, "join_case"
            joined.append((case["id"], transaction_id))
            details = {
                "transaction_id": transaction_id,
                "score": risk,
                "priority": case["priority"],
                **details,
            }
            audit.append(
                {"at_ms": at, "actor": "system", "action": action, "subject": case["id"], "details": details}
            )
        if new:
            columns = tuple(c.name for c in cases.c)
            _driver_many(
                connection,
                f"INSERT INTO cases ({', '.join(columns)}) VALUES ({_marks(connection, len(columns))})",
                [tuple(case[c] for c in columns) for case in new.values()],
            )
        mark = _marks(connection, 1)
        if changed:
            _driver_many(
                connection,
                f"UPDATE cases SET risk = {mark}, priority = {mark}, due_at_ms = {mark}, "
                f"updated_at_ms = {mark} WHERE id = {mark}",
                [
                    (c["risk"], c["priority"], c["due_at_ms"], c["updated_at_ms"], c["id"])
                    for c in changed.values()
                ],
            )
        by_id = {case["id"]: case for case in open_cases.values()}
        # An alert joining a case someone works is theirs too (status in_review); else it stays open.
        _driver_many(
            connection,
            f"UPDATE alerts SET case_id = {mark}, status = COALESCE({mark}, status), "
            f"assignee = COALESCE({mark}, assignee) WHERE transaction_id = {mark}",
            [
                (
                    case_id,
                    "in_review" if by_id[case_id]["assignee"] else None,
                    by_id[case_id]["assignee"],
                    tid,
                )
                for case_id, tid in joined
            ],
        )
        record_audits(connection, audit)

    @staticmethod
    def _open_cases(
        connection: Connection, entities: Sequence[tuple[str, str]], since_ms: int
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The newest open (or in review) case of each of ``entities`` opened since ``since_ms``."""
        by_kind: dict[str, list[str]] = {}
        for kind, key in dict.fromkeys(entities):
            by_kind.setdefault(kind, []).append(key)
        columns = tuple(c.name for c in cases.c)
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for kind, keys in by_kind.items():  # one kind, or two (a transaction without the entity: its user)
            rows = _driver(
                connection,
                f"SELECT {', '.join(columns)} FROM cases WHERE entity_kind = {_marks(connection, 1)} "
                f"AND entity_id IN ({_marks(connection, len(keys))}) AND status <> 'closed' "
                f"AND opened_at_ms >= {_marks(connection, 1)} ORDER BY opened_at_ms",
                [kind, *keys, since_ms],
            )
            for row in rows:
                case = dict(zip(columns, row))
                for name in ("risk", "due_at_ms", "opened_at_ms", "updated_at_ms"):
                    case[name] = int(case[name])
                found[(case["entity_kind"], case["entity_id"])] = case  # the newest wins
        return found

    # --- analysts' changes -------------------------------------------------------------------

    def assign_case(self, case_id: str, assignee: str, *, actor: str, now_ms: int) -> dict[str, Any]:
        """Give a case (and its alerts still open) to ``assignee``: status in_review. Raises KeyError
        for no such case, CaseClosedError for a closed one."""
        with self.engine.begin() as connection:
            case = self._case_for_change(connection, case_id)
            connection.execute(
                sa.update(cases)
                .where(cases.c.id == case_id)
                .values(status="in_review", assignee=assignee, updated_at_ms=now_ms)
            )
            connection.execute(
                sa.update(alerts)
                .where(alerts.c.case_id == case_id, alerts.c.status != "closed")
                .values(status="in_review", assignee=assignee, updated_at_ms=now_ms)
            )
            details = {"assignee": assignee, "previous": case["assignee"]}
            record_audit(connection, actor, "assign_case", case_id, details, now_ms)
        return {**case, "status": "in_review", "assignee": assignee, "updated_at_ms": now_ms}

    def comment_case(self, case_id: str, body: str, *, author: str, now_ms: int) -> dict[str, Any]:
        """Add a comment to a case's thread (closed cases too: a note after the verdict is still a
        note); the comment as stored. Raises KeyError for no such case."""
        with self.engine.begin() as connection:
            if connection.execute(sa.select(cases.c.id).where(cases.c.id == case_id)).first() is None:
                raise KeyError(case_id)
            comment_id = connection.execute(
                sa.insert(case_comments)
                .values(case_id=case_id, at_ms=now_ms, author=author, body=body)
                .returning(case_comments.c.id)
            ).scalar_one()
            connection.execute(sa.update(cases).where(cases.c.id == case_id).values(updated_at_ms=now_ms))
            details = {"comment_id": int(comment_id), "length": len(body)}
            record_audit(connection, author, "comment_case", case_id, details, now_ms)
        return {"id": int(comment_id), "case_id": case_id, "at_ms": now_ms, "author": author, "body": body}

    def close_case(
        self,
        case_id: str,
        *,
        verdict: str | None,
        verdicts: Mapping[str, str],
        note: str | None,
        actor: str,
        now_ms: int,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Close a case with one verdict for all its transactions, or one per transaction
        (``verdicts``, the rest taking ``verdict``): its alerts are closed with their verdicts and each
        becomes a label, as an alert's review does. One database transaction, audited. Returns the
        closed case and the labels enriched for the engine.

        Raises KeyError (no such case), CaseClosedError, or CaseVerdictError naming the field."""
        with self.engine.begin() as connection:
            case = self._case_for_change(connection, case_id)
            members = list(
                connection.execute(
                    sa.select(alerts.c.transaction_id)
                    .where(alerts.c.case_id == case_id)
                    .order_by(alerts.c.created_at_ms, alerts.c.transaction_id)
                ).scalars()
            )
            outsiders = sorted(set(verdicts) - set(members))
            if outsiders:
                raise CaseVerdictError(
                    f"verdicts.{outsiders[0]}",
                    f"is not a transaction of case {case_id}; its transactions: {members}",
                )
            missing = [t for t in members if t not in verdicts]
            if missing and verdict is None:
                raise CaseVerdictError(
                    "verdict", f"is required: give one for the whole case, or verdicts for {missing} too"
                )
            chosen = {t: verdicts.get(t, verdict) for t in members}
            for value in VERDICTS:
                ids = [t for t, v in chosen.items() if v == value]
                if ids:
                    connection.execute(
                        sa.update(alerts)
                        .where(alerts.c.transaction_id.in_(ids))
                        .values(
                            status="closed", verdict=value, note=note, updated_at_ms=now_ms,
                            assignee=sa.func.coalesce(alerts.c.assignee, actor),
                        )
                    )  # fmt: skip
            stored = [
                {
                    "transaction_id": t,
                    "is_fraud": v == "fraud",
                    "label_time_ms": now_ms,
                    "source": "review",
                    "note": note,
                    "actor": actor,
                }
                for t, v in chosen.items()
            ]
            if stored:
                connection.execute(sa.insert(labels), stored)
            # One verdict for the case: fraud when any of its transactions was.
            overall = "fraud" if "fraud" in chosen.values() else "legit"
            closed = {
                "status": "closed", "verdict": overall, "closed_at_ms": now_ms, "updated_at_ms": now_ms,
                "assignee": case["assignee"] or actor,
            }  # fmt: skip
            connection.execute(sa.update(cases).where(cases.c.id == case_id).values(**closed))
            counts = {v: sum(1 for x in chosen.values() if x == v) for v in VERDICTS}
            details = {"verdict": overall, "labels": counts, "note": note}
            record_audit(connection, actor, "close_case", case_id, details, now_ms)
            return {**case, **closed}, self._enrich(connection, stored)

    @staticmethod
    def settle_case_of(connection: Connection, transaction_id: str, *, actor: str, now_ms: int) -> None:
        """Close the case of ``transaction_id``'s alert once an alert-by-alert review has closed every
        alert of it (verdict fraud when any was fraud, legit when all were legit, else none): a case
        with nothing left to work leaves the queue. Runs in the review's own transaction."""
        case_id = connection.execute(
            sa.select(alerts.c.case_id).where(alerts.c.transaction_id == transaction_id)
        ).scalar_one_or_none()
        if case_id is None:
            return
        members = connection.execute(
            sa.select(alerts.c.status, alerts.c.verdict).where(alerts.c.case_id == case_id)
        ).all()
        if any(status != "closed" for status, _ in members):
            return
        verdicts = {verdict for _, verdict in members}
        overall = "fraud" if "fraud" in verdicts else "legit" if verdicts == {"legit"} else None
        settled = connection.execute(
            sa.update(cases)
            .where(cases.c.id == case_id, cases.c.status != "closed")
            .values(status="closed", verdict=overall, closed_at_ms=now_ms, updated_at_ms=now_ms)
        ).rowcount
        if settled:
            details = {"verdict": overall, "settled_by": transaction_id}
            record_audit(connection, actor, "close_case", case_id, details, now_ms)

    @staticmethod
    def _case_for_change(connection: Connection, case_id: str) -> dict[str, Any]:
        row = connection.execute(sa.select(cases).where(cases.c.id == case_id)).mappings().first()
        if row is None:
            raise KeyError(case_id)
        if row["status"] == "closed":
            raise CaseClosedError(
                f"case {case_id} is closed (verdict {row['verdict']}); a closed case cannot change"
            )
        return dict(row)

    # --- reads -------------------------------------------------------------------------------

    def list_cases(
        self,
        *,
        now_ms: int,
        status: Sequence[str] | None = None,
        assignee: str | None = None,
        priority: Sequence[str] | None = None,
        entity: str | None = None,
        cursor: int = 0,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Cases, the soonest due first, then the riskiest; each with its alert count and whether it
        is overdue at ``now_ms``. ``entity`` matches the entity's key (a card fingerprint, a user or
        device id); ``cursor`` is an offset."""
        counts = (
            sa.select(alerts.c.case_id, sa.func.count().label("alert_count"))
            .where(alerts.c.case_id.is_not(None))
            .group_by(alerts.c.case_id)
            .subquery()
        )
        query = sa.select(cases, sa.func.coalesce(counts.c.alert_count, 0).label("alert_count")).join(
            counts, counts.c.case_id == cases.c.id, isouter=True
        )
        if status:
            query = query.where(cases.c.status.in_(list(status)))
        if assignee is not None:
            query = query.where(cases.c.assignee == assignee)
        if priority:
            query = query.where(cases.c.priority.in_(list(priority)))
        if entity is not None:
            query = query.where(cases.c.entity_id == entity)
        query = query.order_by(cases.c.due_at_ms, cases.c.risk.desc(), cases.c.opened_at_ms, cases.c.id)
        with self.engine.connect() as connection:
            rows = connection.execute(query.offset(cursor).limit(limit)).mappings().all()
            # A card is shown by its last four digits, as the analyst knows it (one query per page).
            cards = sorted({r["entity_id"] for r in rows if r["entity_kind"] == "card"})
            last4: dict[str, str] = {}
            if cards:
                last4 = dict(
                    connection.execute(
                        sa.select(transactions.c.card_fingerprint, sa.func.max(transactions.c.card_last4))
                        .where(transactions.c.card_fingerprint.in_(cards))
                        .group_by(transactions.c.card_fingerprint)
                    ).all()
                )
        return [{**_case_record(r, now_ms), "card_last4": last4.get(r["entity_id"])} for r in rows]

    def get_case(self, case_id: str, *, now_ms: int) -> dict[str, Any] | None:
        """One case with its alerts (riskiest first, each with its transaction's summary and reasons),
        its comments (oldest first) and its audit entries (newest first); None if there is none."""
        summary = [
            transactions.c[c]
            for c in ("timestamp_ms", "currency", "merchant_id", "merchant_category", "channel", "country",
                      "card_last4", "device_id", "ip", "location")
            if c in transactions.c
        ]  # fmt: skip
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(cases).where(cases.c.id == case_id)).mappings().first()
            if row is None:
                return None
            members = connection.execute(
                sa.select(alerts, *summary)
                .join(transactions, transactions.c.transaction_id == alerts.c.transaction_id)
                .where(alerts.c.case_id == case_id)
                .order_by(alerts.c.score.desc(), alerts.c.created_at_ms)
            ).mappings()
            comments = connection.execute(
                sa.select(case_comments)
                .where(case_comments.c.case_id == case_id)
                .order_by(case_comments.c.at_ms, case_comments.c.id)
            ).mappings()
            audit = connection.execute(
                sa.select(audit_log)
                .where(audit_log.c.subject == case_id)
                .order_by(audit_log.c.id.desc())
                .limit(200)
            ).mappings()
            found = _case_record(row, now_ms)
            found["alerts"] = [{**r, "reasons": json.loads(r["reasons"])} for r in members]
            found["alert_count"] = len(found["alerts"])
            found["comments"] = [dict(c) for c in comments]
            found["audit"] = [{**a, "details": json.loads(a["details"] or "{}")} for a in audit]
        return found

    def case_counts(self) -> dict[str, int]:
        """How many cases are open, in review and closed."""
        with self.engine.connect() as connection:
            found: dict[str, int] = dict(
                connection.execute(sa.select(cases.c.status, sa.func.count()).group_by(cases.c.status)).all()
            )
        return {status: int(found.get(status, 0)) for status in CASE_STATUSES}
