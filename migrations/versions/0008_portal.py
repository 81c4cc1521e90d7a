"""The users' portal: server-side sessions, one-time sign-in links, users.disabled, two indexes of one user's posts

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (not batch mode): see 0006 for why batch mode would lose indexes on SQLite.
    op.add_column("users", sa.Column("disabled", sa.Boolean(), nullable=False, server_default="0"))
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_sessions_user_id_users",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_user_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_user_sessions_token_hash"),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_table(
        "sign_in_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_sign_in_links_user_id_users",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_sign_in_links"),
        sa.UniqueConstraint("token_hash", name="uq_sign_in_links_token_hash"),
    )
    op.create_index("ix_sign_in_links_user_id", "sign_in_links", ["user_id"])
    # The portal's lists of one user's posts: coming up (time order) and published (newest first).
    upcoming = sa.text("status IN ('scheduled', 'queued', 'publishing')")
    op.create_index("ix_posts_upcoming_user_id", "posts", ["user_id", "scheduled_at"],
                    postgresql_where=upcoming, sqlite_where=upcoming)
    published = sa.text("status = 'published'")
    op.create_index("ix_posts_published_user_id", "posts", ["user_id", "published_at"],
                    postgresql_where=published, sqlite_where=published)


def downgrade() -> None:
    op.drop_index("ix_posts_published_user_id", table_name="posts")
    op.drop_index("ix_posts_upcoming_user_id", table_name="posts")
    op.drop_index("ix_sign_in_links_user_id", table_name="sign_in_links")
    op.drop_table("sign_in_links")
    op.drop_index("ix_user_sessions_user_id", table_name="user_sessions")
    op.drop_table("user_sessions")
    op.execute("ALTER TABLE users DROP COLUMN disabled")
