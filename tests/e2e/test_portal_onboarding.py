"""A new user's whole way in, with real worker processes: invited, signs in by the link, connects
X on X's (fake) consent screen, turns the autopilot on, and the first post it writes is published
on X with the token X's own token endpoint issued for that consent.

The portal runs in-process (Flask's test client: the browser's part is tested in
tests/portal/test_accounts_browser.py); the daily generation, the minute's dispatch and the
publish run in a real ``dramatiq actors.entrypoint`` worker on Redis and PostgreSQL, reaching the
fake X over a socket. Everything reads the real clock: the user's posting time is the current UTC
minute, so the generated post is due at once, whatever the day and hour the test runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dramatiq
import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import select

from app.broker import build_broker
from app.clock import utcnow
from app.config import Settings
from app.connect import callback_url
from app.crypto import generate_key
from app.db import make_engine, make_session_factory
from app.models import Post, PostStatus, UserSettings
from app.signin import create_link, link_url
from app.users import create_user
from portal import create_app
from portal.ext import EXTENSION_KEY
from tests import services
from tests.fakes.oauth import click_through
from tests.fakes.x import FakeX
from tests.workers import start_worker, wait_for

pytestmark = pytest.mark.slow

EMAIL = "new.user@example.com"
PORTAL = "http://portal.test"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def redis_db_url(offset: int) -> str:
    """A Redis database of this module's own, beside the test one (tests/e2e/test_publishing.py
    uses the next two)."""
    base, db = services.TEST_REDIS_URL.rsplit("/", 1)
    return f"{base}/{(int(db) + offset) % 16}"


def csrf(client: FlaskClient, url: str) -> str:
    match = _CSRF.search(client.get(url).get_data(as_text=True))
    assert match, f"no form token on {url}"
    return match.group(1)


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    with FakeX(client_id="x-client", client_secret="x-secret") as fake:
        yield fake


@pytest.fixture
def env(pg_url: str, pg_engine, fake_x: FakeX) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The deployment's environment: the portal and the worker read the same."""
    base = {name: value for name, value in os.environ.items()
            if not name.startswith(("X_", "LINKEDIN_", "OPENAI_", "SERPER_", "SENTRY_", "REDIS_", "PORTAL_"))}
    return {**base, "DATABASE_URL": pg_url, "REDIS_URL": redis_db_url(4), "TOKEN_ENCRYPTION_KEYS": generate_key(),
            "SECRET_KEY": "e2e-portal-secret", "SESSION_COOKIE_SECURE": "false", "PORTAL_BASE_URL": PORTAL,
            "X_CLIENT_ID": "x-client", "X_CLIENT_SECRET": "x-secret", "X_API_BASE_URL": fake_x.base_url,
            "X_AUTHORIZE_URL": fake_x.authorize_url, "PROVIDER_TIMEOUT_SECONDS": "5"}


def test_an_invited_user_connects_x_opts_in_and_the_first_post_goes_out_with_that_token(
        env: dict[str, str], fake_x: FakeX, tmp_path: Path) -> None:
    settings = Settings.from_env(env)
    fake_x.consent.redirect_uris.add(callback_url(settings, "twitter"))  # registered by the operator
    client = redis.Redis.from_url(env["REDIS_URL"])
    client.flushdb()
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    # The operator creates the user (autopilot off) and invites them (`autopilot users invite`).
    posting_minute = datetime.now(UTC).replace(second=0, microsecond=0)
    with sessions.begin() as session:
        create_user(session, EMAIL, {"timezone": "UTC", "preferred_platforms": ["twitter"],
                                     "posting_times": {"twitter": [f"{posting_minute:%H:%M}"]},
                                     "topics": ["python testing"]}, actor="cli")
        link = link_url(settings, create_link(session, settings, EMAIL, now=utcnow(), created_by="cli") or "")
    app = create_app(settings, {"TESTING": True})
    browser = app.test_client()

    # Signs in by the link.
    path = link.removeprefix(PORTAL)
    assert browser.post(path, data={"csrf_token": csrf(browser, path)}).status_code == 302
    # Connects X through X's consent screen.
    consent = browser.get("/connect/twitter")
    assert consent.headers["Location"].startswith(fake_x.authorize_url)
    back = browser.get("/connect/twitter/callback", query_string=click_through(consent.headers["Location"]))
    assert back.headers["Location"] == "/accounts"
    issued = fake_x.issued_access_tokens[-1]
    # Opts in: the settings form, saved with autonomous mode on.
    saved = browser.post("/settings/", data={
        "csrf_token": csrf(browser, "/settings/"), "enable_autonomous_mode": "on", "timezone": "UTC",
        "platform_twitter": "on", "times_twitter": f"{posting_minute:%H:%M}", "content_frequency": "7",
        "brand_voice": "friendly and precise", "creativity_level": "0.7", "topics": "python testing",
        "language": "en", "country": "us"})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    with sessions() as session:
        assert session.scalars(select(UserSettings)).one().enable_autonomous_mode

    broker = build_broker(settings)
    worker = start_worker(env, tmp_path / "worker.log", "autonomous", "posting", threads=2)
    try:
        slot = posting_minute.isoformat()
        broker.enqueue(dramatiq.Message(queue_name="autonomous", actor_name="daily_generation",
                                        args=(slot, "periodic"), kwargs={}, options={}))
        generated = wait_for(lambda: _posts(sessions), 60)
        assert generated, worker.stderr()
        [(post_id, status)] = generated
        assert status == PostStatus.SCHEDULED
        # The minute's dispatch finds it due and the posting worker publishes it.
        minute = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()
        broker.enqueue(dramatiq.Message(queue_name="posting", actor_name="dispatch_due_posts",
                                        args=(minute, "periodic"), kwargs={}, options={}))
        published = wait_for(lambda: _posts(sessions) == [(post_id, PostStatus.PUBLISHED)], 60)
        assert published, f"{_posts(sessions)}: {worker.stderr()}"
    finally:
        worker.stop()
        broker.close()
        client.flushdb()
        client.close()
        app.extensions[EXTENSION_KEY].engine.dispose()

    [create] = fake_x.requests_to("/2/tweets", method="POST")
    assert create.headers["authorization"] == f"Bearer {issued}"
    with sessions() as session:
        post = session.get(Post, post_id)
        assert post is not None and post.external_id == fake_x.posts[-1].id
        assert fake_x.posts[-1].text == post.text
    engine.dispose()


def _posts(sessions) -> list[tuple[int, PostStatus]]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return [tuple(row) for row in session.execute(select(Post.id, Post.status).order_by(Post.id))]  # type: ignore[misc]
