"""Bluesky and Mastodon through the publishing workflow: exactly once by the platforms' own
idempotency (record key, Idempotency-Key), on PostgreSQL, with the real clients and the fakes.

The runtime's clock starts at the real time (the fakes stamp posts with it) and is moved by
offsets only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import posts
from app.clock import SettableClock
from app.config import Settings
from app.crypto import generate_key
from app.errors import ValidationError
from app.lifecycle import claim_for_publishing
from app.models import AccountStatus, PlatformAccount, Post, PostStatus, ReviewReason, User
from app.providers.bluesky import BlueskyPublisher
from app.providers.mastodon import MastodonPublisher
from app.runtime import Runtime
from app.users import create_user
from app.workflows.connect import (
    connect_with_app_password,
    finish_instance_oauth,
    start_instance_oauth,
)
from app.workflows.dispatch import dispatch_due_posts
from app.workflows.publish import publish_posts
from app.workflows.recovery import recover_posts
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.mastodon import FakeMastodon

BLUESKY, MASTODON = BlueskyPublisher.platform, MastodonPublisher.platform
EMAIL = "open@example.com"


@dataclass
class World:
    runtime: Runtime
    clock: SettableClock
    bluesky: FakeBluesky
    mastodon: FakeMastodon
    user_id: int

    def schedule(self, platform: str, text: str) -> int:
        with self.runtime.session_factory() as session, session.begin():
            user = session.get(User, self.user_id)
            return posts.create_one_off(session, user, platform, self.clock.now + timedelta(seconds=30), text,
                                        now=self.clock.now).id

    def due(self) -> list:  # type: ignore[type-arg]
        self.clock.now += timedelta(seconds=30)
        return dispatch_due_posts(self.runtime, self.clock.now)

    def publish_due(self) -> dict:  # type: ignore[type-arg]
        outcomes = {}
        for message in self.due():
            outcomes.update(publish_posts(self.runtime, message.post_ids, message.claim_token, self.clock.now).outcomes)
        return outcomes

    def post(self, post_id: int) -> Post:
        with self.runtime.session_factory() as session:
            post = session.get(Post, post_id)
            session.expunge(post)
            return post


@pytest.fixture
def world(pg_url, pg_engine) -> Iterator[World]:  # type: ignore[no-untyped-def]
    with FakeBluesky() as bluesky, FakeMastodon() as mastodon:
        settings = Settings(database_url=pg_url, token_encryption_keys=(generate_key(),), bluesky_enabled=True,
                            bluesky_pds_url=bluesky.base_url, mastodon_enabled=True, provider_timeout_seconds=1,
                            stale_grace_minutes=180)
        clock = SettableClock(datetime.now(UTC).replace(microsecond=0))
        runtime = Runtime.from_settings(settings, clock=clock)
        with runtime.session_factory() as session, session.begin():
            user_id = create_user(session, EMAIL, {"language": "de", "post_visibility": "unlisted"}).id
        connect_with_app_password(runtime, EMAIL, "alice.test", "app-pass-1111")
        authorization = start_instance_oauth(runtime, mastodon.base_url)
        finish_instance_oauth(runtime, EMAIL, authorization, mastodon.approve(authorization.authorize_url))
        yield World(runtime, clock, bluesky, mastodon, user_id)
        for publisher in runtime.providers.publishers.values():
            getattr(publisher, "close", lambda: None)()


def test_connecting_stores_the_accounts_with_their_servers_and_registers_once_per_instance(world: World) -> None:
    with world.runtime.session_factory() as session:
        accounts = {a.platform: a for a in session.scalars(select(PlatformAccount))}
    assert accounts[BLUESKY].external_id == world.bluesky.account.did
    assert accounts[BLUESKY].service_url == world.bluesky.base_url
    assert accounts[MASTODON].handle == f"@ada@{world.mastodon.base_url.split('://')[1]}"
    assert "app-pass-1111" not in accounts[BLUESKY].access_token_encrypted
    start_instance_oauth(world.runtime, world.mastodon.base_url)
    assert len(world.mastodon.apps) == 1  # remembered per instance
    with pytest.raises(ValidationError, match="app_password"):
        connect_with_app_password(world.runtime, EMAIL, "alice.test", "wrong")
    with pytest.raises(ValidationError, match="instance"):
        start_instance_oauth(world.runtime, "https://example.org/not/an/instance")


def test_each_network_gets_the_post_once_with_the_users_language_and_visibility(world: World) -> None:
    sky = world.schedule(BLUESKY, "Hallo #Bluesky https://example.org/a")
    toot = world.schedule(MASTODON, "Hallo Fediverse https://example.org/b")
    outcomes = world.publish_due()
    assert {outcomes[sky].kind, outcomes[toot].kind} == {"published"}
    [record] = world.bluesky.posts()
    [status] = world.mastodon.statuses
    assert record.value["langs"] == ["de"] and (status.language, status.visibility) == ("de", "unlisted")
    assert world.post(sky).external_id == record.uri and world.post(toot).external_id == status.id
    assert world.post(toot).published_at == status.created_at.replace(microsecond=status.created_at.microsecond
                                                                       // 1000 * 1000)


def test_an_answer_lost_after_sending_is_settled_by_the_platform_not_reposted(world: World) -> None:
    world.bluesky.hang_next(path="/xrpc/com.atproto.repo.createRecord", seconds=3)
    world.mastodon.hang_next(path="/api/v1/statuses", seconds=3)
    sky = world.schedule(BLUESKY, "Lost answer, one post.")
    toot = world.schedule(MASTODON, "Lost answer, one status.")
    outcomes = world.publish_due()
    assert outcomes[sky].kind == outcomes[toot].kind == "published"
    assert len(world.bluesky.posts()) == 1 and len(world.mastodon.statuses) == 1
    assert world.post(toot).external_id == world.mastodon.statuses[0].id
    assert "repeated create" in (world.post(toot).last_error or "")  # the Idempotency-Key answered


def interrupted(world: World, platform: str, text: str) -> int:
    """A publish whose create reached the platform and whose worker then died."""
    post_id = world.schedule(platform, text)
    [message] = world.due()
    with world.runtime.session_factory() as session, session.begin():
        [claim] = claim_for_publishing(session, [post_id], message.claim_token, world.clock.now)
    world.runtime.providers.publisher(platform).publish(world.runtime.vault.credentials(account(world, platform)),
                                                        text, _ref(world, claim))
    return post_id


def account(world: World, platform: str) -> PlatformAccount:
    with world.runtime.session_factory() as session:
        found = session.scalar(select(PlatformAccount).where(PlatformAccount.platform == platform))
        session.expunge(found)
        return found


def _ref(world: World, claim):  # type: ignore[no-untyped-def]
    from app.workflows.publish import post_ref
    return post_ref(claim, "de", "unlisted")


@pytest.mark.parametrize("platform", [BLUESKY, MASTODON])
def test_a_publish_a_dead_worker_left_is_recorded_once_with_the_platforms_creation_time(
        world: World, platform: str) -> None:
    post_id = interrupted(world, platform, "The worker died right after sending.")
    world.clock.now += timedelta(seconds=20)
    recovery = recover_posts(world.runtime, world.clock.now, None, everything_lost=True)
    assert recovery.counts()["reconciled"] == 1
    post = world.post(post_id)
    if platform == BLUESKY:
        [record] = world.bluesky.posts()
        created = datetime.fromisoformat(record.value["createdAt"].replace("Z", "+00:00"))
        assert post.external_id == record.uri
    else:
        [status] = world.mastodon.statuses
        created = status.created_at.replace(microsecond=status.created_at.microsecond // 1000 * 1000)
        assert post.external_id == status.id
    assert post.status == PostStatus.PUBLISHED and post.published_at == created


def test_past_the_keys_hour_mastodon_reconciles_by_reading_instead_of_repeating(world: World) -> None:
    post_id = interrupted(world, MASTODON, "An hour and more later.")
    world.mastodon.forget_idempotency_keys()
    world.clock.now += timedelta(minutes=70)
    recovery = recover_posts(world.runtime, world.clock.now, None, everything_lost=True)
    assert recovery.counts()["reconciled"] == 1
    assert len(world.mastodon.statuses) == 1  # found on the timeline, not posted again
    assert world.post(post_id).external_id == world.mastodon.statuses[0].id
    assert world.mastodon.requests_to(f"/api/v1/accounts/{world.mastodon.account_id}/statuses", "GET")


def test_a_revoked_app_password_needs_reauthorisation(world: World) -> None:
    world.bluesky.revoke_app_password("alice.test")
    post_id = world.schedule(BLUESKY, "After the revocation.")
    outcomes = world.publish_due()
    assert outcomes[post_id].kind == "review"
    assert world.post(post_id).review_reason == ReviewReason.NEEDS_REAUTH
    assert account(world, BLUESKY).status == AccountStatus.NEEDS_REAUTH
    assert world.bluesky.posts() == []


def test_user_settings_validate_the_visibility() -> None:
    from app.validation import validate_settings

    with pytest.raises(ValidationError, match="post_visibility"):
        validate_settings({"post_visibility": "everyone"})


def test_images_go_to_bluesky_as_an_embed_and_to_mastodon_as_one_attachment_per_status(world, tmp_path):
    from app.media.library import add_image
    from app.media.storage import LocalStorage
    from app.models import MediaUpload
    from app.workflows.media_uploads import upload_ahead, uploads_to_send
    from tests.media.images import image_bytes

    world.runtime.media = LocalStorage(tmp_path, "https://cdn.example.test")
    with world.runtime.session_factory() as session, session.begin():
        image = add_image(session, world.runtime.media, world.user_id, image_bytes("JPEG", (900, 600)),
                          alt_text="Sunrise over a harbour").id
    ids = [world.schedule(BLUESKY, "Morning light"), world.schedule(MASTODON, "Guten Morgen"),
           world.schedule(MASTODON, "Noch ein Morgen")]
    with world.runtime.session_factory() as session, session.begin():
        for post in session.scalars(select(Post).where(Post.id.in_(ids))):
            post.media_id = image
    batches = world.due()
    for intent in uploads_to_send(world.runtime, [i for b in batches for i in b.post_ids]):
        assert upload_ahead(world.runtime, intent.post_ids) == 3  # Mastodon: one per status
    for message in batches:
        publish_posts(world.runtime, message.post_ids, message.claim_token, world.clock.now)
    assert all(world.post(i).status == PostStatus.PUBLISHED for i in ids)
    (record,) = world.bluesky.posts()
    assert record.value["embed"]["images"][0]["alt"] == "Sunrise over a harbour"
    attached = [s.media_ids for s in world.mastodon.statuses]
    assert len(attached) == 2 and all(len(m) == 1 for m in attached) and attached[0] != attached[1]
    with world.runtime.session_factory() as session:
        keys = sorted((u.platform, u.post_key != 0) for u in session.scalars(select(MediaUpload)))
    assert keys == [(BLUESKY, False), (MASTODON, True), (MASTODON, True)]


def test_metrics_are_collected_from_both_networks_within_the_day(world: World) -> None:
    from app.models import MetricSnapshot
    from app.workflows.metrics import collect_metrics_for_user

    sky = world.schedule(BLUESKY, "Measure me on Bluesky.")
    toot = world.schedule(MASTODON, "Measure me on Mastodon.")
    world.publish_due()
    world.bluesky.posts()[0].counts.update(likeCount=7, repostCount=1, quoteCount=1, replyCount=2)
    world.mastodon.statuses[0].counts.update(favourites=5, reblogs=3, replies=1)
    world.clock.now += timedelta(hours=12)  # inside the 24-hour snapshot's window
    counts = collect_metrics_for_user(world.runtime, world.user_id, world.clock.now)
    assert counts["snapshots"] == 2 and counts["errors"] == {} and counts["missing"] == 0
    with world.runtime.session_factory() as session:
        snaps = {s.post_id: s for s in session.scalars(select(MetricSnapshot))}
    assert (snaps[sky].likes, snaps[sky].shares, snaps[sky].comments) == (7, 2, 2)
    assert (snaps[toot].likes, snaps[toot].shares, snaps[toot].comments) == (5, 3, 1)
