"""A decision's latency may be unknown: in Kafka mode the workers decide and the server only stores
what they publish, so it has no receipt-to-decision time of its own to record (it stored 0 before).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:  # SQLite rebuilds the table; PostgreSQL alters it
        batch.alter_column("latency_ms", existing_type=sa.Float(), nullable=True)
    # The 0s stored for decisions read back from Kafka meant "not timed": say so.
    op.execute(
        "UPDATE decisions SET latency_ms = NULL WHERE latency_ms = 0 AND transaction_id IN "
        "(SELECT transaction_id FROM transactions WHERE body_hash = 'kafka')"
    )


def downgrade() -> None:
    op.execute("UPDATE decisions SET latency_ms = 0 WHERE latency_ms IS NULL")
    with op.batch_alter_table("decisions") as batch:
        batch.alter_column("latency_ms", existing_type=sa.Float(), nullable=False)
