"""A local S3 for the tests: moto's server mode on a loopback port, reached by the real boto3
client over a real socket (as MinIO or S3 would be), never patched in-process."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from moto.server import ThreadedMotoServer

from app.media.storage import S3Storage

#: What the fake S3 calls its credentials (moto accepts any).
FAKE_CREDENTIALS = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret",
                    "region_name": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_s3() -> Iterator[str]:
    """A running moto server; yields its endpoint URL."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_storage(endpoint_url: str, bucket: str = "media", public_base_url: str = "https://cdn.example.test") -> S3Storage:
    """An S3Storage on a fresh bucket of the server at ``endpoint_url``."""
    client = boto3.client("s3", endpoint_url=endpoint_url, **FAKE_CREDENTIALS)
    client.create_bucket(Bucket=bucket)
    return S3Storage(client, bucket, public_base_url)
