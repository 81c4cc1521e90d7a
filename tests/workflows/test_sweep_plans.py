"""The sweep's prunes and emails find their few rows through an index, not by reading every row.

10,000 portal sessions, sign-in links, connect flows, media uploads and notifications on real
PostgreSQL, a handful of them expired (or not emailed yet); ANALYZE; then the sweep's own functions run
while every statement they send on those tables is EXPLAINed (without ANALYZE: the DELETEs
are explained before they run, not run twice). Each must read its table through the index
migration 0014 made for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from app.config import Settings
from app.connect.flows import prune_flows
from app.db import make_session_factory
from app.notifications import send_daily_digests, send_pending_emails
from app.signin import prune_expired
from app.workflows.media_uploads import prune_expired_uploads
from bench.history import insert_users
from bench.plans import Plan
from tests.fakes.smtp import running_smtp

USERS = 1_000
ROWS = 10_000
#: Rows each prune or email run must find among the ROWS.
FEW = 20
TABLES = ("user_sessions", "sign_in_links", "connect_flows", "notifications", "media_uploads")


@pytest.fixture
def crowded(pg_engine: Engine) -> tuple[Engine, datetime]:
    """ROWS rows in each table, FEW of them expired (or not emailed yet), analysed."""
    now = datetime.now(UTC).replace(microsecond=0)
    # Live rows expire within a month from an hour on; FEW rows expired an hour or more ago.
    expiry = "CAST(:now AS timestamptz) + CASE WHEN g <= :few THEN -1 ELSE 1 END * (interval '1 hour' + g * interval '1 minute')"
    digest = "md5(g::text) || md5((g + 1)::text)"
    with pg_engine.begin() as conn:
        insert_users(conn, USERS, now)
        params = {"now": now, "rows": ROWS, "few": FEW, "users": USERS}
        conn.execute(text(
            "INSERT INTO user_sessions (user_id, token_hash, created_at, expires_at) "
            f"SELECT 1 + g % :users, {digest}, :now, {expiry} FROM generate_series(1, :rows) g"), params)
        conn.execute(text(
            "INSERT INTO sign_in_links (token_hash, user_id, email, created_at, expires_at, created_by) "
            f"SELECT {digest}, 1 + g % :users, 'history' || g || '@example.com', :now, {expiry}, 'portal' "
            "FROM generate_series(1, :rows) g"), params)
        # A flow is pruned a day after it expired (DEFAULT_FLOW_RETENTION).
        conn.execute(text(
            "INSERT INTO connect_flows (user_id, platform, state_hash, session_hash, redirect_uri, created_at, "
            f"expires_at) SELECT 1 + g % :users, 'twitter', {digest}, {digest}, 'https://portal.test/cb', :now, "
            f"{expiry} - CASE WHEN g <= :few THEN interval '2 days' ELSE interval '0' END "
            "FROM generate_series(1, :rows) g"), params)
        # FEW notifications wait for an email at once, FEW for a digest; the rest were emailed.
        conn.execute(text(
            "INSERT INTO notifications (user_id, kind, severity, subject, body, created_at, emailed_at, "
            "email_delivery) SELECT 1 + g % :users, 'generation_failed', 'warning', 'No posts', 'Failed.', "
            "CAST(:now AS timestamptz) - g * interval '1 minute', "
            "CASE WHEN g <= 2 * :few THEN NULL ELSE CAST(:now AS timestamptz) END, "
            "CASE WHEN g <= :few THEN 'now' WHEN g <= 2 * :few THEN 'digest' ELSE 'now' END "
            "FROM generate_series(1, :rows) g"), params)
        # One image uploaded to one account for each of ROWS posts (Mastodon's way); a third
        # with no known expiry (LinkedIn's), FEW expired.
        media_id = conn.scalar(text(
            "INSERT INTO media_items (user_id, storage_key, thumbnail_key, alt_text, tags, generated, content_type, "
            "width_px, height_px, size_bytes, frames, created_at) SELECT min(id), 'images/a.png', 'thumbs/a.png', "
            "'A square', '[]', false, 'image/png', 64, 48, 100, 1, :now FROM users RETURNING id"), params)
        account_id = conn.scalar(text(
            "INSERT INTO platform_accounts (user_id, platform, access_token_encrypted, status, created_at, updated_at) "
            "SELECT min(id), 'mastodon', 'x', 'active', :now, :now FROM users RETURNING id"), params)
        conn.execute(text(
            "INSERT INTO media_uploads (media_id, account_id, post_key, platform, platform_media_id, expires_at, "
            f"size_bytes, uploaded_at) SELECT :media, :account, g, 'mastodon', g::text, CASE WHEN g > :few "
            f"AND g % 3 = 0 THEN NULL ELSE {expiry} END, 100, :now FROM generate_series(1, :rows) g"),
            params | {"media": media_id, "account": account_id})
    with pg_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"ANALYZE {', '.join(TABLES)}"))
    return pg_engine, now


@contextmanager
def plans_of(engine: Engine) -> Iterator[list[Plan]]:
    """The plan of every SELECT or DELETE on :data:`TABLES` sent on ``engine``, as it is sent."""
    reads = re.compile(rf"\b(from|join)\s+\"?({'|'.join(TABLES)})\"?\b", re.I)
    plans: list[Plan] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if executemany or verb not in ("SELECT", "DELETE") or not reads.search(statement):
            return
        with conn.connection.dbapi_connection.cursor() as explain:
            explain.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            raw = explain.fetchone()[0]
        plans.append(Plan(statement, parameters, (raw if isinstance(raw, list) else json.loads(raw))[0]))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield plans
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_the_prunes_delete_by_the_expiry_indexes(crowded):
    engine, now = crowded
    sessions = make_session_factory(engine)
    with plans_of(engine) as plans, sessions.begin() as session:
        assert prune_expired(session, now) == (FEW, FEW)
        assert prune_flows(session, now) == FEW

    used = {table: plan.indexes(table) for plan in plans for table in TABLES if f"FROM {table}" in plan.statement}
    assert used == {"user_sessions": {"ix_user_sessions_expires_at"},
                    "sign_in_links": {"ix_sign_in_links_expires_at"},
                    "connect_flows": {"ix_connect_flows_expires_at"}}, "\n\n".join(p.statement for p in plans)


def test_expired_uploads_are_found_by_their_expiry_index(crowded):
    engine, now = crowded
    sessions = make_session_factory(engine)
    with plans_of(engine) as plans, sessions.begin() as session:
        assert prune_expired_uploads(session, now) == FEW
        assert prune_expired_uploads(session, now) == 0

    assert len(plans) == 2
    for plan in plans:
        assert "ix_media_uploads_expires_at" in plan.indexes("media_uploads"), plan.statement
        assert not [node for node in plan.nodes() if node["Node Type"] == "Seq Scan"], plan.statement


def test_the_quarter_hours_emails_read_the_unsent_notifications_only(crowded):
    engine, now = crowded
    sessions = make_session_factory(engine)
    with running_smtp() as (mails, port):
        settings = Settings(database_url="sqlite://", smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                            smtp_sender="autopilot@example.com")
        with plans_of(engine) as plans:
            assert send_pending_emails(sessions, settings, now) == FEW
            send_daily_digests(sessions, settings, now)
    assert len(mails.mails) == FEW

    # The first statement of each: the search for what is waiting (the rest read rows by id).
    searches = [plan for plan in plans if "emailed_at IS NULL" in plan.statement
                and "notifications.id =" not in plan.statement and "user_id =" not in plan.statement]
    assert len(searches) == 2, [p.statement for p in plans]
    assert [plan.indexes("notifications") for plan in searches] == [{"ix_notifications_unsent_created_at"}] * 2
