"""posts.late_reason and posts.late_since: why a post is past its time, and since when

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-27 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("late_reason", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("late_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("late_since")
        batch.drop_column("late_reason")
