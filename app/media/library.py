"""A user's image library: add (checked, cleaned, stored), find, attach, delete, always by owner.

Every function takes the owner's user id and looks images up by (id, owner): an image another
user owns is :class:`~app.errors.NotFound`, exactly like one that does not exist, so nothing
tells a user which ids exist (the portal answers 404).

Adding writes the objects first and the row after; when the row cannot be written the objects
are removed again, so a refused or failed upload leaves nothing behind. Deleting removes the
row first and the objects after (an orphaned object is harmless, a row pointing at nothing is
a broken image).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.errors import FieldError, NotFound, ValidationError
from app.media.images import (
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_MAX_UPLOAD_PIXELS,
    CleanImage,
    ImageRefused,
    MediaError,
    clean_upload,
    thumbnail,
)
from app.media.storage import MediaStorage, StorageError
from app.models import MediaItem, Post, PostStatus

__all__ = ["MAX_ALT_TEXT", "MAX_TAGS", "ImageInUse", "add_image", "attach_image", "choose_image", "delete_image",
           "matching_images", "normalise_tags", "owned_image", "update_image", "user_images"]

logger = logging.getLogger(__name__)

#: The longest alt text accepted (Mastodon's and X's limits are 1,500 and 1,000; LinkedIn's
#: and Bluesky's are longer): one limit every platform takes.
MAX_ALT_TEXT = 1000
#: Tags per image, and the longest tag.
MAX_TAGS = 20
MAX_TAG_LENGTH = 40
#: Statuses in which a post has yet to go out: its image must stay.
PENDING_STATUSES = (PostStatus.SCHEDULED, PostStatus.QUEUED, PostStatus.PUBLISHING, PostStatus.NEEDS_REVIEW)

_TAG_SPLIT = re.compile(r"[,\s#]+")


class ImageInUse(MediaError):
    """The image is attached to posts that have yet to go out."""


def normalise_tags(raw: str | Iterable[str]) -> list[str]:
    """Tags as stored: lower-case words, without ``#``, each once, in the order given."""
    words = _TAG_SPLIT.split(raw) if isinstance(raw, str) else [w for part in raw for w in _TAG_SPLIT.split(part)]
    return list(dict.fromkeys(word.strip().lower() for word in words if word.strip()))


def _check_fields(alt_text: str, tags: list[str]) -> str:
    alt = " ".join((alt_text or "").split())
    errors = []
    if not alt:
        errors.append(FieldError("alt_text", alt_text, "required: describe the image for people who cannot see it"))
    elif len(alt) > MAX_ALT_TEXT:
        errors.append(FieldError("alt_text", f"{alt[:40]}...", f"at most {MAX_ALT_TEXT} characters, got {len(alt)}"))
    if len(tags) > MAX_TAGS:
        errors.append(FieldError("tags", tags, f"at most {MAX_TAGS} tags"))
    long = [tag for tag in tags if len(tag) > MAX_TAG_LENGTH]
    if long:
        errors.append(FieldError("tags", long, f"a tag has at most {MAX_TAG_LENGTH} characters"))
    if errors:
        raise ValidationError(errors)
    return alt


def add_image(session: Session, storage: MediaStorage, user_id: int, data: bytes, *, alt_text: str,
              tags: str | Iterable[str] = (), generated: bool = False,
              max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
              max_pixels: int = DEFAULT_MAX_UPLOAD_PIXELS) -> MediaItem:
    """Check, clean and store an image in ``user_id``'s library; the new row is flushed.

    Raises :class:`~app.errors.ValidationError` naming every bad field (the file's problem under
    ``file``: not an image, SVG, too big, a bomb...); nothing is stored then.
    """
    tag_list = normalise_tags(tags)
    errors: list[FieldError] = []
    try:
        alt = _check_fields(alt_text, tag_list)
    except ValidationError as exc:
        errors.extend(exc.errors)
        alt = ""
    clean: CleanImage | None = None
    try:
        clean = clean_upload(data, max_bytes=max_bytes, max_pixels=max_pixels)
    except ImageRefused as exc:
        errors.append(FieldError("file", f"{len(data):,} bytes", exc.reason))
    if errors or clean is None:
        raise ValidationError(errors)
    small, small_type = thumbnail(clean.data)
    stem = f"u{user_id}/{uuid.uuid4().hex}"
    key, thumb_key = f"{stem}.{clean.extension}", f"{stem}.thumb.{'png' if small_type == 'image/png' else 'jpg'}"
    stored: list[str] = []
    try:
        storage.put(key, clean.data, clean.content_type)
        stored.append(key)
        storage.put(thumb_key, small, small_type)
        stored.append(thumb_key)
        item = MediaItem(user_id=user_id, storage_key=key, thumbnail_key=thumb_key, alt_text=alt,
                         tags=tag_list, generated=generated, content_type=clean.content_type,
                         width_px=clean.width, height_px=clean.height, size_bytes=clean.size_bytes,
                         frames=clean.frames)
        session.add(item)
        session.flush()
    except BaseException:
        for stored_key in stored:
            try:
                storage.delete(stored_key)
            except StorageError:
                logger.warning("could not remove %s after a failed upload", stored_key)
        raise
    return item


