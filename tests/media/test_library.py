"""A user's library: checked uploads with alt text, owner-scoped lookups, safe deletes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.errors import NotFound, ValidationError
from app.media.library import (
    ImageInUse,
    add_image,
    attach_image,
    delete_image,
    matching_images,
    owned_image,
    update_image,
)
from app.media.storage import LocalStorage
from app.models import MediaItem, Post, PostStatus
from tests.factories import add_post, make_user
from tests.media.images import GPS_IFD, exif_of, image_bytes
from tests.media.s3 import moto_s3, s3_storage


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "media", "https://cdn.example.test")


@pytest.fixture
def users(sessions, vault):
    return (make_user(sessions, vault, "ada@example.com", settings={}),
            make_user(sessions, vault, "bob@example.com", settings={}))


def _objects(storage):
    return sorted(p.name for p in storage.root.rglob("*") if p.is_file())


def test_an_upload_is_stored_cleaned_with_a_thumbnail(sessions, storage, users):
    ada, _ = users
    with sessions.begin() as session:
        item = add_image(session, storage, ada, image_bytes("JPEG", (640, 480), gps=True),
                         alt_text="  A red  bicycle against a wall ", tags="Cycling, #city  cycling")
        item_id, key, thumb = item.id, item.storage_key, item.thumbnail_key
    with sessions() as session:
        item = session.get(MediaItem, item_id)
        assert item.alt_text == "A red bicycle against a wall"
        assert item.tags == ["cycling", "city"]
        assert (item.content_type, item.width_px, item.height_px) == ("image/jpeg", 640, 480)
        assert not item.generated and key.startswith(f"u{ada}/") and key.endswith(".jpg")
    assert not exif_of(storage.get(key)).get_ifd(GPS_IFD)
    assert len(storage.get(thumb)) < len(storage.get(key))
    assert storage.public_url(key) == f"https://cdn.example.test/{key}"


@pytest.mark.parametrize(("data", "alt", "field", "reason"), [
    (b"MZ\x90\x00 an executable named cat.png", "a cat", "file", "not a JPEG, PNG, WebP or GIF"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "a logo", "file", "SVG"),
    (image_bytes("PNG", (8, 8)), "   ", "alt_text", "required"),
])
def test_bad_input_gets_a_clear_error_and_stores_nothing(sessions, storage, users, data, alt, field, reason):
    ada, _ = users
    with pytest.raises(ValidationError) as refused, sessions.begin() as session:
        add_image(session, storage, ada, data, alt_text=alt)
    assert [e.field for e in refused.value.errors] == [field]
    assert reason in str(refused.value)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(MediaItem)) == 0
    assert _objects(storage) == []


def test_an_image_over_the_limits_stores_nothing(sessions, storage, users):
    ada, _ = users
    with pytest.raises(ValidationError, match="pixels"), sessions.begin() as session:
        add_image(session, storage, ada, image_bytes("PNG", (300, 300)), alt_text="big", max_pixels=50_000)
    assert _objects(storage) == []


def test_a_failed_row_removes_the_objects_already_stored(sessions, storage, users):
    with pytest.raises(Exception), sessions.begin() as session:  # noqa: B017 - the FK refuses it
        add_image(session, storage, 9999, image_bytes(), alt_text="nobody's")
    assert _objects(storage) == []


def test_another_users_image_is_not_found_like_a_missing_one(sessions, storage, users):
    ada, bob = users
    with sessions.begin() as session:
        item_id = add_image(session, storage, ada, image_bytes(), alt_text="mine").id
    with sessions() as session:
        assert owned_image(session, ada, item_id).id == item_id
        for user, media_id in ((bob, item_id), (ada, item_id + 100)):
            with pytest.raises(NotFound):
                owned_image(session, user, media_id)
        with pytest.raises(NotFound):
            update_image(session, bob, item_id, alt_text="stolen", tags="")
    with pytest.raises(NotFound), sessions.begin() as session:
        delete_image(session, storage, bob, item_id)
    assert len(_objects(storage)) == 2


def test_a_post_takes_only_its_owners_image(sessions, storage, users, now):
    ada, bob = users
    with sessions.begin() as session:
        bobs = add_image(session, storage, bob, image_bytes(), alt_text="bob's").id
        adas = add_image(session, storage, ada, image_bytes(), alt_text="ada's").id
    post_id = add_post(sessions, ada, now)
    with sessions.begin() as session:
        post = session.get(Post, post_id)
        with pytest.raises(NotFound):
            attach_image(session, post, bobs)
        attach_image(session, post, adas)
    with sessions() as session:
        assert session.get(Post, post_id).media_id == adas


def test_a_queued_posts_image_cannot_change(sessions, storage, users, now):
    ada, _ = users
    with sessions.begin() as session:
        image = add_image(session, storage, ada, image_bytes(), alt_text="x").id
    post_id = add_post(sessions, ada, now, status=PostStatus.QUEUED)
    with pytest.raises(ValidationError, match="only a scheduled post or one in review"), sessions.begin() as session:
        attach_image(session, session.get(Post, post_id), image)


def test_an_image_waiting_to_be_published_cannot_be_deleted_a_published_ones_can(sessions, storage, users, now):
    ada, _ = users
    with sessions.begin() as session:
        image = add_image(session, storage, ada, image_bytes(), alt_text="x").id
    waiting = add_post(sessions, ada, now + timedelta(hours=1), media_id=image)
    done = add_post(sessions, ada, now - timedelta(days=1), status=PostStatus.PUBLISHED, media_id=image,
                    text="Older post")
    with pytest.raises(ImageInUse, match=f"post {waiting}"), sessions.begin() as session:
        delete_image(session, storage, ada, image)
    with sessions.begin() as session:
        session.get(Post, waiting).media_id = None
    with sessions.begin() as session:
        delete_image(session, storage, ada, image)
    with sessions() as session:
        assert session.get(Post, done).media_id is None and session.get(MediaItem, image) is None
    assert _objects(storage) == []


def test_images_match_a_topic_by_their_tags(sessions, storage, users):
    ada, bob = users
    with sessions.begin() as session:
        bike = add_image(session, storage, ada, image_bytes(), alt_text="bike", tags="cycling city").id
        code = add_image(session, storage, ada, image_bytes(), alt_text="code", tags="python").id
        add_image(session, storage, bob, image_bytes(), alt_text="bob's", tags="python")
    with sessions() as session:
        assert {i.id for i in matching_images(session, ada, "Python tips for city planners")} == {code, bike}
        assert [i.id for i in matching_images(session, ada, "City cycling with Python")] == [bike, code]
        assert [i.id for i in matching_images(session, ada, "Python packaging")] == [code]
        assert matching_images(session, ada, "gardening") == []


def test_the_library_works_on_s3(sessions, users):
    ada, _ = users
    with moto_s3() as endpoint:
        storage = s3_storage(endpoint, bucket="library")
        with sessions.begin() as session:
            item = add_image(session, storage, ada, image_bytes("WEBP"), alt_text="on s3")
            key = item.storage_key
        assert storage.get(key)[:4] == b"RIFF"
        with sessions.begin() as session:
            delete_image(session, storage, ada, item.id)
        assert storage.client.list_objects_v2(Bucket="library").get("KeyCount") == 0
