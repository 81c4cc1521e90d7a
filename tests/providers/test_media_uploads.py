"""Each platform's documented image upload, by the real clients against the local fakes.

X: the v2 media upload (initialize, append, finalize, STATUS while processing, alt text), then
``media.media_ids`` on the create. LinkedIn: the Images API (initializeUpload, PUT the bytes,
wait for AVAILABLE), then the image URN in ``content.media``. Sources beside the fakes'
constants (tests/fakes/x.py, tests/fakes/linkedin.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.providers.base import MediaFile, UploadedMedia
from app.providers.errors import PermanentError
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.x import FakeX
from tests.media.images import image_bytes
from tests.providers import test_linkedin, test_x


def _file(data: bytes, content_type: str = "image/png", alt: str = "A teal square", **kw: object) -> MediaFile:
    return MediaFile(data, content_type, alt, 64, 48, **kw)  # type: ignore[arg-type]


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    with FakeX() as server:
        yield server


@pytest.fixture
def fake_li() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn() as server:
        yield server


def test_x_uploads_in_the_documented_order_and_the_tweet_carries_the_media(fake_x):
    sleeps: list[float] = []
    fake_x.media_processing_polls = 2
    with test_x.make_client(fake_x.base_url, sleep=sleeps.append) as client:
        account = test_x.account_for(fake_x)
        uploaded = client.upload_media(account, _file(image_bytes("PNG")))
        result = client.publish(account, "Now with a picture", media=[uploaded])
    calls = [(r.method, r.path) for r in fake_x.requests]
    media_id = uploaded.media_id
    assert calls == [
        ("POST", "/2/media/upload/initialize"), ("POST", f"/2/media/upload/{media_id}/append"),
        ("POST", f"/2/media/upload/{media_id}/finalize"), ("GET", "/2/media/upload"),
        ("GET", "/2/media/upload"), ("POST", "/2/media/metadata"), ("POST", "/2/tweets")]
    assert sleeps == [1.0, 1.0]  # as long as X's check_after_secs asked
    tweet = next(p for p in fake_x.posts if p.id == result.external_id)
    assert tweet.media_ids == [media_id]
    assert fake_x.media_of(tweet)[0].alt_text == "A teal square"
    assert fake_x.media_of(tweet)[0].data == image_bytes("PNG")
    assert uploaded.expires_at is not None


def test_x_takes_a_large_image_in_several_segments(fake_x, monkeypatch):
    monkeypatch.setattr("app.providers.x.DEFAULT_MEDIA_SEGMENT_BYTES", 1000)
    data = image_bytes("PNG", (300, 300), color="red") + b""
    with test_x.make_client(fake_x.base_url) as client:
        uploaded = client.upload_media(test_x.account_for(fake_x), _file(data))
    appends = fake_x.requests_to(f"/2/media/upload/{uploaded.media_id}/append")
    assert len(appends) == -(-len(data) // 1000) >= 1
    assert fake_x.media[uploaded.media_id].data == data


def test_x_refuses_a_tweet_naming_media_it_never_finished(fake_x):
    with test_x.make_client(fake_x.base_url) as client:
        account = test_x.account_for(fake_x)
        unknown = UploadedMedia("1880028106020515999", "alt")
        with pytest.raises(PermanentError, match="media IDs are invalid"):
            client.publish(account, "Ghost picture", media=[unknown])
    assert fake_x.posts == []


def test_x_refuses_an_image_over_its_size_limit_before_any_byte_is_sent(fake_x):
    with test_x.make_client(fake_x.base_url) as client, pytest.raises(PermanentError, match="exceeds"):
        client.upload_media(test_x.account_for(fake_x), _file(b"\x89PNG\r\n\x1a\n" + b"0" * (5 * 1024 * 1024)))
    assert fake_x.requests_to("/2/media/upload/", "POST")[0].path == "/2/media/upload/initialize"
    assert len(fake_x.requests) == 1


def test_linkedin_uploads_through_the_images_api_and_posts_the_urn(fake_li):
    fake_li.image_processing_polls = 1
    sleeps: list[float] = []
    with test_linkedin.make_client(fake_li.base_url, sleep=sleeps.append) as client:
        account = test_linkedin.account_for(fake_li)
        uploaded = client.upload_media(account, _file(image_bytes("JPEG"), "image/jpeg", "A bridge"))
        result = client.publish(account, "Bridges and APIs", media=[uploaded])
    assert uploaded.media_id.startswith("urn:li:image:") and uploaded.expires_at is None
    calls = [(r.method, r.path.split("/")[1] + "/" + r.path.split("/")[2]) for r in fake_li.requests]
    assert calls[:2] == [("POST", "rest/images"), ("PUT", f"dms-uploads/{fake_li.images[uploaded.media_id].upload_token}")]
    assert calls[-1] == ("POST", "rest/posts") and sleeps
    post = next(p for p in fake_li.posts if p.urn == result.external_id)
    assert post.content == {"media": {"id": uploaded.media_id, "altText": "A bridge"}}


def test_linkedin_refuses_a_post_naming_an_image_whose_bytes_never_came(fake_li):
    with test_linkedin.make_client(fake_li.base_url) as client:
        account = test_linkedin.account_for(fake_li)
        with pytest.raises(PermanentError, match="unknown image"):
            client.publish(account, "No bytes", media=[UploadedMedia("urn:li:image:nothing", "alt")])
    assert fake_li.posts == []


def test_linkedin_reports_an_image_it_could_not_process(fake_li):
    with test_linkedin.make_client(fake_li.base_url) as client, \
            pytest.raises(PermanentError, match="could not process"):
        client.upload_media(test_linkedin.account_for(fake_li), _file(image_bytes("WEBP"), "image/webp"))


# -- Bluesky: com.atproto.repo.uploadBlob, then app.bsky.embed.images ----------------------------


def test_bluesky_uploads_a_blob_and_embeds_it_with_alt_text_and_aspect_ratio():
    from tests.fakes.bluesky import FakeBluesky
    from tests.providers import test_bluesky

    with FakeBluesky() as fake, test_bluesky.BlueskyPublisher(fake.base_url) as client:
        creds = test_bluesky.connect(client, fake)
        uploaded = client.upload_media(creds, _file(image_bytes("PNG"), alt="A teal square"))
        client.publish(creds, "With a picture", test_bluesky.ref(), media=[uploaded])
        (post,) = fake.posts()
    (image,) = post.value["embed"]["images"]
    assert post.value["embed"]["$type"] == "app.bsky.embed.images"
    assert image["alt"] == "A teal square" and image["aspectRatio"] == {"width": 64, "height": 48}
    assert fake.blobs[image["image"]["ref"]["$link"]][1] == image_bytes("PNG")
    assert uploaded.expires_at is not None  # an unreferenced blob is dropped: reuse is bounded


def test_bluesky_refuses_an_embed_naming_a_blob_never_uploaded():
    import json

    from tests.fakes.bluesky import FakeBluesky
    from tests.providers import test_bluesky

    with FakeBluesky() as fake, test_bluesky.BlueskyPublisher(fake.base_url) as client:
        creds = test_bluesky.connect(client, fake)
        ghost = {"blob": {"$type": "blob", "ref": {"$link": "bafkreinothing"}, "mimeType": "image/png", "size": 3},
                 "aspectRatio": {"width": 1, "height": 1}}
        with pytest.raises(PermanentError, match="not found"):
            client.publish(creds, "Ghost", test_bluesky.ref(), media=[UploadedMedia(json.dumps(ghost), "alt")])
        assert fake.posts() == []


# -- Mastodon: POST /api/v2/media (202: poll), then media_ids[] ----------------------------------


def test_mastodon_uploads_polls_while_processing_and_attaches_the_media():
    from tests.fakes.mastodon import FakeMastodon
    from tests.providers import test_mastodon

    sleeps: list[float] = []
    with FakeMastodon() as fake, test_mastodon.MastodonPublisher(sleep=sleeps.append) as client:
        fake.media_processing_polls = 2
        creds = test_mastodon.creds_for(fake)
        uploaded = client.upload_media(creds, _file(image_bytes("JPEG"), "image/jpeg", "A bridge at dusk"))
        client.publish(creds, "Bridges", test_mastodon.ref(), media=[uploaded])
    assert [r.path for r in fake.requests] == [
        "/api/v2/media", f"/api/v1/media/{uploaded.media_id}", f"/api/v1/media/{uploaded.media_id}",
        f"/api/v1/media/{uploaded.media_id}", "/api/v2/instance", "/api/v1/statuses"]
    assert len(sleeps) == 3
    (status,) = fake.statuses
    assert status.media_ids == [uploaded.media_id]
    assert fake.media[uploaded.media_id].description == "A bridge at dusk"


def test_mastodon_refuses_an_attachment_still_processing_or_already_used():
    from app.providers.errors import PermanentError as Refused
    from tests.fakes.mastodon import FakeMastodon
    from tests.providers import test_mastodon

    with FakeMastodon() as fake, test_mastodon.MastodonPublisher(sleep=lambda s: None) as client:
        creds = test_mastodon.creds_for(fake)
        uploaded = client.upload_media(creds, _file(image_bytes("PNG")))
        client.publish(creds, "First", test_mastodon.ref(1), media=[uploaded])
        with pytest.raises(Refused, match="already attached"):
            client.publish(creds, "Second", test_mastodon.ref(2), media=[uploaded])
    assert len(fake.statuses) == 1
