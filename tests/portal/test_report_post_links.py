"""A weekly report leads to each of its posts on the account's own server: a Mastodon status on
its instance, not on a server of the platform's (there is none). The report (the workflow's,
emailed over SMTP and shown on the portal) links a post to its page in the portal, whose
"View on" link the registry builds with the account (:func:`app.platforms.published_post_url`);
the email carries no link that is not the post's own page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import Engine

from app.clock import SettableClock
from app.config import Settings
from app.crypto import TokenVault, generate_key
from app.models import Post
from app.platforms import published_post_url
from app.providers.base import TokenSet
from app.runtime import Runtime
from app.statuses import PostStatus
from app.users import connect_account, create_user
from app.workflows.report import weekly_report_for_user
from portal import create_app
from portal.ext import EXTENSION_KEY
from tests.fakes.smtp import running_smtp
from tests.portal.conftest import BASE_URL, OPTED_IN, SECRET_KEY, TestUser, portal_db, signed_in

KEY = generate_key()
WEEK_END = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
INSTANCE = "https://fosstodon.example"
HANDLE = "@ada@fosstodon.example"
STATUS_ID = "113500000000000001"


@pytest.fixture
def pg_portal(pg_engine: Engine) -> Iterator[Flask]:
    settings = Settings(database_url=pg_engine.url.render_as_string(hide_password=False), secret_key=SECRET_KEY,
                        session_cookie_secure=False, portal_base_url=BASE_URL, token_encryption_keys=(KEY,))
    app = create_app(settings, {"TESTING": True})
    yield app
    app.extensions[EXTENSION_KEY].engine.dispose()


@pytest.fixture
def ada(pg_portal: Flask) -> tuple[TestUser, int]:
    """A user on Mastodon (an instance of their own) with one published, measured status."""
    with portal_db(pg_portal) as session:
        user = create_user(session, "ada@example.com", {**OPTED_IN, "preferred_platforms": ["mastodon"],
                                                        "posting_times": {"mastodon": ["09:00"]}}, actor="test")
        connect_account(session, TokenVault([KEY]), user.email, "mastodon", TokenSet("tok", None, None),
                        handle=HANDLE, external_id="1", service_url=INSTANCE)
        at = WEEK_END - timedelta(days=4)
        post = Post(user_id=user.id, platform="mastodon", text="Shipping beats perfect.",
                    status=PostStatus.PUBLISHED, scheduled_at=at, published_at=at, external_id=STATUS_ID,
                    impressions=0, likes=9, shares=2, comments=1,  # Mastodon reports no impressions
                    metrics_updated_at=at + timedelta(days=1))
        session.add(post)
        session.flush()
        return TestUser(id=user.id, email=user.email), post.id


def test_the_weekly_report_leads_to_a_mastodon_status_on_its_instance(pg_url, pg_portal, ada):
    user, post_id = ada
    expected = f"{INSTANCE}/@ada/{STATUS_ID}"
    assert published_post_url("mastodon", STATUS_ID, None) is None  # no instance: no link at all

    with running_smtp() as (mails, port):
        settings = Settings(database_url=pg_url, token_encryption_keys=(KEY,), smtp_host="127.0.0.1",
                            smtp_port=port, smtp_starttls=False, smtp_sender="autopilot@example.com")
        runtime = Runtime.from_settings(settings, clock=SettableClock(WEEK_END))
        weekly_report_for_user(runtime, user.id, WEEK_END)
    [mail] = mails.mails
    body = mail.message.get_payload(decode=True).decode()
    assert "Shipping beats perfect." in body
    assert set(re.findall(r"https?://\S+", body)) <= {expected}

    client = signed_in(pg_portal.test_client(), pg_portal, user)
    report = client.get(f"/reports/{WEEK_END.date().isoformat()}").get_data(as_text=True)
    assert f'href="/posts/{post_id}"' in report
    # Any link to a platform's page it holds is the account's own (today it has none).
    assert set(re.findall(r'href="(https?://[^"]+)"', report)) <= {expected}
    page = client.get(f"/posts/{post_id}").get_data(as_text=True)
    assert f'<a href="{expected}" rel="noopener noreferrer">View on Mastodon</a>' in page
