"""posts.late_reason and posts.late_since: why a post is past its time, and since when

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: on SQLite batch mode rebuilds the table from reflection,
# which skips expression indexes, so 0005's indexes would be silently lost. SQLite adds and
# (since 3.35) drops columns natively.


def upgrade() -> None:
    op.add_column("posts", sa.Column("late_reason", sa.String(length=20), nullable=True))
    op.add_column("posts", sa.Column("late_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ("late_since", "late_reason"):
        op.execute(f"ALTER TABLE posts DROP COLUMN {column}")
