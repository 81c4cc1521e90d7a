"""indexes whose size and estimates do not grow with the posts' history (issue 11)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 09:00:00

* ``ix_posts_scheduled_due_at``: an index on ``CASE WHEN status = 'scheduled' THEN scheduled_at
  END``, the dispatch's key (:data:`app.models.SCHEDULED_DUE_AT`). ANALYZE keeps statistics on
  an expression index, so the dispatch is estimated from the scheduled posts alone: with
  ``status = 'scheduled' AND scheduled_at <= :due`` PostgreSQL multiplies two selectivities
  (the columns are correlated: past posts are rarely still scheduled) and expected half a
  million rows where there were none.
* ``ix_posts_measurable_at``: ``published_at`` of published posts with a platform id
  (:data:`app.models.MEASURABLE_AT`), the metrics' key, for the same reason.
* Partial indexes on live statuses, which hold the rows in that status only: queued posts by
  time (the sweep's lost messages), publishing posts by start (the sweep's dead workers), one
  user's review queue (counted on every post sent to review).

``CREATE INDEX`` (not ``CONCURRENTLY``, which cannot run inside Alembic's transaction) locks
writes to ``posts`` while it builds: on a table of two million posts, about two seconds on a
2-core machine. Run ``ANALYZE posts`` after upgrading a large table (autovacuum does it in time)
so the expression's statistics exist before the next minute's dispatch.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: app.models.SCHEDULED_DUE_AT_DDL as of this revision (a migration never imports the models).
SCHEDULED_DUE_AT_DDL = "(\nCASE\n    WHEN status = 'scheduled' THEN scheduled_at\n    ELSE NULL\nEND)"
#: app.models.MEASURABLE_AT_DDL as of this revision.
MEASURABLE_AT_DDL = ("(\nCASE\n    WHEN status = 'published' AND external_id IS NOT NULL THEN published_at\n"
                     "    ELSE NULL\nEND)")

PARTIAL = (
    ("ix_posts_queued_scheduled_at", ["scheduled_at"], "status = 'queued'"),
    ("ix_posts_publishing_started_at", ["publish_started_at"], "status = 'publishing'"),
    ("ix_posts_needs_review_user_id", ["user_id", "scheduled_at"], "status = 'needs_review'"),
)


def upgrade() -> None:
    op.create_index("ix_posts_scheduled_due_at", "posts", [sa.text(SCHEDULED_DUE_AT_DDL)], unique=False)
    op.create_index("ix_posts_measurable_at", "posts", [sa.text(MEASURABLE_AT_DDL)], unique=False)
    for name, columns, where in PARTIAL:
        op.create_index(name, "posts", columns, unique=False,
                        postgresql_where=sa.text(where), sqlite_where=sa.text(where))


def downgrade() -> None:
    for name, _, _ in reversed(PARTIAL):
        op.drop_index(name, table_name="posts")
    op.drop_index("ix_posts_measurable_at", table_name="posts")
    op.drop_index("ix_posts_scheduled_due_at", table_name="posts")
