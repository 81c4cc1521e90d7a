"""Big ``posts`` tables built inside PostgreSQL: ``INSERT ... SELECT generate_series``.

A million rows take seconds this way (no Python loop, no round trip per row). Every instant is
derived from the ``now`` passed in, so the same table means the same thing on any day. Used by
``bench/dispatch_scaling.py`` and tests/workflows/test_query_plans.py.

* future: posts ``scheduled`` tomorrow, one per second over the day (many per second).
* past: the history, one post every :data:`PAST_STEP` going back from an hour ago, in one
  status (``published``, ``cancelled``, ``needs_review``) or cycling through them (``mixed``).
* live: a few posts each query has to find: due within the dispatch horizon, overdue past the
  stale grace, queued with a lost message, publishing with a dead worker.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from app.platforms import KNOWN_PLATFORMS

#: The histories a bench can build; ``mixed`` cycles through the three.
HISTORIES = ("published", "cancelled", "needs_review", "mixed")
#: Time between two past posts (a post every 30 s: a million posts is about a year).
PAST_STEP = timedelta(seconds=30)

_INSERT = """
INSERT INTO posts (user_id, platform, text, origin, status, scheduled_at, queued_at,
                   publish_started_at, published_at, external_id, attempts, review_reason,
                   claim_token, created_at, updated_at)
SELECT 1 + g % :users, CASE WHEN g % 2 = 0 THEN :first ELSE :second END, 'post ' || g,
       'autonomous', s.status, s.at, {queued_at}, {started_at},
       CASE WHEN s.status = 'published' THEN s.at + interval '2 seconds' END,
       CASE WHEN s.status = 'published' THEN 'ext' || g END,
       CASE WHEN s.status IN ('published', 'publishing') THEN 1 ELSE 0 END,
       CASE WHEN s.status = 'needs_review' THEN 'stale' END,
       CASE WHEN s.status IN ('queued', 'publishing') THEN 'token' || g END,
       :now, :now
FROM generate_series(1, :count) g,
     LATERAL (SELECT {status}::varchar AS status, {at} AS at) s
"""


def insert_posts(conn: Connection, *, count: int, status: str, at: str, now: datetime, users: int,
                 queued_at: str = "NULL", started_at: str = "NULL", **params: object) -> None:
    """``count`` posts; ``status`` and ``at`` are SQL over ``g`` (1..count) and ``:now``."""
    sql = _INSERT.format(status=status, at=at, queued_at=queued_at, started_at=started_at)
    conn.execute(text(sql), {"count": count, "now": now, "users": users,
                             "first": KNOWN_PLATFORMS[0], "second": KNOWN_PLATFORMS[1], **params})


def insert_users(conn: Connection, count: int, now: datetime) -> None:
    conn.execute(text("INSERT INTO users (email, created_at) "
                      "SELECT 'history' || g || '@example.com', :now FROM generate_series(1, :count) g"),
                 {"count": count, "now": now})


def insert_future(conn: Connection, count: int, now: datetime, users: int) -> None:
    insert_posts(conn, count=count, status="'scheduled'", now=now, users=users,
                 at="CAST(:now AS timestamptz) + interval '1 day' + (g % 86400) * interval '1 second'")


def insert_past(conn: Connection, count: int, history: str, now: datetime, users: int) -> None:
    if history not in HISTORIES:
        raise ValueError(f"unknown history {history!r}; expected one of {HISTORIES}")
    status = ("(ARRAY['published', 'cancelled', 'needs_review'])[1 + g % 3]" if history == "mixed"
              else f"'{history}'")
    insert_posts(conn, count=count, status=status, now=now, users=users,
                 at="CAST(:now AS timestamptz) - interval '1 hour' - g * CAST(:step AS interval)",
                 step=PAST_STEP)


def insert_live(conn: Connection, now: datetime, users: int, *, due: int = 40, stale: int = 5,
                lost: int = 20, abandoned: int = 10) -> None:
    """Posts each dispatch and sweep query must find (see the module docstring)."""
    at_now = "CAST(:now AS timestamptz)"
    insert_posts(conn, count=due, status="'scheduled'", now=now, users=users,
                 at=f"{at_now} + (g % 90) * interval '1 second'")
    insert_posts(conn, count=stale, status="'scheduled'", now=now, users=users,
                 at=f"{at_now} - interval '2 hours' - g * interval '1 second'")
    insert_posts(conn, count=lost, status="'queued'", now=now, users=users,
                 at=f"{at_now} - interval '10 minutes' + g * interval '1 second'",
                 queued_at=f"{at_now} - interval '11 minutes'")
    insert_posts(conn, count=abandoned, status="'publishing'", now=now, users=users,
                 at=f"{at_now} - interval '10 minutes'", started_at=f"{at_now} - interval '10 minutes'")
