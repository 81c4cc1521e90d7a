"""Media storage: S3 through boto3 against a local S3 server, and the local directory."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.errors import ConfigError
from app.media.storage import (
    CACHE_CONTROL,
    LocalStorage,
    S3Storage,
    StorageError,
    storage_from_settings,
)
from tests.media.s3 import FAKE_CREDENTIALS, moto_s3, s3_storage


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_s3() as endpoint:
        yield endpoint


def test_s3_stores_reads_and_deletes_with_a_public_immutable_url(s3_endpoint):
    storage = s3_storage(s3_endpoint, bucket="roundtrip")
    storage.put("u1/abc.png", b"png-bytes", "image/png")
    assert storage.get("u1/abc.png") == b"png-bytes"
    head = storage.client.head_object(Bucket="roundtrip", Key="u1/abc.png")
    assert head["ContentType"] == "image/png" and head["CacheControl"] == CACHE_CONTROL
    url = storage.public_url("u1/abc.png")
    assert url == "https://cdn.example.test/u1/abc.png"
    assert "Signature" not in url and "Expires" not in url  # never a signed, expiring link
    storage.delete("u1/abc.png")
    with pytest.raises(StorageError, match="u1/abc.png"):
        storage.get("u1/abc.png")


def test_s3_failures_are_the_projects_errors(s3_endpoint):
    storage = s3_storage(s3_endpoint, bucket="exists")
    missing = S3Storage(storage.client, "no-such-bucket", "https://cdn.example.test")
    with pytest.raises(StorageError, match="no-such-bucket"):
        missing.put("u1/x.png", b"x", "image/png")


def test_the_s3_storage_is_built_from_the_environment(s3_endpoint, monkeypatch):
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name.upper() if name != "region_name" else "AWS_DEFAULT_REGION", value)
    s3_storage(s3_endpoint, bucket="from-env")
    settings = Settings(media_bucket="from-env", media_s3_endpoint_url=s3_endpoint,
                        media_public_base_url="https://cdn.example.test/media")
    storage = storage_from_settings(settings)
    assert isinstance(storage, S3Storage)
    storage.put("u2/k.jpg", b"jpeg", "image/jpeg")
    assert storage.get("u2/k.jpg") == b"jpeg"
    assert storage.public_url("u2/k.jpg") == "https://cdn.example.test/media/u2/k.jpg"


def test_a_bucket_without_a_public_base_url_is_a_configuration_error():
    with pytest.raises(ConfigError, match="MEDIA_PUBLIC_BASE_URL"):
        Settings.from_env({"MEDIA_BUCKET": "media"})


def test_without_a_bucket_images_go_to_the_local_directory(tmp_path):
    storage = storage_from_settings(Settings(media_dir=str(tmp_path)))
    assert isinstance(storage, LocalStorage)
    storage.put("u1/a.gif", b"gif", "image/gif")
    assert (tmp_path / "u1" / "a.gif").read_bytes() == b"gif"
    assert storage.public_url("u1/a.gif") == "/media/u1/a.gif"
    storage.delete("u1/a.gif")
    storage.delete("u1/a.gif")  # twice: not an error


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "u1//x", "u1/./x", ""])
def test_keys_cannot_escape_the_storage(tmp_path, key):
    with pytest.raises(StorageError, match="invalid media key"):
        LocalStorage(tmp_path, "/media").put(key, b"x", "image/png")
