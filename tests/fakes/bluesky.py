"""A local fake of a Bluesky PDS on a real socket: sessions, records, post views, handles.

Built from the lexicons (bluesky-social/atproto ``lexicons/``: com.atproto.server.createSession
and refreshSession, com.atproto.repo.createRecord and getRecord, app.bsky.feed.post and getPosts,
app.bsky.richtext.facet, com.atproto.identity.resolveHandle) and the reference PDS's behaviour;
the recorded shapes and their sources are in ``tests/fixtures/wire/bluesky/``. It enforces what
the PDS does and a little more where leniency would hide a bug:

* a record key already in the repository is refused (the reference PDS's repository tree
  throws "There is already a value at key", answered 500), so a repeated create never makes a
  second post;
* a record key must be a TID (the post lexicon's ``"key": "tid"``);
* a text over 300 graphemes (or 3,000 bytes) is refused (``maxGraphemes``/``maxLength``);
* a facet whose byte range does not cover what it claims (a link's URL, ``#`` and its tag, an
  ``@`` mention), splits a character or runs past the text is refused: the PDS would store it,
  and every app would underline the wrong text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import regex

from tests.fakes.platform import FakePlatform, Recorded, Response, json_response

TID_RE = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
POST = "app.bsky.feed.post"
#: Seconds an access JWT lives on the fake (the reference PDS: 2 hours).
ACCESS_SECONDS = 7200


def _error(status: int, name: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"error": name, "message": message}, headers)


def _jwt(subject: str, scope: str, serial: int, lifetime_seconds: int) -> str:
    """A JWT-shaped token (unsigned: the fake only compares it) with ``exp`` and ``sub``."""
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    claims = {"scope": scope, "sub": subject, "iat": int(time.time()), "exp": int(time.time()) + lifetime_seconds,
              "jti": f"{scope}-{serial}"}
    return f"{part({'typ': 'at+jwt', 'alg': 'HS256'})}.{part(claims)}.c2lnbmF0dXJl"


@dataclass
class Record:
    uri: str
    cid: str
    value: dict[str, Any]
    indexed_at: datetime
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Account:
    did: str
    handle: str
    app_password: str
    records: dict[str, Record] = field(default_factory=dict)


#: The images embed and its per-image limit (bluesky-social/atproto lexicons,
#: app/bsky/embed/images.json: ``"maxLength": 4`` images, ``accept: ["image/*"]``,
#: ``"maxSize": 1000000``; com/atproto/repo/uploadBlob.json: the body is the blob).
IMAGES = "app.bsky.embed.images"
IMAGE_MAX_BYTES = 1_000_000


class FakeBluesky(FakePlatform):
    """One PDS holding any number of accounts; sessions per account."""

    def __init__(self, *, create_latency: float = 0.0) -> None:
        super().__init__()
        self.create_latency = create_latency
        self.accounts: dict[str, Account] = {}
        self._access: dict[str, str] = {}  # token -> did
        self._refresh: dict[str, str] = {}
        #: Sessions ended by deleteSession (a disconnect).
        self.deleted_sessions = 0
        self._serial = 0
        #: Uploaded blobs by CID: (owner DID, bytes, mime type).
        self.blobs: dict[str, tuple[str, bytes, str]] = {}
        self.add_account("alice.test", "app-pass-1111")

    def __enter__(self) -> FakeBluesky:
        super().__enter__()
        return self

    # -- state ----------------------------------------------------------------------------

    def add_account(self, handle: str, app_password: str) -> Account:
        with self._lock:
            did = f"did:plc:fake{len(self.accounts) + 1:04d}{handle.split('.')[0][:8]}"
            account = Account(did, handle, app_password)
            self.accounts[did] = account
            return account

    @property
    def account(self) -> Account:
        """The first account (``alice.test``)."""
        return next(iter(self.accounts.values()))

    def by_handle(self, handle: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.handle == handle.lower()), None)

    def posts(self, did: str | None = None) -> list[Record]:
        """Every post record, of one account or of all, oldest first."""
        with self._lock:
            accounts = [self.accounts[did]] if did else list(self.accounts.values())
            return sorted((r for a in accounts for r in a.records.values()), key=lambda r: r.indexed_at)

    def session_for(self, handle: str) -> tuple[str, str]:
        """A fresh (access, refresh) pair, as createSession would give (benches connect with it)."""
        account = self.by_handle(handle)
        assert account is not None
        with self._lock:
            return self._issue(account.did)

    def revoke_app_password(self, handle: str) -> None:
        """The user revoked the app password: its sessions and refresh tokens die with it."""
        with self._lock:
            account = self.by_handle(handle)
            assert account is not None
            account.app_password = f"revoked-{account.app_password}"
            self._access = {t: d for t, d in self._access.items() if d != account.did}
            self._refresh = {t: d for t, d in self._refresh.items() if d != account.did}

    def expire_access_tokens(self) -> None:
        """Every access token is now expired (the PDS answers 400 ExpiredToken)."""
        with self._lock:
            self._access = {f"expired:{t}": d for t, d in self._access.items()}

    def rate_limit_next(self, reset_at: datetime, *, path: str | None = None) -> None:
        self.respond_next(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, headers={
            "ratelimit-limit": "5000", "ratelimit-remaining": "0",
            "ratelimit-reset": str(int(reset_at.timestamp())), "ratelimit-policy": "5000;w=3600"}, path=path)

    def _issue(self, did: str) -> tuple[str, str]:
        self._serial += 1
        access = _jwt(did, "com.atproto.appPass", self._serial, ACCESS_SECONDS)
        refresh = _jwt(did, "com.atproto.refresh", self._serial, 90 * 86400)
        self._access[access] = did
        self._refresh[refresh] = did
        return access, refresh

    # -- routing --------------------------------------------------------------------------

    def latency(self, request: Recorded) -> float:
        return self.create_latency if request.path.endswith("com.atproto.repo.createRecord") else 0.0

    def route(self, request: Recorded) -> Response:
        nsid = request.path.removeprefix("/xrpc/")
        if not request.path.startswith("/xrpc/"):
            return _error(404, "NotFound", f"no route for {request.path}")
        if nsid == "com.atproto.server.createSession" and request.method == "POST":
            return self._create_session(request)
        if nsid == "com.atproto.server.refreshSession" and request.method == "POST":
            return self._refresh_session(request)
        if nsid == "com.atproto.server.deleteSession" and request.method == "POST":
            return self._delete_session(request)
        if nsid == "com.atproto.identity.resolveHandle":
            account = self.by_handle(request.query.get("handle", [""])[0])
            if account is None:
                return _error(400, "InvalidRequest", "Unable to resolve handle")
            return json_response(200, {"did": account.did})
        if nsid == "com.atproto.repo.getRecord":
            return self._get_record(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token.startswith("expired:") or f"expired:{token}" in self._access:
            return _error(400, "ExpiredToken", "Token has expired")
        did = self._access.get(token)
        if did is None:
            return _error(401, "AuthenticationRequired", "Authentication Required")
        if nsid == "com.atproto.server.getSession":
            account = self.accounts[did]
            return json_response(200, {"handle": account.handle, "did": did, "active": True})
        if nsid == "com.atproto.repo.createRecord" and request.method == "POST":
            return self._create_record(request, did)
        if nsid == "com.atproto.repo.uploadBlob" and request.method == "POST":
            return self._upload_blob(request, did)
        if nsid == "app.bsky.feed.getPosts":
            return self._get_posts(request)
        return _error(501, "MethodNotImplemented", f"Method Not Implemented: {nsid}")

    def _session_body(self, did: str) -> dict[str, Any]:
        access, refresh = self._issue(did)
        account = self.accounts[did]
        return {"accessJwt": access, "refreshJwt": refresh, "handle": account.handle, "did": did,
                "didDoc": {"@context": ["https://www.w3.org/ns/did/v1"], "id": did,
                           "alsoKnownAs": [f"at://{account.handle}"],
                           "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                        "serviceEndpoint": self.base_url}]},
                "active": True}

    def _create_session(self, request: Recorded) -> Response:
        body = request.json or {}
        if not isinstance(body.get("identifier"), str) or not isinstance(body.get("password"), str):
            return _error(400, "InvalidRequest", "Input must have the property \"identifier\"")
        identifier = body["identifier"].lower()
        account = self.accounts.get(identifier) or self.by_handle(identifier)
        if account is None or body["password"] != account.app_password:
            return _error(401, "AuthenticationRequired", "Invalid identifier or password")
        return json_response(200, self._session_body(account.did))

    def _delete_session(self, request: Recorded) -> Response:
        """com.atproto.server.deleteSession (atproto lexicon): authorised by the refresh token;
        the session's tokens (refresh and every access token of that account) stop working."""
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        did = self._refresh.pop(token, None)
        if did is None:
            return _error(400, "ExpiredToken", "Token has been revoked")
        for access in [a for a, owner in self._access.items() if owner == did]:
            self._access.pop(access, None)
        self.deleted_sessions += 1
        return (200, {"Content-Type": "application/json"}, b"")

    def _refresh_session(self, request: Recorded) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        did = self._refresh.pop(token, None)  # single use: refresh tokens rotate
        if did is None:
            return _error(400, "ExpiredToken", "Token has been revoked")
        return json_response(200, self._session_body(did))

    def _create_record(self, request: Recorded, did: str) -> Response:
        body = request.json
        if not isinstance(body, dict) or body.get("repo") not in (did, self.accounts[did].handle):
            return _error(400, "InvalidRequest", "Input/repo must be the authenticated account")
        if body.get("collection") != POST:
            return _error(400, "InvalidRequest", f"this fake only holds {POST}")
        rkey = body.get("rkey")
        if not isinstance(rkey, str) or not TID_RE.fullmatch(rkey):
            return _error(400, "InvalidRequest", f"Invalid record key for {POST}: must be a TID")
        record = body.get("record")
        problem = _invalid_post(record) or self._invalid_embed(record, did)
        if problem:
            return _error(400, "InvalidRequest", f"Invalid {POST} record: {problem}")
        account = self.accounts[did]
        if rkey in account.records:
            # The reference PDS: MST.add throws "There is already a value at key", a 500.
            return _error(500, "InternalServerError", "Internal Server Error")
        uri = f"at://{did}/{POST}/{rkey}"
        cid = "bafyrei" + base64.b32encode(uri.encode()).decode().lower().rstrip("=")[:52]
        account.records[rkey] = Record(uri, cid, record, datetime.now(UTC))
        return json_response(200, {"uri": uri, "cid": cid, "commit": {"cid": cid, "rev": rkey},
                                   "validationStatus": "valid"})

    def _upload_blob(self, request: Recorded, did: str) -> Response:
        mime = request.headers.get("content-type", "")
        if not request.body:
            return _error(400, "InvalidRequest", "request body is empty")
        if not mime or mime.startswith(("application/x-www-form-urlencoded", "multipart/")):
            return _error(400, "InvalidRequest", "the blob's Content-Type is required")
        cid = "bafkrei" + hashlib.sha256(request.body).hexdigest()[:52]
        self.blobs[cid] = (did, request.body, mime)
        return json_response(200, {"blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime,
                                            "size": len(request.body)}})

    def _invalid_embed(self, record: Any, did: str) -> str | None:
        """app.bsky.embed.images: 1-4 images, each a blob this account uploaded, an image type
        of at most 1,000,000 bytes, with alt text (required, may be empty)."""
        embed = record.get("embed") if isinstance(record, dict) else None
        if embed is None:
            return None
        if not isinstance(embed, dict) or embed.get("$type") != IMAGES:
            return f"Record/embed must be {IMAGES} here"
        images = embed.get("images")
        if not isinstance(images, list) or not 1 <= len(images) <= 4:
            return "Record/embed/images must have 1 to 4 elements"
        for number, image in enumerate(images):
            blob = image.get("image") if isinstance(image, dict) else None
            link = ((blob or {}).get("ref") or {}).get("$link") if isinstance(blob, dict) else None
            if not isinstance(image, dict) or not isinstance(image.get("alt"), str):
                return f"Record/embed/images/{number} must have the property \"alt\""
            if link not in self.blobs or self.blobs[link][0] != did:
                return f"Record/embed/images/{number}/image: blob {link} not found"
            _, data, mime = self.blobs[link]
            if not mime.startswith("image/") or blob.get("mimeType") != mime:
                return f"Record/embed/images/{number}/image: mime type {mime} not accepted"
            if len(data) > IMAGE_MAX_BYTES or blob.get("size") != len(data):
                return f"Record/embed/images/{number}/image: file too large ({len(data)} > {IMAGE_MAX_BYTES})"
        return None

    def _get_record(self, request: Recorded) -> Response:
        query = {k: v[0] for k, v in request.query.items()}
        account = self.accounts.get(query.get("repo", "")) or self.by_handle(query.get("repo", ""))
        record = account.records.get(query.get("rkey", "")) if account else None
        if account is None or record is None or query.get("collection") != POST:
            return _error(400, "RecordNotFound",
                          f"Could not locate record: at://{query.get('repo')}/{query.get('collection')}/{query.get('rkey')}")
        return json_response(200, {"uri": record.uri, "cid": record.cid, "value": record.value})

    def _get_posts(self, request: Recorded) -> Response:
        uris = request.query.get("uris", [])
        if len(uris) > 25:
            return _error(400, "InvalidRequest", "Input/uris must not have more than 25 elements")
        by_uri = {r.uri: (a, r) for a in self.accounts.values() for r in a.records.values()}
        posts = []
        for uri in uris:
            if uri not in by_uri:
                continue
            account, record = by_uri[uri]
            posts.append({"uri": uri, "cid": record.cid,
                          "author": {"did": account.did, "handle": account.handle},
                          "record": record.value, "indexedAt": record.indexed_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                          "likeCount": 0, "repostCount": 0, "replyCount": 0, "quoteCount": 0, **record.counts})
        return json_response(200, {"posts": posts})


