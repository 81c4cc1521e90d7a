"""The server a consent runs on (a Mastodon instance) kept on its connect_flows row

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (not batch mode): see 0006 for why batch mode would lose indexes on SQLite.
    op.add_column("connect_flows", sa.Column("service_url", sa.String(length=300), nullable=True))


def downgrade() -> None:
    op.drop_column("connect_flows", "service_url")
