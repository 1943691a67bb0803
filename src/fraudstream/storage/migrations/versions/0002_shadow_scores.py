"""Challenger models' scores, recorded next to the champion's decisions for comparison.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shadow_scores",
        sa.Column("transaction_id", sa.String(128), primary_key=True),
        sa.Column("model_version", sa.String(64), primary_key=True),
        sa.Column("probability", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("shadow_scores")
