"""Users' notification preferences (email at once, daily digest or off per kind; the weekly report)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (not batch mode): see 0006 for why batch mode would lose indexes on SQLite.
    op.add_column("notifications", sa.Column("email_delivery", sa.String(length=10), nullable=False,
                                             server_default="now"))
    op.create_table(
        "notification_preferences",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email_by_kind", sa.JSON(), nullable=False),
        sa.Column("weekly_report_email", sa.Boolean(), nullable=False, server_default="1"),
        sa.Column("digest_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_notification_preferences_user_id_users",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name="pk_notification_preferences"),
    )


def downgrade() -> None:
    op.drop_table("notification_preferences")
    op.drop_column("notifications", "email_delivery")
