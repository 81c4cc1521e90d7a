"""The admin's posts list says why a post is late and since when, as ``autopilot posts list`` does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.models import LateReason, Post, PostStatus
from app.users import create_user
from tests.admin.conftest import db


def test_posts_list_shows_why_a_post_is_late(app, client, auth) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC).replace(microsecond=0)
    since = now - timedelta(seconds=3)
    with db(app) as session:
        user = create_user(session, "ana@example.com", {"timezone": "UTC"})
        session.add_all([
            Post(user_id=user.id, platform="twitter", text="lost one", status=PostStatus.QUEUED,
                 scheduled_at=now - timedelta(seconds=40), queued_at=since, claim_token="a",
                 late_reason=LateReason.RESENT, late_since=since),
            Post(user_id=user.id, platform="twitter", text="in doubt", status=PostStatus.PUBLISHING,
                 scheduled_at=now - timedelta(seconds=50), publish_started_at=now - timedelta(seconds=49),
                 claim_token="b", late_reason=LateReason.RECONCILING, late_since=since),
            Post(user_id=user.id, platform="twitter", text="still waiting", status=PostStatus.QUEUED,
                 scheduled_at=now - timedelta(seconds=20), queued_at=now - timedelta(minutes=2),
                 claim_token="c"),
        ])
    auth.login()

    page = client.get("/admin/posts/").get_data(as_text=True)

    # Shown under each post's status (one column, so the list fits a 1366-px screen).
    assert f"being recovered: its message was lost and re-sent, since {since:%Y-%m-%d %H:%M:%S} UTC" in page
    assert f"reconciling: asking the platform whether it went out, since {since:%Y-%m-%d %H:%M:%S} UTC" in page
    assert f"waiting for its message, since {now - timedelta(seconds=20):%Y-%m-%d %H:%M:%S} UTC" in page
