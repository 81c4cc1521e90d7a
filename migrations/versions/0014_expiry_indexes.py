"""Indexes for the sweep's prunes and emails: expired sessions, sign-in links, connect flows
and media uploads are deleted by ``expires_at``; notifications not emailed yet are read oldest
first

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: (index, table, column) of the expiry indexes.
EXPIRY_INDEXES = (
    ("ix_user_sessions_expires_at", "user_sessions", "expires_at"),
    ("ix_sign_in_links_expires_at", "sign_in_links", "expires_at"),
    ("ix_connect_flows_expires_at", "connect_flows", "expires_at"),
    ("ix_media_uploads_expires_at", "media_uploads", "expires_at"),
)
UNSENT = "emailed_at IS NULL"


def upgrade() -> None:
    for name, table, column in EXPIRY_INDEXES:
        op.create_index(name, table, [column])
    op.create_index("ix_notifications_unsent_created_at", "notifications", ["created_at", "id"],
                    postgresql_where=sa.text(UNSENT), sqlite_where=sa.text(UNSENT))


def downgrade() -> None:
    op.drop_index("ix_notifications_unsent_created_at", table_name="notifications")
    for name, table, _ in reversed(EXPIRY_INDEXES):
        op.drop_index(name, table_name=table)
