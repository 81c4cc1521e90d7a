"""Where image bytes live: an S3-compatible bucket behind a CDN, or a local directory.

Pages, emails and the demo show an image by its public URL, ``MEDIA_PUBLIC_BASE_URL`` + its
key: a CDN (or the bucket's public website) in front of the storage. Never a presigned link:
those expire, and a weekly report or a cached page would then show broken images.

Keys are never reused (a new upload gets a new random key), so every object is served with a
year-long immutable ``Cache-Control``: the CDN never needs purging, and deleting an image is
deleting its object (the CDN's copy ages out).

The S3 client is built once per storage and kept (boto3 clients are thread-safe and hold a
connection pool); credentials come from the usual AWS variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``...), read by boto3 itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from app.config import Settings
from app.media.images import MediaError

__all__ = ["CACHE_CONTROL", "LocalStorage", "MediaStorage", "S3Storage", "StorageError",
           "storage_from_settings"]

#: Objects are immutable under their key (a new upload, a new key): cache them for a year.
CACHE_CONTROL = "public, max-age=31536000, immutable"


class StorageError(MediaError):
    """The object storage failed or does not hold the object asked for."""


class MediaStorage(Protocol):
    """Bytes by key, and the public URL each key is served at."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        ...

    def get(self, key: str) -> bytes:
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a key that does not exist is not an error."""
        ...

    def public_url(self, key: str) -> str:
        ...


def _join(base_url: str, key: str) -> str:
    return f"{base_url.rstrip('/')}/{key}"


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise StorageError(f"invalid media key {key!r}")
    return key


class LocalStorage:
    """A directory on disk: the embedded setup and the demo. Served under ``public_base_url``
    (the portal serves ``/media/<key>`` from it when no CDN is configured)."""

    def __init__(self, root: str | os.PathLike[str], public_base_url: str) -> None:
        self.root = Path(root)
        self.public_base_url = public_base_url

    def path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".part")
        temporary.write_bytes(data)
        temporary.replace(path)  # readers never see half a file

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"no media object {key!r} in {self.root}") from None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def public_url(self, key: str) -> str:
        return _join(self.public_base_url, _check_key(key))


class S3Storage:
    """An S3-compatible bucket (AWS S3, MinIO, R2...) through a kept boto3 client."""

    def __init__(self, client: Any, bucket: str, public_base_url: str) -> None:
        self.client = client
        self.bucket = bucket
        self.public_base_url = public_base_url

    @classmethod
    def connect(cls, bucket: str, public_base_url: str, *, endpoint_url: str | None = None) -> S3Storage:
        import boto3  # imported here: processes without S3 configured never load it
        from botocore.config import Config

        client = boto3.client("s3", endpoint_url=endpoint_url,
                              config=Config(retries={"max_attempts": 3, "mode": "standard"}))
        return cls(client, bucket, public_base_url)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=_check_key(key), Body=data,
                                   ContentType=content_type, CacheControl=CACHE_CONTROL)
        except Exception as exc:  # noqa: BLE001 - botocore's errors, under our root
            raise StorageError(f"storing {key!r} in bucket {self.bucket!r} failed: {exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=_check_key(key))
            return bytes(response["Body"].read())
        except Exception as exc:  # noqa: BLE001
            raise StorageError(f"reading {key!r} from bucket {self.bucket!r} failed: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=_check_key(key))
        except Exception as exc:  # noqa: BLE001
            raise StorageError(f"deleting {key!r} from bucket {self.bucket!r} failed: {exc}") from exc

    def public_url(self, key: str) -> str:
        return _join(self.public_base_url, _check_key(key))


def storage_from_settings(settings: Settings) -> MediaStorage:
    """S3 when ``MEDIA_BUCKET`` is set, else the local directory ``MEDIA_DIR``."""
    if settings.media_bucket:
        assert settings.media_public_base_url  # Settings._check requires it with a bucket
        return S3Storage.connect(settings.media_bucket, settings.media_public_base_url,
                                 endpoint_url=settings.media_s3_endpoint_url)
    return LocalStorage(settings.media_dir, settings.media_public_base_url or "/media")
