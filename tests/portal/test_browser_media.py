"""In headless Chromium: upload an image with alt text, attach it to a post in review on each
platform (X, LinkedIn, Bluesky, Mastodon), approve them; the publishing workflow then sends each
with its image to the platform's fake over real sockets (X's v2 media upload, LinkedIn's Images
API, Bluesky's uploadBlob and images embed, Mastodon's media attachments)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from app.clock import utcnow
from app.config import Settings
from app.crypto import TokenVault
from app.media.storage import LocalStorage
from app.models import MediaItem, MediaUpload, Post, PostStatus, ReviewReason
from app.providers.base import TokenSet
from app.providers.bluesky import BlueskyPublisher
from app.providers.linkedin import LinkedInPublisher
from app.providers.mastodon import MastodonPublisher
from app.providers.registry import Providers
from app.providers.x import XPublisher
from app.runtime import Runtime
from app.users import connect_account, create_user
from app.workflows.connect import (
    connect_with_app_password,
    finish_instance_oauth,
    start_instance_oauth,
)
from app.workflows.dispatch import dispatch_due_posts
from app.workflows.media_uploads import upload_ahead, uploads_to_send
from app.workflows.publish import publish_posts
from tests.browser import csp_violations, watch_console
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.x import FakeX
from tests.media.images import image_bytes
from tests.portal.conftest import OPTED_IN, LivePortal, both_widths
from tests.portal.test_browser import EMAIL, _sign_in

ALT = "A hand-drawn diagram of a publish queue, arrows from left to right"



def test_upload_attach_approve_and_publish_with_the_image_on_each_platform(
        browser_context: Any, portal_server: LivePortal, screenshots: Path, tmp_path: Path) -> None:
    vault = TokenVault.from_settings(Settings(token_encryption_keys=portal_server.settings.token_encryption_keys))
    texts = {"twitter": "Queues, drawn: how a post reaches its second.",
             "linkedin": "How our publishing queue works, in one drawing.",
             "bluesky": "A drawing of our publish queue, for the curious.",
             "mastodon": "Our publish queue, drawn by hand."}
    with FakeX() as x, FakeLinkedIn() as linkedin, FakeBluesky() as bluesky, FakeMastodon() as mastodon:
        publishers = {
            "twitter": XPublisher(x.base_url, "x-client-id", timeout=httpx.Timeout(5.0)),
            "linkedin": LinkedInPublisher(linkedin.base_url, linkedin.base_url, "202510", "li-client-id",
                                          "li-client-secret", timeout=httpx.Timeout(5.0), sleep=lambda s: None),
            "bluesky": BlueskyPublisher(bluesky.base_url, timeout=httpx.Timeout(5.0)),
            "mastodon": MastodonPublisher(timeout=httpx.Timeout(5.0), sleep=lambda s: None),
        }
        runtime = Runtime(settings=portal_server.settings, session_factory=portal_server.sessions,
                          providers=Providers(research=None, generation=None, publishers=publishers),  # type: ignore[arg-type]
                          vault=vault, media=LocalStorage(portal_server.settings.media_dir, "/media"))
        with portal_server.sessions() as session, session.begin():
            user = create_user(session, EMAIL, {**OPTED_IN, "require_approval": True}, name="Ada", actor="test")
            connect_account(session, vault, EMAIL, "twitter", TokenSet(x.access_token, x.refresh_token,
                            utcnow() + timedelta(hours=2)), external_id=x.user_id)
            connect_account(session, vault, EMAIL, "linkedin", TokenSet(linkedin.access_token, linkedin.refresh_token,
                            utcnow() + timedelta(days=30)), external_id=linkedin.member_urn)
            later = utcnow() + timedelta(days=1)
            for platform, text in texts.items():
                session.add(Post(user_id=user.id, platform=platform, text=text, status=PostStatus.NEEDS_REVIEW,
                                 review_reason=ReviewReason.APPROVAL, scheduled_at=later))
        connect_with_app_password(runtime, EMAIL, "alice.test", "app-pass-1111")
        authorization = start_instance_oauth(runtime, mastodon.base_url)
        finish_instance_oauth(runtime, EMAIL, authorization, mastodon.approve(authorization.authorize_url))
        picture = tmp_path / "diagram.webp"
        picture.write_bytes(image_bytes("WEBP", (1200, 675), color="#2457c5", gps=True))

        page = watch_console(browser_context.new_page())
        _sign_in(page, portal_server, screenshots)
        page.click("nav >> text=Images")
        page.set_input_files("input[name=file]", str(picture))
        page.fill("textarea[name=alt_text]", ALT)
        page.fill("input[name=tags]", "queues, publishing")
        page.click("button:has-text('Upload')")
        assert "Uploaded" in page.inner_text(".flash")
        assert page.locator(f"img[alt='{ALT}']").count() == 1
        both_widths(page, screenshots, "media-library")
        with portal_server.sessions() as session:
            image_id = session.scalars(select(MediaItem.id)).one()

        for platform, text in texts.items():
            page.click("nav >> text=Posts")
            page.click(f"text={text[:20]}")
            page.select_option("select[name=media_id]", value=str(image_id))
            page.click("button:has-text('Save image')")
            assert "Image attached" in page.inner_text(".flash")
            assert page.locator(f"figure.post-image img[alt='{ALT}']").count() == 1
            both_widths(page, screenshots, f"post-image-{platform}")
            page.get_by_role("button", name="Approve and publish now").click()
            assert "Approved" in page.inner_text(".flash")
        assert csp_violations(page) == []

        # What the posting worker does, over the same database and storage.
        batches = dispatch_due_posts(runtime, utcnow())
        queued = [post_id for batch in batches for post_id in batch.post_ids]
        assert len(queued) == 4
        assert sum(upload_ahead(runtime, intent.post_ids) for intent in uploads_to_send(runtime, queued)) == 4
        time.sleep(max(0.0, (max(b.due_at for b in batches) - utcnow()).total_seconds()))
        for batch in batches:
            publish_posts(runtime, batch.post_ids, batch.claim_token, utcnow())

    with portal_server.sessions() as session:
        posts = session.scalars(select(Post).order_by(Post.platform)).all()
        assert [p.status for p in posts] == [PostStatus.PUBLISHED] * 4
        (item,) = session.scalars(select(MediaItem)).all()
        assert all(p.media_id == item.id for p in posts) and item.alt_text == ALT
        uploads = {u.platform: u.platform_media_id for u in session.scalars(select(MediaUpload))}
    (tweet,) = x.posts
    assert tweet.media_ids == [uploads["twitter"]] and x.media_of(tweet)[0].alt_text == ALT
    assert x.media_of(tweet)[0].data[:4] == b"RIFF"  # X takes WebP as it is
    (li_post,) = linkedin.posts
    assert li_post.content == {"media": {"id": uploads["linkedin"], "altText": ALT}}
    assert linkedin.images[uploads["linkedin"]].data[:3] == b"\xff\xd8\xff"  # re-encoded: LinkedIn takes no WebP
    (record,) = bluesky.posts()
    (embedded,) = record.value["embed"]["images"]
    assert embedded["alt"] == ALT and embedded["aspectRatio"] == {"width": 1200, "height": 675}
    (status,) = mastodon.statuses
    assert status.media_ids == [uploads["mastodon"]] and mastodon.media[uploads["mastodon"]].description == ALT
