"""catch_up_sends: each missed slot's catch-up message is sent once (issue 19)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catch_up_sends",
        sa.Column("job", sa.String(length=60), nullable=False),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job", "slot", name=op.f("pk_catch_up_sends")),
    )


def downgrade() -> None:
    op.drop_table("catch_up_sends")
