"""The database schema (SQLAlchemy Core): the same tables on SQLite and PostgreSQL.

Times are integer milliseconds since the Unix epoch (UTC). No column ever holds a card number: only
the keyed fingerprint, the BIN and the last four digits.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

__all__ = [
    "alerts",
    "api_keys",
    "audit_log",
    "case_comments",
    "cases",
    "decisions",
    "drift_counts",
    "job_runs",
    "labels",
    "lists",
    "metadata",
    "rule_sets",
    "shadow_scores",
    "sink_cursors",
    "snapshots",
    "snoozes",
    "transactions",
    "webhook_deliveries",
    "webhooks",
]

metadata = MetaData()

#: SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
_SEQ = BigInteger().with_variant(Integer, "sqlite")
_ID = String(128)

transactions = Table(
    "transactions",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("transaction_id", _ID, nullable=False, unique=True),
    Column("user_id", _ID, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("amount", Float, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("merchant_id", _ID),
    Column("merchant_category", _ID),
    Column("terminal_id", _ID),
    Column("channel", String(16)),
    Column("location", _ID),
    Column("lat", Float),
    Column("lon", Float),
    Column("country", String(2)),
    Column("device_id", _ID),
    Column("ip", String(64)),
    Column("card_fingerprint", String(64)),
    Column("card_bin", String(8)),
    Column("card_last4", String(4)),
    Column("attributes", Text),
    Column("body_hash", String(64), nullable=False),
    Column("received_at_ms", BigInteger, nullable=False),
    Index("ix_transactions_user_time", "user_id", "timestamp_ms"),
    Index("ix_transactions_time", "timestamp_ms"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("transaction_id", _ID, primary_key=True),
    Column("decision", String(16), nullable=False),
    Column("score", SmallInteger, nullable=False),
    Column("probability", Float),
    Column("is_alert", Boolean, nullable=False),
    Column("reasons", Text, nullable=False),
    Column("rules", Text, nullable=False),
    Column("shadow_rules", Text, nullable=False),
    Column("features", Text, nullable=False),
    Column("model_version", String(64)),
    Column("ruleset_version", Integer),
    # Receipt to durable decision; None where the server did not time it (Kafka mode's workers).
    Column("latency_ms", Float),
    Column("decided_at_ms", BigInteger, nullable=False),
    # JSON list of the snoozes that silenced something in this decision; None when none applied.
    Column("snoozes", Text),
    Index("ix_decisions_decided", "decided_at_ms"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("transaction_id", _ID, primary_key=True),
    Column("user_id", _ID, nullable=False),
    Column("amount", Float, nullable=False),
    Column("score", SmallInteger, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("reasons", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("assignee", String(128)),
    Column("verdict", String(16)),
    Column("note", Text),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("case_id", String(64)),
    Index("ix_alerts_status_score", "status", "score"),
    Index("ix_alerts_case", "case_id"),
)

#: Open alerts on one entity within a window, worked as one unit: status, assignee, priority (from the
#: riskiest alert), due time (from that priority's SLA) and one verdict.
cases = Table(
    "cases",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("entity_kind", String(32), nullable=False),
    Column("entity_id", _ID, nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("risk", SmallInteger, nullable=False),
    Column("assignee", String(128)),
    Column("verdict", String(16)),
    Column("due_at_ms", BigInteger, nullable=False),
    Column("opened_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("closed_at_ms", BigInteger),
    Index("ix_cases_status_due", "status", "due_at_ms"),
    Index("ix_cases_entity", "entity_kind", "entity_id", "status"),
)

case_comments = Table(
    "case_comments",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("case_id", String(64), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("author", String(128), nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_case_comments_case", "case_id", "at_ms"),
)

labels = Table(
    "labels",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("transaction_id", _ID, nullable=False, index=True),
    Column("is_fraud", Boolean, nullable=False),
    Column("label_time_ms", BigInteger, nullable=False),
    Column("source", String(16), nullable=False),
    Column("note", Text),
    Column("actor", String(128)),
)

rule_sets = Table(
    "rule_sets",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("yaml", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("actor", String(128)),
    Column("active", Boolean, nullable=False),
)

lists = Table(
    "lists",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("items", Text, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    # JSON object: item -> expiry (ms); an item not in it never expires.
    Column("expiries", Text),
)

#: One rule (or, with ``rule_code`` None, every review decision) silenced for one entity until a time.
snoozes = Table(
    "snoozes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("entity_kind", String(32), nullable=False),
    Column("entity_id", _ID, nullable=False),
    Column("rule_code", String(64)),
    Column("until_ms", BigInteger, nullable=False),
    Column("reason", Text),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("created_by", String(128)),
    Column("cancelled_at_ms", BigInteger),
    Index("ix_snoozes_until", "until_ms"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(256)),
    Column("details", Text),
    Index("ix_audit_log_at", "at_ms"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False),
)

shadow_scores = Table(
    "shadow_scores",
    metadata,
    Column("transaction_id", _ID, primary_key=True),
    Column("model_version", String(64), primary_key=True),
    Column("probability", Float, nullable=False),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("path", Text, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_label_id", BigInteger, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
)

#: How far each extra sink (lake, Redis, webhooks) has durably handed over the log of transactions.
sink_cursors = Table(
    "sink_cursors",
    metadata,
    Column("sink", String(128), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

#: Receivers of signed decision events; ``events`` is a JSON list, ``deleted_at_ms`` set once removed.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),
    Column("min_score", Float),
    Column("format", String(16), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("created_by", String(128)),
    Column("deleted_at_ms", BigInteger),
)

#: One event for one webhook: pending until delivered, retried with backoff (the persistent outbox).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("webhook_id", String(64), nullable=False),
    Column("transaction_id", _ID, nullable=False),
    Column("event", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("delivered_at_ms", BigInteger),
    Index("ix_webhook_deliveries_due", "webhook_id", "status", "next_attempt_ms"),
    Index("ix_webhook_deliveries_hook", "webhook_id", "created_at_ms"),
)

#: Scheduled and manual jobs (retrain, re-score history, backtest report): progress 0..1, result JSON.
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("job", String(32), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Float, nullable=False),
    Column("params", Text, nullable=False),
    Column("result", Text),
    Column("error", Text),
    Column("actor", String(128)),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("started_at_ms", BigInteger),
    Column("finished_at_ms", BigInteger),
    Index("ix_job_runs_job_created", "job", "created_at_ms"),
)

#: Live counts of one UTC day's scored transactions in the bins of a model's drift reference: one row
#: per day, model version and feature; ``counts`` a JSON list (the reference's bins, then missing).
#: ``last_seq``: the log position the counts held when written (a restart counts what came after).
drift_counts = Table(
    "drift_counts",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("model_version", String(64), primary_key=True),
    Column("feature", String(128), primary_key=True),
    Column("counts", Text, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)
