"""The media library: media_items, media_uploads (one per image and platform account), posts.media_id

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "media_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=300), nullable=False),
        sa.Column("alt_text", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("generated", sa.Boolean(), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("width_px", sa.Integer(), nullable=False),
        sa.Column("height_px", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_media_items_user_id_users",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_media_items"),
        sa.UniqueConstraint("storage_key", name="uq_media_items_storage_key"),
    )
    op.create_index("ix_media_items_user_id_created_at", "media_items", ["user_id", "created_at"])
    op.create_table(
        "media_uploads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("post_key", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("platform_media_id", sa.Text(), nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["media_id"], ["media_items.id"],
                                name="fk_media_uploads_media_id_media_items", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["account_id"], ["platform_accounts.id"],
                                name="fk_media_uploads_account_id_platform_accounts", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_media_uploads"),
        sa.UniqueConstraint("media_id", "account_id", "post_key",
                            name="uq_media_uploads_media_id_account_id_post_key"),
    )
    op.create_index("ix_media_uploads_account_id", "media_uploads", ["account_id"])
    # Plain ALTER TABLE (see 0006): batch mode on SQLite would lose 0005's expression indexes;
    # SQLite takes the foreign key inline in the column's definition.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE posts ADD COLUMN media_id INTEGER "
                   "REFERENCES media_items (id)")
    else:
        op.add_column("posts", sa.Column(
            "media_id", sa.Integer(),
            sa.ForeignKey("media_items.id", name="fk_posts_media_id_media_items"),
            nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("fk_posts_media_id_media_items", "posts", type_="foreignkey")
    op.execute("ALTER TABLE posts DROP COLUMN media_id")
    op.drop_index("ix_media_uploads_account_id", table_name="media_uploads")
    op.drop_table("media_uploads")
    op.drop_index("ix_media_items_user_id_created_at", table_name="media_items")
    op.drop_table("media_items")