def owned_image(session: Session, user_id: int, media_id: int) -> MediaItem:
    """The image ``media_id`` if ``user_id`` owns it; NotFound otherwise (theirs or nobody's)."""
    item = session.scalar(select(MediaItem).where(MediaItem.id == media_id, MediaItem.user_id == user_id))
    if item is None:
        raise NotFound(f"no image {media_id} in this library")
    return item


def user_images(session: Session, user_id: int, *, limit: int = 200) -> Sequence[MediaItem]:
    """The user's images, newest first."""
    return session.scalars(select(MediaItem).where(MediaItem.user_id == user_id)
                           .order_by(MediaItem.created_at.desc(), MediaItem.id.desc()).limit(limit)).all()


def update_image(session: Session, user_id: int, media_id: int, *, alt_text: str,
                 tags: str | Iterable[str]) -> MediaItem:
    """Change an image's alt text and tags (its pixels never change: upload a new one)."""
    item = owned_image(session, user_id, media_id)
    tag_list = normalise_tags(tags)
    item.alt_text = _check_fields(alt_text, tag_list)
    item.tags = tag_list
    return item


def delete_image(session: Session, storage: MediaStorage, user_id: int, media_id: int) -> None:
    """Delete an image and its objects. Refused (:class:`ImageInUse`) while a post that has yet
    to go out carries it; finished posts keep their text and lose the reference."""
    item = owned_image(session, user_id, media_id)
    pending = session.scalars(select(Post.id).where(Post.media_id == item.id,
                                                     Post.status.in_(PENDING_STATUSES))).all()
    if pending:
        raise ImageInUse(f"the image is attached to {len(pending)} post(s) still to be published "
                         f"(post {', '.join(map(str, pending[:5]))}); remove it from them first")
    session.execute(update(Post).where(Post.media_id == item.id).values(media_id=None)
                    .execution_options(synchronize_session=False))
    keys = (item.storage_key, item.thumbnail_key)
    session.delete(item)
    session.flush()
    for key in keys:
        try:
            storage.delete(key)
        except StorageError:
            logger.warning("image %s deleted; its object %s could not be removed", media_id, key)


def attach_image(session: Session, post: Post, media_id: int | None) -> None:
    """Set (or with None remove) a post's image; the image must be the post's owner's.

    Only a post that has not been handed to a worker may change (scheduled or in review): a
    queued or publishing post's image may already be on the platform.
    """
    if post.status not in (PostStatus.SCHEDULED, PostStatus.NEEDS_REVIEW):
        raise ValidationError([FieldError("media_id", media_id,
                                          f"the post is {post.status}; only a scheduled post or one "
                                          "in review can change its image")])
    if media_id is not None:
        owned_image(session, post.user_id, media_id)
    post.media_id = media_id


def matching_images(session: Session, user_id: int, topic: str | None, *, limit: int = 5) -> list[MediaItem]:
    """The user's images whose tags occur in ``topic`` (most matching tags first, then newest)."""
    words = set(normalise_tags(topic or ""))
    if not words:
        return []
    candidates = user_images(session, user_id)
    scored = [(len(words & set(item.tags or [])), item) for item in candidates]
    return [item for score, item in sorted(scored, key=lambda pair: -pair[0]) if score > 0][:limit]


def choose_image(library: Sequence[tuple[int, Sequence[str]]], topic: str | None,
                 used: Mapping[int, int]) -> int | None:
    """The image for a post about ``topic``: among ``(id, tags)`` the one sharing most tags with
    the topic's words, the least ``used`` so far on ties (so a day's posts do not all carry the
    same picture); None when no tag matches. Pure: generation loads the library once per user."""
    words = set(normalise_tags(topic or ""))
    best: tuple[int, int, int] | None = None  # (-score, uses, position)
    chosen = None
    for position, (media_id, tags) in enumerate(library):
        score = len(words & set(tags))
        if score == 0:
            continue
        key = (-score, used.get(media_id, 0), position)
        if best is None or key < best:
            best, chosen = key, media_id
    return chosen
