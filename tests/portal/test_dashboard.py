"""The dashboard page: its figures are app.performance's, each links to exactly the posts it counts."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from html import unescape

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert

from app.clock import utcnow
from app.models import PlatformAccount, Post, PostStatus
from app.performance import dashboard
from app.statuses import AccountStatus
from tests.portal.conftest import TestUser, portal_db, signed_in


def seed(app: Flask, user_id: int, text: str, days: int = 120) -> None:
    """A post a day on X over ``days`` days (every fifth late, every seventh sent to review) and
    three scheduled ahead; bulk inserted."""
    now = utcnow()
    rows = []
    for day in range(1, days + 1):
        at = (now - timedelta(days=day)).replace(microsecond=0)
        review = day % 7 == 0
        rows.append({"user_id": user_id, "platform": "twitter", "text": f"{text} {day}", "scheduled_at": at,
                     "status": PostStatus.NEEDS_REVIEW if review else PostStatus.PUBLISHED,
                     "published_at": None if review else at + timedelta(seconds=90 if day % 5 == 0 else 5),
                     "external_id": None if review else f"{user_id}{day}", "impressions": None if review else 100 + day,
                     "likes": None if review else day % 9, "shares": 0, "comments": 1})
    rows += [{"user_id": user_id, "platform": "twitter", "text": f"{text} ahead {n}", "status": PostStatus.SCHEDULED,
              "scheduled_at": now + timedelta(hours=n + 1), "published_at": None, "external_id": None,
              "impressions": None, "likes": None, "shares": None, "comments": None} for n in range(3)]
    with portal_db(app) as session:
        session.execute(insert(Post), rows)
        session.add(PlatformAccount(user_id=user_id, platform="twitter", handle="ada", access_token_encrypted="x",
                                    status=AccountStatus.NEEDS_REAUTH))


def test_each_figure_links_to_the_posts_it_counts(portal_app: Flask, client: FlaskClient,
                                                  make_user: Callable[..., TestUser]) -> None:
    ada, zed = make_user("ada@example.com"), make_user("zed@example.com")
    seed(portal_app, ada.id, "ada's post")
    seed(portal_app, zed.id, "zed-secret")
    signed_in(client, portal_app, ada)
    page = client.get("/?days=30").get_data(as_text=True)
    assert "zed-secret" not in page
    with portal_db(portal_app) as session:
        board = dashboard(session, ada.id, utcnow(), 30)
    checked = 0
    for figure in board.figures:
        if figure.kind != "count":
            continue
        link = re.search(rf'id="figure-{figure.name}" href="([^"]+)"', page)
        assert link, figure.name
        listed = client.get(unescape(link.group(1))).get_data(as_text=True)
        assert "zed-secret" not in listed
        assert listed.count("data-post-id=") == figure.value and figure.value > 0, figure.name
        checked += 1
    assert checked == 3
    # Charts with their tables, the heatmap in local time, the account needing the user.
    assert page.count("<canvas") == 3 and page.count('class="chart-table"') == 3
    assert "needs re-authorisation" in page and "Reconnect" in page
    assert page.count("ada&#39;s post ahead") == 3 or page.count("ada's post ahead") == 3


def test_the_dashboard_needs_a_signed_in_user_and_refuses_odd_filters(
        portal_app: Flask, client: FlaskClient, user: TestUser) -> None:
    assert client.get("/").status_code == 302
    signed_in(client, portal_app, user)
    assert client.get("/dashboard/posts?since=yesterday&until=now").status_code == 400
    now = utcnow()
    window = {"since": (now - timedelta(days=900)).isoformat(), "until": now.isoformat()}
    assert client.get("/dashboard/posts", query_string=window).status_code == 400
    assert client.get("/?days=14").status_code == 200  # an unknown period shows the default one


def test_reconnect_goes_to_the_platforms_connect_route_or_the_accounts_page(
        portal_app: Flask, client: FlaskClient, user: TestUser) -> None:
    with portal_db(portal_app) as session:
        for platform in ("twitter", "linkedin", "bluesky"):
            session.add(PlatformAccount(user_id=user.id, platform=platform, handle=f"ada-{platform}",
                                        access_token_encrypted="x", status=AccountStatus.NEEDS_REAUTH))
    signed_in(client, portal_app, user)
    page = client.get("/").get_data(as_text=True)
    buttons = re.findall(r'<a class="button small" href="([^"]+)">Reconnect</a>', page)
    # X and LinkedIn through their consent screens; Bluesky (an app password, no consent screen
    # in the portal) on the accounts page, which says how: never a 404, never the settings.
    assert sorted(buttons) == ["/accounts", "/connect/linkedin", "/connect/twitter"]
    assert all(client.get(url).status_code == 302 for url in buttons if url.startswith("/connect/"))
    assert client.get("/accounts").status_code == 200
