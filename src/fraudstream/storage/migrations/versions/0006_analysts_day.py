"""The analysts' day: cases, their comments, list items that expire, snoozes, and job runs.

- ``cases``: open alerts on the same entity (card fingerprint, user or device) within a window join
  one case; ``alerts.case_id`` says which. A case has a status, an assignee, a priority from its
  riskiest alert, a due time from that priority's SLA, and one verdict.
- ``case_comments``: a case's comment thread, oldest first.
- ``lists.expiries``: a JSON object of item to expiry time (ms); an item absent from it never expires.
- ``snoozes``: one rule (or every review decision, ``rule_code`` null) silenced for one entity until
  ``until_ms``; ``decisions.snoozes`` (JSON list) records which snoozes applied to a decision.
- ``job_runs``: scheduled and manual jobs (retrain, re-score, backtest report), their progress and
  their results (JSON).
- ``drift_counts``: per UTC day, champion version and feature, the live counts of scored
  transactions in the bins of the model's drift reference (JSON list), and the log position they
  held when written.

Columns are only added (``ALTER TABLE ... ADD COLUMN``), never rebuilt, so the trend views of 0005
stay as they are.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ID = sa.String(128)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("entity_kind", sa.String(32), nullable=False),
        sa.Column("entity_id", _ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("risk", sa.SmallInteger(), nullable=False),
        sa.Column("assignee", sa.String(128)),
        sa.Column("verdict", sa.String(16)),
        sa.Column("due_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("opened_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("closed_at_ms", sa.BigInteger()),
    )
    op.create_index("ix_cases_status_due", "cases", ["status", "due_at_ms"])
    op.create_index("ix_cases_entity", "cases", ["entity_kind", "entity_id", "status"])
    op.add_column("alerts", sa.Column("case_id", sa.String(64)))
    op.create_index("ix_alerts_case", "alerts", ["case_id"])
    op.create_table(
        "case_comments",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.create_index("ix_case_comments_case", "case_comments", ["case_id", "at_ms"])
    op.create_index("ix_audit_log_at", "audit_log", ["at_ms"])
    op.add_column("lists", sa.Column("expiries", sa.Text()))
    op.create_table(
        "snoozes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("entity_kind", sa.String(32), nullable=False),
        sa.Column("entity_id", _ID, nullable=False),
        sa.Column("rule_code", sa.String(64)),
        sa.Column("until_ms", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(128)),
        sa.Column("cancelled_at_ms", sa.BigInteger()),
    )
    op.create_index("ix_snoozes_until", "snoozes", ["until_ms"])
    op.add_column("decisions", sa.Column("snoozes", sa.Text()))
    op.create_table(
        "job_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("job", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("result", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("actor", sa.String(128)),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger()),
        sa.Column("finished_at_ms", sa.BigInteger()),
    )
    op.create_index("ix_job_runs_job_created", "job_runs", ["job", "created_at_ms"])
    op.create_table(
        "drift_counts",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("model_version", sa.String(64), primary_key=True),
        sa.Column("feature", sa.String(128), primary_key=True),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("drift_counts")
    op.drop_index("ix_job_runs_job_created", "job_runs")
    op.drop_table("job_runs")
    op.drop_index("ix_snoozes_until", "snoozes")
    op.drop_table("snoozes")
    op.drop_index("ix_audit_log_at", "audit_log")
    op.drop_index("ix_case_comments_case", "case_comments")
    op.drop_table("case_comments")
    op.drop_index("ix_alerts_case", "alerts")
    op.drop_index("ix_cases_entity", "cases")
    op.drop_index("ix_cases_status_due", "cases")
    op.drop_table("cases")
    # Plain DROP COLUMN (SQLite 3.35+ and PostgreSQL): a batch rebuild would fail on SQLite while
    # 0005's views read alerts and decisions.
    for table, column in (("decisions", "snoozes"), ("lists", "expiries"), ("alerts", "case_id")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
