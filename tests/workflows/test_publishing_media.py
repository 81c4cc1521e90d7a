"""Posts with images: uploaded ahead of their second, once per (image, account), reused by a
retried or reconciled publish; the real X and LinkedIn clients against their socket fakes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app import platforms
from app.clock import SettableClock
from app.config import Settings
from app.crypto import TokenVault
from app.intents import PublishPosts, UploadMedia
from app.jobs.spec import Tick
from app.media.library import add_image
from app.media.storage import LocalStorage
from app.models import MediaUpload, PlatformAccount, Post, PostStatus, ReviewReason
from app.providers.base import TokenSet
from app.providers.linkedin import LinkedInPublisher
from app.providers.registry import Providers
from app.providers.x import XPublisher
from app.runtime import Runtime
from app.users import connect_account, create_user
from app.workflows import dispatch, sweep
from app.workflows.media_uploads import prune_expired_uploads_in_batches, upload_ahead
from app.workflows.publish import publish_posts
from app.workflows.recovery import recover_posts
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.x import FakeX
from tests.media.images import image_bytes

TIMEOUT = httpx.Timeout(1.0, connect=2.0)


@pytest.fixture
def fakes() -> Iterator[tuple[FakeX, FakeLinkedIn]]:
    with FakeX() as x, FakeLinkedIn() as linkedin:
        yield x, linkedin


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "media", "https://cdn.example.test")


@pytest.fixture
def runtime(settings: Settings, sessions: sessionmaker[Session], vault: TokenVault, clock: SettableClock,
            fakes, storage) -> Runtime:
    x, linkedin = fakes
    publishers = {
        "twitter": XPublisher(x.base_url, "x-client-id", timeout=TIMEOUT, clock=clock, sleep=lambda s: None),
        "linkedin": LinkedInPublisher(linkedin.base_url, linkedin.base_url, "202510", "li-client-id",
                                      "li-client-secret", timeout=TIMEOUT, clock=clock, sleep=lambda s: None),
    }
    providers = Providers(research=None, generation=None, publishers=publishers)  # type: ignore[arg-type]
    return Runtime(settings=settings, session_factory=sessions, providers=providers, vault=vault,
                   clock=clock, media=storage)


@pytest.fixture
def user_id(sessions, vault, now, fakes) -> int:
    x, linkedin = fakes
    with sessions.begin() as session:
        user = create_user(session, "ada@example.com", {"timezone": "UTC"})
        connect_account(session, vault, "ada@example.com", "twitter",
                        TokenSet(x.access_token, x.refresh_token, now + timedelta(hours=2)), external_id=x.user_id)
        connect_account(session, vault, "ada@example.com", "linkedin",
                        TokenSet(linkedin.access_token, linkedin.refresh_token, now + timedelta(days=30)),
                        external_id=linkedin.member_urn)
        return user.id


def _image(sessions, storage, user_id, fmt="PNG", **kwargs) -> int:
    with sessions.begin() as session:
        return add_image(session, storage, user_id, image_bytes(fmt, **kwargs), alt_text="A teal square").id


def _post(sessions, user_id, at, platform="twitter", media_id=None, text="Shipping beats perfect.") -> int:
    with sessions.begin() as session:
        post = Post(user_id=user_id, platform=platform, text=text, status=PostStatus.SCHEDULED,
                    scheduled_at=at, media_id=media_id)
        session.add(post)
        session.flush()
        return post.id


def _dispatch(runtime: Runtime, now: datetime) -> tuple[list[PublishPosts], list[UploadMedia]]:
    tick = Tick(runtime, dispatch.DISPATCH_DUE_POSTS, now, now, {})
    intents = dispatch.CLAIM_DUE_POSTS.run(tick)
    return ([i for i in intents if isinstance(i, PublishPosts)], [i for i in intents if isinstance(i, UploadMedia)])


def _uploads(sessions) -> list[MediaUpload]:
    with sessions() as session:
        return list(session.scalars(select(MediaUpload).order_by(MediaUpload.id)))


def _initializes(x: FakeX) -> int:
    return len(x.requests_to("/2/media/upload/initialize"))


def test_images_are_uploaded_when_queued_and_the_publish_only_names_them(runtime, sessions, storage, user_id,
                                                                         fakes, now):
    x, linkedin = fakes
    image = _image(sessions, storage, user_id)
    due = now + timedelta(seconds=90)
    tweet, li_post = _post(sessions, user_id, due, media_id=image), _post(sessions, user_id, due, "linkedin", image)
    plain = _post(sessions, user_id, due, text="No picture today.")
    batches, uploads = _dispatch(runtime, now)
    assert [sorted(u.post_ids) for u in uploads] == [[tweet, li_post]]  # the text-only post needs none
    assert upload_ahead(runtime, uploads[0].post_ids) == 2
    assert {u.platform for u in _uploads(sessions)} == {"twitter", "linkedin"}
    before_publish = len(x.requests) + len(linkedin.requests)
    for batch in batches:
        publish_posts(runtime, batch.post_ids, batch.claim_token, due)
    # At the second: no media call at all, only the creates.
    media_calls = [r for r in x.requests[before_publish:] if r.path.startswith("/2/media")]
    assert media_calls == [] and _initializes(x) == 1 and len(linkedin.images) == 1
    with sessions() as session:
        assert {p.id: p.status for p in session.scalars(select(Post))} == {
            tweet: PostStatus.PUBLISHED, li_post: PostStatus.PUBLISHED, plain: PostStatus.PUBLISHED}
    by_text = {p.text: p for p in x.posts}
    x_upload = next(u for u in _uploads(sessions) if u.platform == "twitter")
    assert by_text["Shipping beats perfect."].media_ids == [x_upload.platform_media_id]
    assert by_text["No picture today."].media_ids == []
    (li,) = linkedin.posts
    assert li.content["media"]["id"].startswith("urn:li:image:") and li.content["media"]["altText"] == "A teal square"


def test_without_the_upload_ahead_the_publish_uploads_inline_once(runtime, sessions, storage, user_id, fakes, now):
    x, _ = fakes
    image = _image(sessions, storage, user_id)
    post_id = _post(sessions, user_id, now + timedelta(seconds=30), media_id=image)
    batches, _ = _dispatch(runtime, now)
    (batch,) = batches
    assert publish_posts(runtime, batch.post_ids, batch.claim_token, now).outcomes[post_id].kind == "published"
    assert _initializes(x) == 1 and len(_uploads(sessions)) == 1 and x.posts[0].media_ids


def test_a_retried_publish_reuses_the_upload(runtime, sessions, storage, user_id, fakes, now):
    x, _ = fakes
    image = _image(sessions, storage, user_id)
    post_id = _post(sessions, user_id, now + timedelta(seconds=30), media_id=image)
    (batch,), uploads = _dispatch(runtime, now)
    upload_ahead(runtime, uploads[0].post_ids)
    x.respond_next(503, {"title": "Service Unavailable"}, method="POST", path="/2/tweets")
    outcome = publish_posts(runtime, batch.post_ids, batch.claim_token, now).outcomes[post_id]
    assert outcome.kind == "retry"
    again = publish_posts(runtime, [post_id], outcome.claim_token, outcome.retry_at).outcomes[post_id]
    assert again.kind == "published"
    assert _initializes(x) == 1 and len(x.posts) == 1
    assert x.posts[0].media_ids == [_uploads(sessions)[0].platform_media_id]


def test_a_crash_between_upload_and_create_never_makes_two_posts(runtime, sessions, storage, user_id, fakes, now):
    """The worker dies after the create reached X (the tweet exists) but before it was recorded:
    recovery finds the tweet; the image was uploaded once and the post published once."""
    x, _ = fakes
    image = _image(sessions, storage, user_id)
    post_id = _post(sessions, user_id, now + timedelta(seconds=30), media_id=image)
    (batch,), uploads = _dispatch(runtime, now)
    upload_ahead(runtime, uploads[0].post_ids)
    x.drop_next(method="POST", path="/2/tweets")  # created, then the connection dies: unknown
    first = publish_posts(runtime, batch.post_ids, batch.claim_token, now).outcomes[post_id]
    assert first.kind == "published"  # reconciled at once: found on X
    recover_posts(runtime, now + timedelta(minutes=5), None, everything_lost=True)
    assert len(x.posts) == 1 and _initializes(x) == 1 and len(_uploads(sessions)) == 1


def test_a_worker_killed_after_the_upload_leaves_one_upload_and_no_second_post(
        runtime, sessions, storage, user_id, fakes, now):
    """Killed after the upload was recorded, before the create: recovery looks (nothing on X),
    sends the post to review; approved again, it reuses the recorded upload."""
    x, _ = fakes
    image = _image(sessions, storage, user_id)
    post_id = _post(sessions, user_id, now + timedelta(seconds=30), media_id=image)
    (batch,), uploads = _dispatch(runtime, now)
    upload_ahead(runtime, uploads[0].post_ids)
    with sessions.begin() as session:  # the claim the dead worker committed
        session.execute(update(Post).where(Post.id == post_id).values(
            status=PostStatus.PUBLISHING, publish_started_at=now + timedelta(seconds=30), attempts=1))
    recover_posts(runtime, now + timedelta(minutes=3), None, everything_lost=True)
    with sessions() as session:
        post = session.get(Post, post_id)
        assert post.status == PostStatus.NEEDS_REVIEW and post.review_reason == ReviewReason.OUTCOME_UNKNOWN
    assert x.posts == []
    with sessions.begin() as session:  # approved for a later second
        session.execute(update(Post).where(Post.id == post_id).values(
            status=PostStatus.SCHEDULED, scheduled_at=now + timedelta(minutes=10), review_reason=None))
    later = now + timedelta(minutes=9)
    (batch,), _ = _dispatch(runtime, later)
    publish_posts(runtime, batch.post_ids, batch.claim_token, later + timedelta(minutes=1))
    assert len(x.posts) == 1 and _initializes(x) == 1
    assert x.posts[0].media_ids == [_uploads(sessions)[0].platform_media_id]


def test_an_upload_near_its_expiry_is_made_again_and_recorded_once(runtime, sessions, storage, user_id,
                                                                    fakes, now):
    x, _ = fakes
    image = _image(sessions, storage, user_id)
    _post(sessions, user_id, now + timedelta(seconds=30), media_id=image, text="First")
    (batch,), uploads = _dispatch(runtime, now)
    upload_ahead(runtime, uploads[0].post_ids)
    with sessions.begin() as session:
        session.execute(update(MediaUpload).values(expires_at=now + timedelta(minutes=5)))
    upload_ahead(runtime, uploads[0].post_ids)
    assert _initializes(x) == 2
    (upload,) = _uploads(sessions)
    assert upload.expires_at > now + timedelta(hours=1)


def test_linkedin_gets_a_webp_re_encoded_as_a_format_it_takes(runtime, sessions, storage, user_id, fakes, now):
    _, linkedin = fakes
    image = _image(sessions, storage, user_id, "WEBP")
    post_id = _post(sessions, user_id, now + timedelta(seconds=30), "linkedin", image)
    (batch,), _ = _dispatch(runtime, now)
    assert publish_posts(runtime, batch.post_ids, batch.claim_token, now).outcomes[post_id].kind == "published"
    (stored,) = linkedin.images.values()
    assert stored.data[:3] == b"\xff\xd8\xff" and stored.status == "AVAILABLE"


def test_an_image_a_platform_refuses_sends_the_post_to_review_with_the_reason(
        runtime, sessions, storage, user_id, fakes, now, monkeypatch):
    x, _ = fakes
    strict = dataclasses.replace(platforms.PLATFORMS["twitter"].images, max_pixels=100)
    monkeypatch.setitem(platforms.PLATFORMS, "twitter",
                        dataclasses.replace(platforms.PLATFORMS["twitter"], images=strict))
    image = _image(sessions, storage, user_id, "GIF", size=(40, 40), mode="P", frames=3)
    post_id = _post(sessions, user_id, now + timedelta(seconds=30), media_id=image)
    (batch,), _ = _dispatch(runtime, now)
    outcome = publish_posts(runtime, batch.post_ids, batch.claim_token, now).outcomes[post_id]
    assert outcome.kind == "review"
    with sessions() as session:
        post = session.get(Post, post_id)
        assert "animated" in post.last_error and "X does not take" in post.last_error
    assert x.posts == [] and x.requests == []


def test_an_accounts_posts_share_one_upload_message_so_their_image_is_uploaded_once(
        runtime, sessions, storage, user_id, now, monkeypatch):
    from app.workflows import media_uploads

    monkeypatch.setattr(media_uploads, "POSTS_PER_UPLOAD_MESSAGE", 3)
    image = _image(sessions, storage, user_id)
    due = now + timedelta(seconds=60)
    ids = [_post(sessions, user_id, due, media_id=image, text=f"post {n}") for n in range(5)]
    messages = media_uploads.uploads_to_send(runtime, ids)
    assert [sorted(m.post_ids) for m in messages] == [ids]  # five posts, one account: not split


def test_the_sweep_prunes_expired_uploads_and_keeps_those_a_queued_post_will_use(
        runtime, sessions, storage, user_id, fakes, now, clock):
    x, _ = fakes
    old_image = _image(sessions, storage, user_id, color="red")
    due = now + timedelta(seconds=30)
    _post(sessions, user_id, due, media_id=old_image, text="Old on X")
    _post(sessions, user_id, due, "linkedin", old_image, text="Old on LinkedIn")
    batches, uploads = _dispatch(runtime, now)
    upload_ahead(runtime, uploads[0].post_ids)
    for batch in batches:
        publish_posts(runtime, batch.post_ids, batch.claim_token, due)
    # Two days on, X's id of the old image has expired (a day); LinkedIn's URN never does.
    later = now + timedelta(days=2)
    clock.now = later
    with sessions.begin() as session:  # X's token, refreshed since
        connect_account(session, runtime.vault, "ada@example.com", "twitter",
                        TokenSet(x.access_token, x.refresh_token, later + timedelta(hours=2)), external_id=x.user_id)
    new_image = _image(sessions, storage, user_id, color="navy")
    queued = _post(sessions, user_id, later + timedelta(seconds=30), media_id=new_image, text="New on X")
    (batch,), uploads = _dispatch(runtime, later)
    upload_ahead(runtime, uploads[0].post_ids)
    assert _initializes(x) == 2
    before = {(u.media_id, u.platform): u.expires_at for u in _uploads(sessions)}
    assert before[(old_image, "twitter")] < later < before[(new_image, "twitter")]
    assert before[(old_image, "linkedin")] is None
    assert sweep.PRUNE_EXPIRED_UPLOADS in sweep.SWEEP_STUCK_POSTS.steps

    assert sweep.PRUNE_EXPIRED_UPLOADS.run(Tick(runtime, sweep.SWEEP_STUCK_POSTS, later, later, {})) == []

    assert {(u.media_id, u.platform) for u in _uploads(sessions)} == {(old_image, "linkedin"),
                                                                       (new_image, "twitter")}
    # The queued post names the upload kept for it: no upload at its second.
    outcome = publish_posts(runtime, batch.post_ids, batch.claim_token, later + timedelta(seconds=30))
    assert outcome.outcomes[queued].kind == "published" and _initializes(x) == 2
    kept = next(u for u in _uploads(sessions) if u.media_id == new_image)
    assert x.posts[-1].media_ids == [kept.platform_media_id]
    # A new post of the old image finds no upload of it any more: it uploads again, and records it.
    again = _post(sessions, user_id, later + timedelta(seconds=60), media_id=old_image, text="Old again")
    (batch,), _ = _dispatch(runtime, later + timedelta(seconds=30))
    assert publish_posts(runtime, batch.post_ids, batch.claim_token,
                         later + timedelta(seconds=60)).outcomes[again].kind == "published"
    assert _initializes(x) == 3
    fresh = next(u for u in _uploads(sessions) if (u.media_id, u.platform) == (old_image, "twitter"))
    assert fresh.expires_at > later and x.posts[-1].media_ids == [fresh.platform_media_id]


def test_expired_uploads_are_pruned_in_bounded_batches(runtime, sessions, storage, user_id, now):
    image = _image(sessions, storage, user_id)
    with sessions.begin() as session:
        account_id = session.scalar(select(PlatformAccount.id).where(PlatformAccount.platform == "twitter"))
        expiries = [now - timedelta(minutes=n) for n in range(5)] + [now + timedelta(minutes=1), None]
        session.add_all(MediaUpload(media_id=image, account_id=account_id, post_key=key, platform="twitter",
                                    platform_media_id=f"m{key}", expires_at=at, size_bytes=1, uploaded_at=now)
                        for key, at in enumerate(expiries))

    # Two batches of two: four of the five expired rows (the soonest expired first); the rest next time.
    assert prune_expired_uploads_in_batches(runtime, now, batch_rows=2, max_batches=2) == 4
    assert sorted(u.platform_media_id for u in _uploads(sessions)) == ["m0", "m5", "m6"]
    assert prune_expired_uploads_in_batches(runtime, now, batch_rows=2, max_batches=2) == 1
    assert sorted(u.platform_media_id for u in _uploads(sessions)) == ["m5", "m6"]