def _invalid_post(record: Any) -> str | None:
    """Why a post record breaks the lexicon (or its facets their text), or None."""
    if not isinstance(record, dict) or record.get("$type") != POST:
        return "Record/$type must be app.bsky.feed.post"
    text = record.get("text")
    if not isinstance(text, str):
        return "Record must have the property \"text\""
    if not isinstance(record.get("createdAt"), str) or not re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", record["createdAt"]):
        return "Record/createdAt must be a valid datetime"
    encoded = text.encode("utf-8")
    if len(encoded) > 3000 or len(regex.findall(r"\X", text)) > 300:
        return "Record/text must not be longer than 300 graphemes"
    langs = record.get("langs", [])
    if not isinstance(langs, list) or len(langs) > 3:
        return "Record/langs must not have more than 3 elements"
    for number, facet in enumerate(record.get("facets") or []):
        problem = _invalid_facet(encoded, facet)
        if problem:
            return f"Record/facets/{number}: {problem}"
    return None


def _invalid_facet(encoded: bytes, facet: Any) -> str | None:
    try:
        start, end = int(facet["index"]["byteStart"]), int(facet["index"]["byteEnd"])
        feature = facet["features"][0]
    except (KeyError, TypeError, ValueError, IndexError):
        return "must have index.byteStart, index.byteEnd and a feature"
    if not 0 <= start < end <= len(encoded):
        return f"byte range {start}-{end} is outside the text ({len(encoded)} bytes)"
    try:
        covered = encoded[start:end].decode("utf-8")
    except UnicodeDecodeError:
        return f"byte range {start}-{end} splits a character"
    kind = str(feature.get("$type", "")).rpartition("#")[2]
    if kind == "link" and covered != feature.get("uri"):
        return f"link covers {covered!r}, not its uri {feature.get('uri')!r}"
    if kind == "tag" and covered.lstrip("#\uff03") != feature.get("tag"):
        return f"tag covers {covered!r}, not #{feature.get('tag')}"
    if kind == "mention" and not (covered.startswith("@") and str(feature.get("did", "")).startswith("did:")):
        return f"mention covers {covered!r}"
    if kind not in ("link", "tag", "mention"):
        return f"unknown feature {feature.get('$type')!r}"
    return None
