"""A post's image reaches each platform exactly once, and before the post's second.

Uploading an image takes seconds (X processes it, LinkedIn too), so it is done **ahead**: when
the minute's dispatch queues a post (up to two minutes before its second), an
:class:`~app.intents.UploadMedia` intent uploads its image at once, and the publish at the
second only names the platform's media id. The upload is recorded per (image, platform
account) with the platform's expiry (:class:`~app.models.MediaUpload`): a retried, re-sent or
reconciled publish reuses it, so an image is uploaded once however often its post is tried.

An upload creates no post. Whatever goes wrong with one (a timeout, a crash before it is
recorded) is safe to repeat: at worst the platform holds an unused upload, which it expires.
The create is guarded as before (:mod:`app.workflows.publish`): a crash between the upload and
the create leaves a ``publishing`` post that recovery reconciles, never a second post. When the
upload ahead did not happen or failed, the publish uploads inline (late rather than never) and
classifies the failure like any other that created nothing.

Once an upload's platform id has expired its row is of no use (a publish reuses only an
upload valid :data:`DEFAULT_REUSE_MARGIN` longer, and uploads again when it finds none): the
quarter-hour sweep deletes those rows (:data:`PRUNE_EXPIRED_UPLOADS`), in bounded batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, TypeVar

from sqlalchemy import delete, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import AutopilotError
from app.intents import Intent, UploadMedia
from app.jobs.spec import Step, Tick
from app.media.images import ImageRefused, fit_to_limits
from app.models import AccountStatus, MediaItem, MediaUpload, PlatformAccount, Post, PostStatus
from app.platforms import get_platform
from app.providers.base import AccountCredentials, MediaFile, Publisher, UploadedMedia
from app.providers.errors import AuthError, PermanentError, RateLimited, TemporaryError
from app.runtime import Runtime

__all__ = ["DEFAULT_REUSE_MARGIN", "PRUNE_EXPIRED_UPLOADS", "MediaNeed", "ensure_uploaded", "media_needs",
           "prune_expired_uploads", "upload_ahead", "uploads_to_send"]

logger = logging.getLogger(__name__)

#: Posts per upload-ahead message: a burst's uploads spread over the posting workers.
POSTS_PER_UPLOAD_MESSAGE = 100

T = TypeVar("T")
R = TypeVar("R")

#: A recorded upload is reused only while it stays valid this much longer: a publish that
#: reuses it must still be able to name it when its create reaches the platform.
DEFAULT_REUSE_MARGIN = timedelta(minutes=15)
#: Expired uploads (rows) deleted per transaction by the sweep: each batch's locks are brief.
DEFAULT_PRUNE_BATCH_ROWS = 1_000
#: The most batches one sweep deletes; any rest goes at the next sweep, a quarter of an hour on.
DEFAULT_PRUNE_MAX_BATCHES = 20


@dataclass(frozen=True)
class MediaNeed:
    """A post's image, and the upload its account already has of it (if still usable)."""

    media_id: int
    account_id: int
    #: 0, or the post's id where the platform ties an upload to one post (Mastodon).
    post_key: int
    storage_key: str
    content_type: str
    alt_text: str
    width_px: int
    height_px: int
    frames: int
    known: UploadedMedia | None = None


def usable(upload: MediaUpload, now: datetime) -> bool:
    return upload.expires_at is None or upload.expires_at > now + DEFAULT_REUSE_MARGIN


def media_needs(session: Session, posts: Sequence[tuple[int, int]], now: datetime) -> dict[int, MediaNeed]:
    """The image each of these ``(post id, account id)`` carries, with any usable upload.

    Two queries whatever the number of posts: their images, and the uploads of those images
    to those accounts.
    """
    if not posts:
        return {}
    account_of = dict(posts)
    rows = session.execute(
        select(Post.id, Post.platform, MediaItem).join(MediaItem, MediaItem.id == Post.media_id)
        .where(Post.id.in_(account_of))).all()
    if not rows:
        return {}
    keys = {post_id: (item.id, account_of[post_id], post_key(platform, post_id))
            for post_id, platform, item in rows}
    known = {(u.media_id, u.account_id, u.post_key): u for u in session.scalars(
        select(MediaUpload).where(tuple_(MediaUpload.media_id, MediaUpload.account_id, MediaUpload.post_key)
                                  .in_(sorted(set(keys.values())))))}
    needs = {}
    for post_id, _platform, item in rows:
        media_id, account_id, key = keys[post_id]
        upload = known.get(keys[post_id])
        reuse = (UploadedMedia(upload.platform_media_id, item.alt_text, upload.expires_at)
                 if upload is not None and usable(upload, now) else None)
        needs[post_id] = MediaNeed(media_id, account_id, key, item.storage_key, item.content_type, item.alt_text,
                                   item.width_px, item.height_px, item.frames, reuse)
    return needs


