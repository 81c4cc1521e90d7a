"""platform_accounts.service_url, user_settings.post_visibility and oauth_clients: what the
open platforms (an account's own server, per-server app registrations) need

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode (see 0006: batch mode would drop 0005's expression indexes
# on SQLite).


def upgrade() -> None:
    op.add_column("platform_accounts", sa.Column("service_url", sa.String(length=300), nullable=True))
    op.add_column("user_settings", sa.Column("post_visibility", sa.String(length=20), nullable=False,
                                             server_default="public"))
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("host", sa.String(length=300), nullable=False),
        sa.Column("redirect_uri", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=300), nullable=False),
        sa.Column("client_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("pkce", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_clients"),
        sa.UniqueConstraint("platform", "host", "redirect_uri", name="uq_oauth_clients_server"),
    )


def downgrade() -> None:
    op.drop_table("oauth_clients")
    op.execute("ALTER TABLE user_settings DROP COLUMN post_visibility")
    op.execute("ALTER TABLE platform_accounts DROP COLUMN service_url")
