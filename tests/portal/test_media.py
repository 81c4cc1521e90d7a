"""The portal's image library: upload with alt text, refusals that store nothing, thumbnails,
delete, and a post's image added, changed and removed in review."""

from __future__ import annotations

import io
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.clock import utcnow
from app.models import MediaItem, Post, PostStatus, ReviewReason
from tests.media.images import GPS_IFD, exif_of, image_bytes
from tests.portal.conftest import TestUser, csrf_token, portal_db, signed_in


def _upload(client: FlaskClient, data: bytes, *, name: str = "photo.jpg", alt: str = "A red bicycle",
            tags: str = "cycling") -> object:
    return client.post("/media/", data={"csrf_token": csrf_token(client, "/media/"), "alt_text": alt, "tags": tags,
                                        "file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def _images(app: Flask) -> list[MediaItem]:
    with portal_db(app) as session:
        rows = list(session.scalars(select(MediaItem).order_by(MediaItem.id)))
        session.expunge_all()
        return rows


def _objects(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "media").rglob("*") if p.is_file())


def test_an_upload_with_alt_text_is_listed_with_its_thumbnail(user_client, portal_app, user, tmp_path):
    response = _upload(user_client, image_bytes("JPEG", (800, 600), gps=True))
    assert response.status_code == 302
    (item,) = _images(portal_app)
    assert (item.user_id, item.alt_text, item.tags) == (user.id, "A red bicycle", ["cycling"])
    page = user_client.get("/media/").get_data(as_text=True)
    thumb_url = f"/media/file/{item.thumbnail_key}"
    assert thumb_url in page and 'alt="A red bicycle"' in page
    thumb = user_client.get(thumb_url)
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    original = user_client.get(f"/media/file/{item.storage_key}")
    assert not exif_of(original.data).get_ifd(GPS_IFD)  # the stored file has no position


def test_refused_uploads_say_why_and_store_nothing(user_client, portal_app, tmp_path):
    cases = [
        (b"#!/bin/sh\necho not an image", "photo.png", "A photo", "not a JPEG, PNG, WebP or GIF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "logo.svg", "Logo", "SVG"),
        (image_bytes(), "ok.png", "   ", "required"),
    ]
    for data, name, alt, reason in cases:
        response = _upload(user_client, data, name=name, alt=alt)
        assert response.status_code == 400 and reason in response.get_data(as_text=True), name
    assert _images(portal_app) == [] and _objects(tmp_path) == []


def test_another_users_image_file_is_not_served(user_client, portal_app, make_user):
    bob = make_user("bob@example.com")
    bob_client = signed_in(portal_app.test_client(), portal_app, bob)
    _upload(bob_client, image_bytes())
    (item,) = _images(portal_app)
    assert user_client.get(f"/media/file/{item.storage_key}").status_code == 404
    assert bob_client.get(f"/media/file/{item.storage_key}").status_code == 200


def test_delete_removes_the_row_and_the_files(user_client, portal_app, tmp_path):
    _upload(user_client, image_bytes())
    (item,) = _images(portal_app)
    token = csrf_token(user_client, "/media/")
    assert user_client.post(f"/media/{item.id}/delete", data={"csrf_token": token}).status_code == 302
    assert _images(portal_app) == [] and _objects(tmp_path) == []


def _review_post(app: Flask, user: TestUser) -> int:
    with portal_db(app) as session:
        post = Post(user_id=user.id, platform="twitter", text="Cycling to work", status=PostStatus.NEEDS_REVIEW,
                    review_reason=ReviewReason.APPROVAL, scheduled_at=utcnow() + timedelta(days=1))
        session.add(post)
        session.flush()
        return post.id


def test_a_post_in_review_gets_changes_and_loses_its_image(user_client, portal_app, user, make_user):
    _upload(user_client, image_bytes(color="red"), alt="Red")
    _upload(user_client, image_bytes(color="blue"), alt="Blue")
    red, blue = (i.id for i in _images(portal_app))
    post_id = _review_post(portal_app, user)
    url = f"/posts/{post_id}"

    def choose(media_id: object) -> int:
        token = csrf_token(user_client, url)
        return user_client.post(f"{url}/image", data={"csrf_token": token, "media_id": media_id}).status_code

    def current() -> int | None:
        with portal_db(portal_app) as session:
            return session.get(Post, post_id).media_id

    assert choose(red) == 302 and current() == red
    assert 'alt="Red"' in user_client.get(url).get_data(as_text=True)
    assert choose(blue) == 302 and current() == blue
    assert choose("") == 302 and current() is None
    bob = make_user("bob@example.com")
    bob_client = signed_in(portal_app.test_client(), portal_app, bob)
    _upload(bob_client, image_bytes(), alt="Bob's")
    bobs = _images(portal_app)[-1].id
    assert choose(bobs) == 404 and current() is None
    with portal_db(portal_app) as session:
        assert session.scalar(select(func.count()).select_from(MediaItem)) == 3


def test_an_image_on_a_waiting_post_cannot_be_deleted(user_client, portal_app, user):
    _upload(user_client, image_bytes())
    (item,) = _images(portal_app)
    post_id = _review_post(portal_app, user)
    token = csrf_token(user_client, f"/posts/{post_id}")
    user_client.post(f"/posts/{post_id}/image", data={"csrf_token": token, "media_id": item.id})
    response = user_client.post(f"/media/{item.id}/delete", data={"csrf_token": csrf_token(user_client, "/media/")})
    assert response.status_code == 409 and "remove it from them first" in response.get_data(as_text=True)
    assert len(_images(portal_app)) == 1


def test_a_generated_image_is_labelled_in_the_library_and_on_the_post(user_client, portal_app, user):
    _upload(user_client, image_bytes(color="red"), alt="Red")
    _upload(user_client, image_bytes(color="blue"), alt="A lighthouse of circuit boards")
    red, drawn = (i.id for i in _images(portal_app))
    with portal_db(portal_app) as session:
        session.get(MediaItem, drawn).generated = True  # as generation stores an image model's
    post_id = _review_post(portal_app, user)
    with portal_db(portal_app) as session:
        session.get(Post, post_id).media_id = drawn
    library = user_client.get("/media/").get_data(as_text=True)
    card = library[library.index(f'id="image-{drawn}"'):]
    assert "generated" in card[:card.index("</li>")]
    red_card = library[library.index(f'id="image-{red}"'):]
    assert "generated" not in red_card[:red_card.index("</li>")]
    page = user_client.get(f"/posts/{post_id}").get_data(as_text=True)
    assert "A lighthouse of circuit boards · generated" in page
    assert "A lighthouse of circuit boards (generated)</option>" in page and "Red</option>" in page