def post_key(platform: str, post_id: int) -> int:
    """0 where one upload serves every post of an account, else the post's own id."""
    try:
        per_post = get_platform(platform).images.upload_per_post
    except ValueError:
        per_post = False
    return post_id if per_post else 0


def ensure_uploaded(runtime: Runtime, publisher: Publisher, creds: AccountCredentials, platform: str,
                    need: MediaNeed) -> UploadedMedia:
    """The platform's id for the image: the recorded upload when usable, else upload and record.

    Raises PermanentError when the platform cannot take the image (with the reason) and
    TemporaryError when the image could not be read or sent: both mean no post was created.
    """
    if need.known is not None:
        return need.known
    try:
        data = runtime.media_storage.get(need.storage_key)
        entry = get_platform(platform)
        fitted, content_type = fit_to_limits(data, need.content_type, entry.images,
                                             platform=entry.display_name)
    except ImageRefused as exc:
        raise PermanentError(f"the image cannot go out: {exc.reason}") from exc
    except AutopilotError as exc:
        raise TemporaryError(f"the image could not be read from storage: {exc}") from exc
    width, height = (need.width_px, need.height_px) if fitted is data else _size(fitted)
    try:
        uploaded = publisher.upload_media(creds, MediaFile(fitted, content_type, need.alt_text, width, height,
                                                           animated=need.frames > 1))
    except (AuthError, PermanentError, RateLimited, TemporaryError):
        raise
    except Exception as exc:  # noqa: BLE001 - an upload creates no post: whatever failed, retry
        raise TemporaryError(f"uploading the image failed, no post was created: {exc}") from exc
    return record_upload(runtime, need, platform, uploaded, len(fitted))


def _size(data: bytes) -> tuple[int, int]:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def record_upload(runtime: Runtime, need: MediaNeed, platform: str, uploaded: UploadedMedia,
                  size_bytes: int) -> UploadedMedia:
    """Record an upload once per (image, account). A stale record is replaced; when another
    worker recorded a usable one first, that one is used (ours is left unused on the platform)."""
    now = runtime.now()
    with runtime.session_factory() as session, session.begin():
        same = (MediaUpload.media_id == need.media_id, MediaUpload.account_id == need.account_id,
                MediaUpload.post_key == need.post_key)
        session.execute(delete(MediaUpload).where(
            *same, MediaUpload.expires_at.is_not(None), MediaUpload.expires_at <= now + DEFAULT_REUSE_MARGIN))
        try:
            with session.begin_nested():
                session.add(MediaUpload(media_id=need.media_id, account_id=need.account_id,
                                        post_key=need.post_key, platform=platform,
                                        platform_media_id=uploaded.media_id, expires_at=uploaded.expires_at,
                                        size_bytes=size_bytes, uploaded_at=now))
        except IntegrityError:
            first = session.scalar(select(MediaUpload).where(*same))
            if first is not None:
                logger.info("image %s was uploaded to account %s concurrently; using the first upload",
                            need.media_id, need.account_id)
                return UploadedMedia(first.platform_media_id, need.alt_text, first.expires_at)
    return uploaded


def uploads_to_send(runtime: Runtime, post_ids: Sequence[int]) -> list[UploadMedia]:
    """The upload-ahead intents for those of ``post_ids`` (just queued) that carry an image,
    about :data:`POSTS_PER_UPLOAD_MESSAGE` each so a burst's uploads are shared by the workers,
    with every post of one account on one platform in the same message: two messages would
    each upload the image the account's posts share."""
    if not post_ids:
        return []
    with runtime.session_factory() as session:
        rows = session.execute(select(Post.id, Post.user_id, Post.platform).where(
            Post.id.in_(post_ids), Post.media_id.is_not(None))
            .order_by(Post.user_id, Post.platform, Post.id)).all()
    messages: list[UploadMedia] = []
    current: list[int] = []
    for _, group in groupby(rows, key=lambda row: (row.user_id, row.platform)):
        ids = [row.id for row in group]
        if current and len(current) + len(ids) > POSTS_PER_UPLOAD_MESSAGE:
            messages.append(UploadMedia(tuple(current)))
            current = []
        current.extend(ids)
    if current:
        messages.append(UploadMedia(tuple(current)))
    return messages


