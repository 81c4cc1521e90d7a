"""queue depth samples for the Operations page (issue 12)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=60), nullable=False),
        sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waiting", sa.Integer(), nullable=False),
        sa.Column("in_flight", sa.Integer(), nullable=False),
        sa.Column("delayed", sa.Integer(), nullable=False),
        sa.Column("dead", sa.Integer(), nullable=False),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_samples")),
        sa.UniqueConstraint("queue", "sampled_at", name="uq_queue_samples_queue_sampled_at"),
    )
    op.create_index("ix_queue_samples_sampled_at", "queue_samples", ["sampled_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_queue_samples_sampled_at", table_name="queue_samples")
    op.drop_table("queue_samples")
