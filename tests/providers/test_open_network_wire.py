"""The Bluesky and Mastodon fakes answer in the recorded shapes (tests/fixtures/wire), so the
clients are tested against what the lexicons and docs.joinmastodon.org say, not what we guessed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from app.providers.base import PostRef
from app.providers.bluesky import record_key
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.mastodon import FakeMastodon
from tests.wire import load


def missing_keys(recorded: Any, actual: Any, path: str = "") -> list[str]:
    """Keys of the recorded body (recursively, first list item as the example) absent from ours."""
    if isinstance(recorded, dict):
        if not isinstance(actual, dict):
            return [path or "."]
        return [m for key, value in recorded.items()
                for m in ([f"{path}.{key}"] if key not in actual else missing_keys(value, actual[key], f"{path}.{key}"))]
    if isinstance(recorded, list) and recorded and isinstance(actual, list) and actual:
        return missing_keys(recorded[0], actual[0], f"{path}[0]")
    return []


def check(name: str, response: httpx.Response) -> None:
    recorded = load(name)
    assert response.status_code == recorded["status"], response.text
    assert missing_keys(recorded["body"], response.json()) == []
    if isinstance(recorded["body"], dict) and "error" in recorded["body"] and "message" in recorded["body"]:
        assert response.json()["error"] == recorded["body"]["error"]


def test_the_fake_pds_answers_in_the_lexicons_shapes():
    with FakeBluesky() as fake:
        xrpc = f"{fake.base_url}/xrpc"
        check("bluesky/createSession_401_bad_password",
              httpx.post(f"{xrpc}/com.atproto.server.createSession", json={"identifier": "alice.test", "password": "x"}))
        session = httpx.post(f"{xrpc}/com.atproto.server.createSession",
                             json={"identifier": "alice.test", "password": "app-pass-1111"})
        check("bluesky/createSession_200", session)
        auth = {"Authorization": f"Bearer {session.json()['accessJwt']}"}
        did = session.json()["did"]
        rkey = record_key(PostRef(1, datetime.now(UTC)))
        body = {"repo": did, "collection": "app.bsky.feed.post", "rkey": rkey,
                "record": {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2026-12-07T04:00:00.000Z"}}
        check("bluesky/createRecord_200", httpx.post(f"{xrpc}/com.atproto.repo.createRecord", json=body, headers=auth))
        check("bluesky/createRecord_500_duplicate_rkey",
              httpx.post(f"{xrpc}/com.atproto.repo.createRecord", json=body, headers=auth))
        check("bluesky/getRecord_400_not_found", httpx.get(f"{xrpc}/com.atproto.repo.getRecord", params={
            "repo": did, "collection": "app.bsky.feed.post", "rkey": "3lcxyzabcde22"}))
        fake.revoke_app_password("alice.test")
        check("bluesky/refreshSession_400_revoked", httpx.post(
            f"{xrpc}/com.atproto.server.refreshSession",
            headers={"Authorization": f"Bearer {session.json()['refreshJwt']}"}))


def test_the_fake_instance_answers_in_the_documented_shapes():
    with FakeMastodon() as fake:
        app = httpx.post(f"{fake.base_url}/api/v1/apps", data={
            "client_name": "Content Autopilot", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
            "scopes": "read:statuses write:statuses profile"})
        check("mastodon/apps_200", app)
        check("mastodon/instance_v2_200", httpx.get(f"{fake.base_url}/api/v2/instance"))
        auth = {"Authorization": f"Bearer {fake.access_token}"}
        status = httpx.post(f"{fake.base_url}/api/v1/statuses", data={"status": "Hallo Welt", "language": "de"},
                            headers={**auth, "Idempotency-Key": "k1"})
        check("mastodon/statuses_200", status)
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(status.headers)
        check("mastodon/statuses_422_validation", httpx.post(f"{fake.base_url}/api/v1/statuses",
                                                             data={"status": " "}, headers=auth))
        check("mastodon/oauth_token_400_invalid_grant", httpx.post(f"{fake.base_url}/oauth/token", data={
            "grant_type": "authorization_code", "code": "never-issued", "client_id": app.json()["client_id"],
            "client_secret": app.json()["client_secret"], "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"}))