def serially(call: Callable[[T], R], items: Sequence[T]) -> list[R]:
    return [call(item) for item in items]


def upload_ahead(runtime: Runtime, post_ids: Sequence[int], *,
                 run_calls: Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]] = serially) -> int:
    """Upload the images of these queued posts that their accounts do not have yet; returns
    how many uploads were made. ``run_calls`` runs the uploads (serially here, on the posting
    actor's shared thread pool in a worker). A failure is logged and left to the publish,
    which uploads inline and classifies it; nothing here changes a post."""
    now = runtime.now()
    with runtime.session_factory() as session:
        rows = session.execute(select(Post.id, Post.user_id, Post.platform).where(
            Post.id.in_(post_ids), Post.status == PostStatus.QUEUED, Post.media_id.is_not(None))).all()
        pairs = sorted({(row.user_id, row.platform) for row in rows})
        accounts = {(a.user_id, a.platform): a for a in session.scalars(select(PlatformAccount).where(
            tuple_(PlatformAccount.user_id, PlatformAccount.platform).in_(pairs),
            PlatformAccount.status == AccountStatus.ACTIVE))} if pairs else {}
        targets = [(row.id, row.platform, accounts[(row.user_id, row.platform)]) for row in rows
                   if (row.user_id, row.platform) in accounts]
        needs = media_needs(session, [(post_id, account.id) for post_id, _, account in targets], now)
    work: list[tuple[int, str, PlatformAccount, MediaNeed]] = []
    done: set[tuple[int, int, int]] = set()
    for post_id, platform, account in targets:
        need = needs.get(post_id)
        if need is None or need.known is not None or (need.media_id, account.id, need.post_key) in done:
            continue
        done.add((need.media_id, account.id, need.post_key))
        work.append((post_id, platform, account, need))

    def upload(item: tuple[int, str, PlatformAccount, MediaNeed]) -> bool:
        post_id, platform, account, need = item
        try:
            publisher = runtime.providers.publisher(platform)
            creds = runtime.vault.credentials(account)
            if creds.expires_at is not None and creds.expires_at <= now:
                return False  # the publish refreshes the token, then uploads inline
            ensure_uploaded(runtime, publisher, creds, platform, need)
            return True
        except Exception as exc:  # noqa: BLE001 - the publish retries and classifies it
            logger.warning("uploading image %s ahead for post %s failed (%s); the publish will retry",
                           need.media_id, post_id, exc)
            return False

    return sum(1 for uploaded in run_calls(upload, work) if uploaded)


def prune_expired_uploads(session: Session, now: datetime, *, limit: int = DEFAULT_PRUNE_BATCH_ROWS) -> int:
    """Delete up to ``limit`` uploads whose platform id expired by ``now``, soonest expired
    first (through ``ix_media_uploads_expires_at``); how many.

    Only expired rows go, and no publish would have used one: a publish reuses an upload only
    while it stays valid :data:`DEFAULT_REUSE_MARGIN` longer and uploads again when it finds
    none (:func:`media_needs`, :func:`ensure_uploaded`). An upload with no known expiry
    (``expires_at`` NULL) stays until its image or its account is deleted.
    """
    expired = (select(MediaUpload.id).where(MediaUpload.expires_at <= now)
               .order_by(MediaUpload.expires_at).limit(limit))
    deleted: int = session.execute(delete(MediaUpload).where(MediaUpload.id.in_(expired.scalar_subquery()))
                                   ).rowcount  # type: ignore[attr-defined]
    return deleted


def prune_expired_uploads_in_batches(runtime: Runtime, now: datetime, *,
                                     batch_rows: int = DEFAULT_PRUNE_BATCH_ROWS,
                                     max_batches: int = DEFAULT_PRUNE_MAX_BATCHES) -> int:
    """:func:`prune_expired_uploads` a batch per transaction until none is left or
    ``max_batches`` ran; how many rows were deleted."""
    total = 0
    for _ in range(max_batches):
        with runtime.session_factory.begin() as session:
            deleted = prune_expired_uploads(session, now, limit=batch_rows)
        total += deleted
        if deleted < batch_rows:
            break
    return total


def _prune(tick: Tick) -> Sequence[Intent]:
    deleted = prune_expired_uploads_in_batches(tick.runtime, tick.now)
    if deleted:
        logger.info("pruned %d media uploads whose platform id expired", deleted)
    return []


PRUNE_EXPIRED_UPLOADS = Step(
    "prune_expired_uploads",
    "Delete the records of image uploads whose platform media id has expired (in batches)",
    _prune)
