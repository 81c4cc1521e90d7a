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
from app.performance import dashboard, post_records
from app.report_math import engagement_stats
from app.statuses import AccountStatus
from tests.portal.conftest import TestUser, portal_db, signed_in


def seed(app: Flask, user_id: int, text: str, days: int = 120) -> None:
    """A post a day on X over ``days`` days (every fifth late, every seventh sent to review), a
    Bluesky post every third day (0 impressions, likes and replies, as its provider stores them)
    and three scheduled ahead; bulk inserted."""
    now = utcnow()
    rows = []
    for day in range(1, days + 1):
        at = (now - timedelta(days=day)).replace(microsecond=0)
        review = day % 7 == 0
        rows.append({"user_id": user_id, "platform": "twitter", "text": f"{text} {day}", "scheduled_at": at,
                     "status": PostStatus.NEEDS_REVIEW if review else PostStatus.PUBLISHED,
                     "published_at": None if review else at + timedelta(seconds=90 if day % 5 == 0 else 5),
                     "external_id": None if review else f"{user_id}{day}", "impressions": None if review else 100 + day,
                     "likes": None if review else day % 9, "shares": 0, "comments": 1,
                     "metrics_updated_at": None if review else at + timedelta(hours=6)})
        if day % 3 == 0:
            rows.append({"user_id": user_id, "platform": "bluesky", "text": f"{text} sky {day}", "scheduled_at": at,
                         "status": PostStatus.PUBLISHED, "published_at": at, "impressions": 0,
                         "external_id": f"at://did:plc:{user_id}/app.bsky.feed.post/{day}",
                         "likes": day % 11, "shares": 1, "comments": 2, "metrics_updated_at": at + timedelta(hours=6)})
    rows += [{"user_id": user_id, "platform": "twitter", "text": f"{text} ahead {n}", "status": PostStatus.SCHEDULED,
              "scheduled_at": now + timedelta(hours=n + 1), "published_at": None, "external_id": None,
              "impressions": None, "likes": None, "shares": None, "comments": None, "metrics_updated_at": None}
             for n in range(3)]
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
        stats = engagement_stats(post_records(session, ada.id, board.period.since, board.period.until, "UTC"))
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
    # Interactions count Bluesky's posts; the rate and impressions only X's: each links to its posts.
    for name, posts in (("interactions", stats.posts), ("interactions_per_post", stats.posts),
                        ("engagement_rate", stats.rated_posts), ("impressions", stats.rated_posts)):
        link = re.search(rf'id="figure-{name}" href="([^"]+)"', page)
        assert link, name
        listed = client.get(unescape(link.group(1))).get_data(as_text=True)
        assert listed.count("data-post-id=") == posts, name
    assert 0 < stats.rated_posts < stats.posts
    assert "sky" in page.split('id="top-interactions-posts"')[1].split("</table>")[0]
    assert "sky" not in page.split('id="top-posts"')[1].split("</table>")[0]
    # Charts with their tables, the heatmap in local time, the account needing the user.
    assert page.count("<canvas") == 4 and page.count('class="chart-table"') == 4
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


def test_a_bluesky_only_user_sees_interactions_and_no_zero_rate(portal_app: Flask, client: FlaskClient,
                                                                user: TestUser) -> None:
    now = utcnow().replace(microsecond=0)
    with portal_db(portal_app) as session:
        session.execute(insert(Post), [
            {"user_id": user.id, "platform": "bluesky", "text": f"sky {n}", "scheduled_at": now - timedelta(days=n),
             "status": PostStatus.PUBLISHED, "published_at": now - timedelta(days=n), "impressions": 0,
             "external_id": f"at://did:plc:ada/app.bsky.feed.post/{n}", "likes": 4 + n, "shares": 1, "comments": 1,
             "metrics_updated_at": now - timedelta(days=n, hours=-6)} for n in range(1, 5)])
    signed_in(client, portal_app, user)
    page = client.get("/?days=7").get_data(as_text=True)
    tile = page.split('id="figure-engagement_rate"')[1].split("</a>")[0].split('">', 1)[1]
    assert "Not reported by Bluesky" in tile and "%" not in tile
    assert "Not reported by Bluesky" in page.split('id="figure-impressions"')[1].split("</a>")[0]
    interactions = page.split('id="figure-interactions"')[1].split("</a>")[0]
    assert '<span class="big">34</span>' in interactions
    assert '<span class="big">8.5</span>' in page.split('id="figure-interactions_per_post"')[1].split("</a>")[0]
    assert "Engagement rate not reported by Bluesky" in page
    assert page.count('data-label="Engagement">not reported') == 4
