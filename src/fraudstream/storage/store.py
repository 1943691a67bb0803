"""What the runtimes write and read back (scored transactions, labels, rules, lists, snapshots, keys,
audit), set-based and parameterized, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from fraudstream.errors import ConfigError, SinkError
from fraudstream.storage.audit import AuditTrail, record_audit
from fraudstream.storage.cases import CasePolicy, Cases
from fraudstream.storage.drift import DriftCounts
from fraudstream.storage.export_pages import ExportPages
from fraudstream.storage.jobs import JobRuns
from fraudstream.storage.reports import Reports
from fraudstream.storage.rows import EVENT_COLUMNS, decision_record
from fraudstream.storage.snoozes import Snoozes
from fraudstream.storage.tables import (
    alerts,
    api_keys,
    decisions,
    labels,
    lists,
    rule_sets,
    shadow_scores,
    sink_cursors,
    snapshots,
    transactions,
)
from fraudstream.storage.webhooks import Webhooks

__all__ = ["LOG_COLUMNS", "ROLES", "Store"]

ROLES = ("admin", "analyst", "ingest", "viewer")

#: The columns of the log the extra sinks read (``Store.log_after``): a stored transaction's, then its
#: decision's but for the repeated ``transaction_id``.
LOG_COLUMNS = tuple(c.name for c in transactions.c) + tuple(
    c.name for c in decisions.c if c.name != "transaction_id"
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (dashboard, stats) run while the scorer writes; synchronous=FULL makes each
    # commit durable on power loss, which is the promise behind every returned decision.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class Store(Reports, Webhooks, Cases, ExportPages, JobRuns, AuditTrail, DriftCounts, Snoozes):
    """One database behind fraudstream: transactions, decisions, alerts, labels, rules, audit.

    Here the writes and what the runtimes read back; the dashboard's and the listings' queries come
    from :class:`Reports`, so ``store.stats(...)`` and ``store.list_transactions(...)`` still work.
    """

    def __init__(self, url: str, *, case_policy: CasePolicy | None = None) -> None:
        self.url = url
        #: How stored alerts form cases (`Cases.attach_to_cases`): the defaults unless configured.
        self.case_policy = case_policy or CasePolicy()
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        super().__init__(sa.create_engine(url, **kwargs))
        self._statements: dict[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]] = {}
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def dialect(self) -> str:
        return str(self.engine.dialect.name)

    def upgrade(self) -> None:
        """Run the versioned migrations up to the newest; a no-op when already there."""
        config = Config()
        config.set_main_option("script_location", str(resources.files("fraudstream.storage") / "migrations"))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return True

    def check_writable(self) -> None:
        """Raise SinkError unless the database takes a committed write (the migration version, set to
        itself): one that answers reads but refuses writes (a read-only file, directory or replica)
        cannot store decisions. A rolled-back write would not tell: SQLite writes nothing for it. The
        error names the driver's reason, never a statement."""
        try:
            with self.engine.begin() as connection:
                connection.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
            raise SinkError(f"the database refuses writes: {reason}") from None

    def close(self) -> None:
        self.engine.dispose()

    def _placeholders(self, count: int) -> str:
        """``count`` parameter markers in the driver's own style (SQLite ``?``, psycopg ``%s``)."""
        return ", ".join(["?" if self.engine.dialect.paramstyle == "qmark" else "%s"] * count)

    def _bulk_insert_ignore(self, table: sa.Table, names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        """The hot path's INSERT ... ON CONFLICT DO NOTHING (SQLite and PostgreSQL both read it) in
        the driver's own placeholders, for executemany with plain tuples: per group commit it skips
        SQLAlchemy's per-row parameter processing, half of a small group's write time. Column names
        come from our own row builders, checked against the table, and are quoted."""
        key = (table.name, names)
        found = self._statements.get(key)
        if found is None:
            unknown = [n for n in names if n not in table.columns]
            if unknown:
                raise SinkError(f"no columns {unknown} in table {table.name}")
            quote = self.engine.dialect.identifier_preparer.quote
            found = (
                f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
                f"VALUES ({self._placeholders(len(names))}) ON CONFLICT DO NOTHING",
                names,
            )
            self._statements[key] = found
        return found

    def _insert_ignore(self, table: sa.Table) -> Any:
        """INSERT that skips rows whose key already exists: a replay never duplicates."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            return postgresql_insert(table).on_conflict_do_nothing()
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()

    # --- scoring ---------------------------------------------------------------------------

    def existing(self, transaction_ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """For ids already stored: their body hash and stored decision record."""
        if not transaction_ids:
            return {}
        wanted = tuple(set(transaction_ids))
        # Almost every id is new: a bare indexed lookup in the driver's placeholders answers that
        # case for a fraction of a built query's cost; only ids found fetch their stored decision.
        marks = self._placeholders(len(wanted))
        lookup = f"SELECT transaction_id FROM transactions WHERE transaction_id IN ({marks})"
        with self.engine.connect() as connection:
            found = [row[0] for row in connection.exec_driver_sql(lookup, wanted)]
            if not found:
                return {}
            query = (
                sa.select(transactions.c.transaction_id, transactions.c.body_hash, decisions)
                .join(decisions, decisions.c.transaction_id == transactions.c.transaction_id)
                .where(transactions.c.transaction_id.in_(found))
            )
            rows = connection.execute(query).mappings().all()
        return {r["transaction_id"]: (r["body_hash"], decision_record(r)) for r in rows}

    def write_scored(
        self,
        transaction_rows: Sequence[Mapping[str, Any]],
        decision_rows: Sequence[Mapping[str, Any]],
        alert_rows: Sequence[Mapping[str, Any]],
        shadow_rows: Sequence[Mapping[str, Any]] = (),
        *,
        positions: bool = True,
    ) -> tuple[int, int] | None:
        """Transactions, their decisions, alerts and challengers' shadow scores in ONE database
        transaction; ids seen before are skipped, so a retried or replayed write never duplicates.

        Returns the log positions (first and last ``seq``) the transactions took when every one of
        them was new and ``positions`` asks for them, else None: the sinks then take the rows from
        memory, not from the log."""
        written: tuple[int, int] | None = None
        try:
            with self.engine.begin() as connection:
                for table, rows in (
                    (shadow_scores, shadow_rows),
                    (transactions, transaction_rows),
                    (decisions, decision_rows),
                    (alerts, alert_rows),
                ):
                    if rows:
                        statement, names = self._bulk_insert_ignore(table, tuple(rows[0]))
                        try:
                            values = [tuple(r[n] for n in names) for r in rows]
                        except KeyError as exc:  # rolled back with the rest of the group
                            raise SinkError(f"a {table.name} row has no value for {exc}") from None
                        inserted = connection.exec_driver_sql(statement, values).rowcount
                        if positions and table is transactions and inserted == len(rows):
                            # One writer: the rows just inserted took the newest positions.
                            last = connection.exec_driver_sql(
                                "SELECT max(seq) FROM transactions"
                            ).scalar_one()
                            written = (int(last) - inserted + 1, int(last))
                if alert_rows:
                    self.attach_to_cases(connection, [r["transaction_id"] for r in alert_rows])
        except sa.exc.SQLAlchemyError as exc:
            raise SinkError(f"could not store {len(transaction_rows)} scored transactions: {exc}") from exc
        return written

    def events_after(self, seq: int, limit: int) -> list[dict[str, Any]]:
        """Stored transactions after ``seq`` in log order, for replay after a snapshot."""
        event_columns = (transactions.c[name] for name in EVENT_COLUMNS)
        columns = [transactions.c.seq, *event_columns, transactions.c.received_at_ms]
        query = sa.select(*columns).where(transactions.c.seq > seq).order_by(transactions.c.seq).limit(limit)
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(query).mappings()]

    def last_seq(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    sa.select(sa.func.coalesce(sa.func.max(transactions.c.seq), 0))
                ).scalar_one()
            )

    # --- the log the extra sinks read -------------------------------------------------------

    def log_after(
        self, seq: int, limit: int, *, until: int, alerts_only: bool = False
    ) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """Stored transactions after ``seq`` up to ``until`` in log order, each with its decision's
        columns (the decision's own ``transaction_id`` aside), only those that raised an alert if
        ``alerts_only``: the column names and the rows as the driver's tuples (SQLite's flags are 0
        and 1), which the lake, Redis and webhook sinks hand over. Read through the driver's cursor,
        as the hot path writes: a sink reads thousands of rows a second beside the scorer, and
        SQLAlchemy's rows cost it twice the time.

        The log is in commit order because one thread writes it (the scoring thread, or in Kafka mode
        the decision sink), which is what lets a cursor on ``seq`` never skip a row."""
        names = LOG_COLUMNS
        quote = self.engine.dialect.identifier_preparer.quote
        selected = ", ".join(
            f"t.{quote(n)}" if n in transactions.c else f"d.{quote(n)}" for n in names
        )  # fmt: skip
        mark = self._placeholders(1)
        statement = (
            f"SELECT {selected} FROM transactions AS t "
            "JOIN decisions AS d ON d.transaction_id = t.transaction_id "
            f"WHERE t.seq > {mark} AND t.seq <= {mark}{' AND d.is_alert' if alerts_only else ''} "
            f"ORDER BY t.seq LIMIT {int(limit)}"
        )
        with self.engine.connect() as connection:
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(statement, (seq, until))
                return names, list(cursor.fetchall())
            finally:
                cursor.close()

    def sink_cursor(self, sink: str) -> int | None:
        """The last log position ``sink`` has durably handed over; None for a sink never run here."""
        with self.engine.connect() as connection:
            found = connection.execute(
                sa.select(sink_cursors.c.last_seq).where(sink_cursors.c.sink == sink)
            ).scalar_one_or_none()
        return None if found is None else int(found)

    def save_sink_cursor(self, sink: str, last_seq: int, now_ms: int) -> None:
        with self.engine.begin() as connection:
            updated = connection.execute(
                sa.update(sink_cursors)
                .where(sink_cursors.c.sink == sink)
                .values(last_seq=last_seq, updated_at_ms=now_ms)
            ).rowcount
            if not updated:
                connection.execute(
                    sa.insert(sink_cursors).values(sink=sink, last_seq=last_seq, updated_at_ms=now_ms)
                )

    # --- analyst work ----------------------------------------------------------------------

    def review_alert(
        self,
        transaction_id: str,
        *,
        verdict: str | None,
        note: str | None,
        actor: str,
        status: str,
        now_ms: int,
    ) -> dict[str, Any] | None:
        """Set an alert's status (and verdict); a verdict also records a label. One transaction,
        audited. Returns the label row enriched for the engine, or None when there is no verdict."""
        with self.engine.begin() as connection:
            found = connection.execute(
                sa.update(alerts)
                .where(alerts.c.transaction_id == transaction_id)
                .values(
                    status=status,
                    verdict=verdict,
                    note=note,
                    updated_at_ms=now_ms,
                    assignee=sa.func.coalesce(alerts.c.assignee, actor),
                )
            ).rowcount
            if not found:
                raise KeyError(transaction_id)
            details = {"verdict": verdict, "status": status, "note": note}
            self._audit(connection, actor, "review_alert", transaction_id, details, now_ms)
            if status == "closed":
                self.settle_case_of(connection, transaction_id, actor=actor, now_ms=now_ms)
            if verdict is None:
                return None
            label = {
                "transaction_id": transaction_id,
                "is_fraud": verdict == "fraud",
                "label_time_ms": now_ms,
                "source": "review",
                "note": note,
                "actor": actor,
            }
            connection.execute(sa.insert(labels), [label])
            return self._enrich(connection, [label])[0]

    def assign_alert(self, transaction_id: str, assignee: str, actor: str, now_ms: int) -> None:
        """Give an alert to ``assignee`` (status in_review); ``actor`` did it, and is audited."""
        with self.engine.begin() as connection:
            found = connection.execute(
                sa.update(alerts)
                .where(alerts.c.transaction_id == transaction_id)
                .values(status="in_review", assignee=assignee, updated_at_ms=now_ms)
            ).rowcount
            if not found:
                raise KeyError(transaction_id)
            self._audit(connection, actor, "assign_alert", transaction_id, {"assignee": assignee}, now_ms)

    def add_labels(
        self, rows: Sequence[Mapping[str, Any]], *, source: str, actor: str, now_ms: int
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Store labels for known transactions; return them enriched for the engine, and unknown ids."""
        with self.engine.begin() as connection:
            ids = [r["transaction_id"] for r in rows]
            known = set(
                connection.execute(
                    sa.select(transactions.c.transaction_id).where(transactions.c.transaction_id.in_(ids))
                ).scalars()
            )
            stored = [
                {
                    "transaction_id": r["transaction_id"],
                    "is_fraud": bool(r["is_fraud"]),
                    "label_time_ms": int(r["label_time"]),
                    "source": source,
                    "note": r.get("note"),
                    "actor": actor,
                }
                for r in rows
                if r["transaction_id"] in known
            ]
            if stored:
                connection.execute(sa.insert(labels), stored)
                self._audit(connection, actor, "add_labels", None, {"count": len(stored)}, now_ms)
            return self._enrich(connection, stored), sorted(set(ids) - known)

    def labels_after(self, label_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(labels).where(labels.c.id > label_id).order_by(labels.c.id))
            return self._enrich(connection, [dict(r) for r in rows.mappings()])

    def last_label_id(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(sa.select(sa.func.coalesce(sa.func.max(labels.c.id), 0))).scalar_one()
            )

    @staticmethod
    def _enrich(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Add the labelled transactions' time and entity keys, which the engine needs."""
        if not rows:
            return []
        keys = ("user_id", "merchant_id", "terminal_id", "card_fingerprint", "device_id", "ip")
        found = connection.execute(
            sa.select(
                transactions.c.transaction_id, transactions.c.timestamp_ms, *(transactions.c[k] for k in keys)
            ).where(transactions.c.transaction_id.in_([r["transaction_id"] for r in rows]))
        ).mappings()
        by_id = {r["transaction_id"]: r for r in found}
        enriched = []
        for row in rows:
            tx = by_id[row["transaction_id"]]
            enriched.append(
                {
                    "transaction_id": row["transaction_id"],
                    "is_fraud": bool(row["is_fraud"]),
                    "label_time": int(row["label_time_ms"]),
                    "transaction_time": int(tx["timestamp_ms"]),
                    **{k: tx[k] for k in keys},
                }
            )
        return enriched

    # --- rules, lists, snapshots, keys, audit ----------------------------------------------

    def save_ruleset(
        self,
        version: int,
        text: str,
        actor: str,
        now_ms: int,
        *,
        action: str = "save_rules",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Store ``text`` as rule set ``version`` and make it the active one; audited as ``action``
        (``rollback_rules`` with ``details`` {"restored": n} when it restores version n)."""
        with self.engine.begin() as connection:
            connection.execute(sa.update(rule_sets).values(active=False))
            connection.execute(
                self._insert_ignore(rule_sets),
                [{"version": version, "yaml": text, "created_at_ms": now_ms, "actor": actor, "active": True}],
            )
            connection.execute(sa.update(rule_sets).where(rule_sets.c.version == version).values(active=True))
            self._audit(connection, actor, action, f"version {version}", details or {}, now_ms)

    def active_ruleset(self) -> tuple[int, str] | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(rule_sets).where(rule_sets.c.active)).mappings().first()
        return (int(row["version"]), str(row["yaml"])) if row is not None else None

    def ruleset_yaml(self, version: int) -> str | None:
        """The YAML of a stored rule set version, or None when there is no such version."""
        query = sa.select(rule_sets.c.yaml).where(rule_sets.c.version == version)
        with self.engine.connect() as connection:
            found = connection.execute(query).scalar()
        return None if found is None else str(found)

    def ruleset_versions(self) -> list[dict[str, Any]]:
        query = sa.select(
            rule_sets.c.version, rule_sets.c.created_at_ms, rule_sets.c.actor, rule_sets.c.active
        )
        with self.engine.connect() as connection:
            return [
                dict(r) for r in connection.execute(query.order_by(rule_sets.c.version.desc())).mappings()
            ]

    def save_list(
        self,
        name: str,
        kind: str,
        items: Iterable[str],
        actor: str,
        now_ms: int,
        expiries: Mapping[str, int] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """A list's whole contents; ``expiries``: item -> expiry (ms) of the items that expire.
        Audited as ``update_list`` with the size and ``details`` (what changed)."""
        values = sorted(set(items))
        timed = {item: int(expiries[item]) for item in values if expiries and item in expiries}
        row = {
            "name": name,
            "kind": kind,
            "items": json.dumps(values),
            "updated_at_ms": now_ms,
            "expiries": json.dumps(timed) if timed else None,
        }
        with self.engine.begin() as connection:
            connection.execute(sa.delete(lists).where(lists.c.name == name))
            connection.execute(sa.insert(lists), [row])
            audited = {"size": len(values), "expiring": len(timed), **(details or {})}
            self._audit(connection, actor, "update_list", name, audited, now_ms)

    def saved_lists(self) -> dict[str, tuple[str, list[str], dict[str, int]]]:
        """Every stored list: its kind, its items and the expiries (ms) of the items that expire."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(lists)).mappings()
            found = {}
            for r in rows:
                found[r["name"]] = (r["kind"], json.loads(r["items"]), json.loads(r["expiries"] or "{}"))
            return found

    def record_snapshot(self, path: str, last_seq: int, last_label_id: int, now_ms: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                sa.insert(snapshots),
                [
                    {
                        "path": path,
                        "last_seq": last_seq,
                        "last_label_id": last_label_id,
                        "created_at_ms": now_ms,
                    }
                ],
            )

    def last_snapshot(self) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = (
                connection.execute(sa.select(snapshots).order_by(snapshots.c.id.desc()).limit(1))
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    def create_api_key(
        self, name: str, role: str, now_ms: int, raw: str | None = None, *, actor: str = "system"
    ) -> str:
        """A new key for ``role``; only its hash is stored, so the raw key is shown once. Audited as
        ``actor``'s, unless the key existed already (a server's admin key, given again at each start)."""
        if role not in ROLES:
            raise ConfigError(f"role {role!r} does not exist; give one of {', '.join(ROLES)}")
        key = raw or "fs_" + secrets.token_urlsafe(24)
        with self.engine.begin() as connection:
            created = connection.execute(
                self._insert_ignore(api_keys),
                [
                    {
                        "name": name,
                        "role": role,
                        "key_hash": _hash_key(key),
                        "created_at_ms": now_ms,
                        "revoked": False,
                    }
                ],
            ).rowcount
            if created:
                self._audit(connection, actor, "create_key", name, {"role": role}, now_ms)
        return key

    def authenticate(self, raw: str) -> tuple[str, str] | None:
        """(name, role) of a valid key, else None."""
        query = sa.select(api_keys.c.name, api_keys.c.role).where(
            api_keys.c.key_hash == _hash_key(raw), sa.not_(api_keys.c.revoked)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return (str(row[0]), str(row[1])) if row is not None else None

    def list_api_keys(self) -> list[dict[str, Any]]:
        """Every key's name, role, creation time and whether it is revoked, oldest first; never the key
        or its hash."""
        query = sa.select(
            api_keys.c.name, api_keys.c.role, api_keys.c.created_at_ms, api_keys.c.revoked
        ).order_by(api_keys.c.created_at_ms, api_keys.c.id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [{**row, "revoked": bool(row["revoked"])} for row in rows]

    def revoke_api_keys(self, name: str) -> int:
        """Revoke every valid key named ``name``; how many were revoked (0: no such valid key)."""
        with self.engine.begin() as connection:
            done = connection.execute(
                sa.update(api_keys)
                .where(api_keys.c.name == name, sa.not_(api_keys.c.revoked))
                .values(revoked=True)
            )
        return int(done.rowcount)

    def audit(
        self, actor: str, action: str, subject: str | None, details: Mapping[str, Any], now_ms: int
    ) -> None:
        with self.engine.begin() as connection:
            self._audit(connection, actor, action, subject, details, now_ms)

    #: One audit entry in the caller's transaction (see `record_audit`).
    _audit = staticmethod(record_audit)
