"""Initial schema: transactions, decisions, alerts, labels, rule sets, lists, audit, keys, snapshots.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("transaction_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(128)),
        sa.Column("verdict", sa.String(16)),
        sa.Column("note", sa.Text()),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_alerts_status_score", "alerts", ["status", "score"])
    op.create_table(
        "api_keys",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(256)),
        sa.Column("details", sa.Text()),
    )
    op.create_table(
        "decisions",
        sa.Column("transaction_id", sa.String(128), primary_key=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("probability", sa.Float()),
        sa.Column("is_alert", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("shadow_rules", sa.Text(), nullable=False),
        sa.Column("features", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(64)),
        sa.Column("ruleset_version", sa.Integer()),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("decided_at_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_decisions_decided", "decisions", ["decided_at_ms"])
    op.create_table(
        "labels",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("transaction_id", sa.String(128), nullable=False),
        sa.Column("is_fraud", sa.Boolean(), nullable=False),
        sa.Column("label_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("actor", sa.String(128)),
    )
    op.create_index("ix_labels_transaction_id", "labels", ["transaction_id"])
    op.create_table(
        "lists",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "rule_sets",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(128)),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "snapshots",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_label_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "transactions",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("transaction_id", sa.String(128), nullable=False, unique=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("merchant_id", sa.String(128)),
        sa.Column("merchant_category", sa.String(128)),
        sa.Column("terminal_id", sa.String(128)),
        sa.Column("channel", sa.String(16)),
        sa.Column("location", sa.String(128)),
        sa.Column("lat", sa.Float()),
        sa.Column("lon", sa.Float()),
        sa.Column("country", sa.String(2)),
        sa.Column("device_id", sa.String(128)),
        sa.Column("ip", sa.String(64)),
        sa.Column("card_fingerprint", sa.String(64)),
        sa.Column("card_bin", sa.String(8)),
        sa.Column("card_last4", sa.String(4)),
        sa.Column("attributes", sa.Text()),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_transactions_time", "transactions", ["timestamp_ms"])
    op.create_index("ix_transactions_user_time", "transactions", ["user_id", "timestamp_ms"])


def downgrade() -> None:
    op.drop_table("transactions")
    op.drop_table("snapshots")
    op.drop_table("rule_sets")
    op.drop_table("lists")
    op.drop_table("labels")
    op.drop_table("decisions")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
    op.drop_table("alerts")
