"""Publishing to Bluesky over the AT Protocol's XRPC, on the account's own PDS.

An account connects with its handle and an *app password* (``com.atproto.server.createSession``);
we keep the session's two JWTs, encrypted like every token, and renew them with
``com.atproto.server.refreshSession``. A refused refresh (the app password was revoked) makes
the account "needs re-authorisation", as for X.

**Exactly once by the record key.** A post is created with ``com.atproto.repo.createRecord``
under a record key (a TID) derived from the post itself (:func:`record_key`), so the record's
address is known before the request leaves. A repeated create with that key is refused by the
PDS (its repository already holds the key: the reference PDS answers 500), and any failed or
doubtful create is settled by reading that one address back (``com.atproto.repo.getRecord``):
found means already published, with the record's own ``createdAt``; never a second post.

httpx rather than the ``atproto`` SDK: the publish workflow's safety rests on knowing whether a
failed request could have reached the server (connect errors vs read timeouts), which the SDK
folds into one exception class, and on the per-thread clients the posting pool needs
(:class:`app.providers.http.PlatformClient`). The shapes are the lexicons' (``lexicons/`` of
bluesky-social/atproto; the recorded ones are in ``tests/fixtures/wire/bluesky``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from app.config import Settings
from app.providers import http
from app.providers.base import (
    AccountCredentials,
    MediaFile,
    PostMetrics,
    PostRef,
    PublishResult,
    TokenSet,
    UploadedMedia,
)
from app.providers.errors import (
    AuthError,
    LookupUnsupported,
    OutcomeUnknown,
    PermanentError,
    ProviderError,
    RateLimited,
    TemporaryError,
)
from app.richtext import bluesky_facets, facet_records, mention_handles
from app.text_limits import limit_error

#: The collection of Bluesky posts.
POST_COLLECTION = "app.bsky.feed.post"
#: The most URIs ``app.bsky.feed.getPosts`` takes in one call (its lexicon's ``maxLength``).
DEFAULT_LOOKUP_BATCH = 25
#: The alphabet of a TID: base32, sortable (atproto's "Timestamp Identifier").
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
#: XRPC error names meaning the session is no good: refresh, or re-authorise.
AUTH_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthenticationRequired", "AccountTakedown",
                         "AuthMissing", "InvalidEmail"})


#: The embed of a post with images (lexicon app.bsky.embed.images: up to 4, each with alt text).
IMAGES_EMBED = "app.bsky.embed.images"
#: How long a PDS keeps an uploaded blob that no record names yet (atproto's blob lifecycle: a
#: temporary blob is removed after about an hour): past it, an upload is made again.
BLOB_UNREFERENCED_LIFETIME = timedelta(hours=1)


def record_key(ref: PostRef) -> str:
    """The post's record key: a TID whose timestamp is the post's scheduled second plus its id
    in microseconds, and whose clock id carries the rest of the id. The same post always gets
    the same key; two posts of one account never share one (their ids differ)."""
    seconds = int(ref.scheduled_at.timestamp())
    micros = seconds * 1_000_000 + ref.post_id % 1_000_000
    clock_id = (ref.post_id // 1_000_000) % 1024
    value = (micros << 10) | clock_id
    chars = []
    for _ in range(13):
        chars.append(TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT, read without verifying it (only the PDS can), or None."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
    except (IndexError, ValueError, KeyError, TypeError, OverflowError):
        return None


def pds_from_did_document(document: Any) -> str | None:
    """The ``#atproto_pds`` service endpoint of a DID document, where the account lives."""
    if not isinstance(document, dict):
        return None
    for service in document.get("service") or []:
        if isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds"):
            endpoint = service.get("serviceEndpoint")
            if isinstance(endpoint, str) and endpoint.startswith(("https://", "http://")):
                return endpoint.rstrip("/")
    return None


def _timestamp(at: datetime) -> str:
    """The lexicon's datetime: RFC 3339 in UTC with milliseconds and a Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _error(response: httpx.Response) -> tuple[str, str]:
    """An XRPC error body's ``error`` name and ``message``."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:300] or response.reason_phrase
    if not isinstance(body, dict):
        return "", str(body)[:300]
    return str(body.get("error") or ""), str(body.get("message") or "")


def rate_limit_reset(response: httpx.Response) -> datetime | None:
    """When the limit lifts: ``RateLimit-Reset`` (epoch seconds), as the PDS sends it."""
    value = response.headers.get("ratelimit-reset")
    try:
        return datetime.fromtimestamp(int(value), tz=UTC) if value else None
    except (ValueError, OverflowError, OSError):
        return None


@dataclass(frozen=True)
class Session:
    """What ``createSession`` gives: the tokens, who the account is and where it lives."""

    tokens: TokenSet
    did: str
    handle: str
    pds_url: str


class BlueskyPublisher(http.PlatformClient):
    """The real Bluesky publisher: XRPC on each account's PDS with its session tokens."""

    name = "bluesky"
    platform = "bluesky"
    offline = False

    def __init__(self, pds_url: str, *, timeout: httpx.Timeout | None = None,
                 transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.pds_url = pds_url.rstrip("/")
        super().__init__(timeout=timeout, transport=transport, clock=clock)

    # -- connecting -------------------------------------------------------------------------

    def create_session(self, identifier: str, app_password: str) -> Session:
        """Sign in with a handle (or DID) and an app password; AuthError if refused."""
        response = self._send("POST", self.pds_url, "com.atproto.server.createSession",
                              json={"identifier": identifier.strip().lstrip("@"), "password": app_password})
        if response.status_code in (400, 401):
            name, message = _error(response)
            raise AuthError(f"Bluesky refused the handle or app password: {name} {message}".strip())
        body = self._body(response, "createSession", creates=False)
        return self._session(body, self.pds_url)

    def delete_session(self, account: AccountCredentials) -> None:
        """End the session (``com.atproto.server.deleteSession`` with the refresh token): its
        tokens stop working on the PDS. ProviderError if the PDS does not confirm."""
        token = account.refresh_token or account.access_token
        response = self._send("POST", self._host(account), "com.atproto.server.deleteSession",
                              headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 200:
            self._raise_for(response, creates=False)

    def _session(self, body: dict[str, Any], pds_url: str) -> Session:
        try:
            access, refresh, did, handle = (str(body[k]) for k in ("accessJwt", "refreshJwt", "did", "handle"))
        except KeyError:
            raise TemporaryError("Bluesky session answer lacks its tokens") from None
        tokens = TokenSet(access_token=access, refresh_token=refresh, expires_at=jwt_expiry(access),
                          refresh_expires_at=jwt_expiry(refresh))
        return Session(tokens, did, handle, pds_from_did_document(body.get("didDoc")) or pds_url)

    # -- Publisher protocol -----------------------------------------------------------------

    def upload_media(self, account: AccountCredentials, media: MediaFile) -> UploadedMedia:
        """``com.atproto.repo.uploadBlob``: the bytes as the body, their type as Content-Type.
        The blob reference (with the image's aspect ratio) is what the post's embed names, kept
        as JSON; the PDS drops a blob no record names within :data:`BLOB_UNREFERENCED_LIFETIME`.
        Creates no post, so every failure is a plain provider error."""
        response = self._send("POST", self._host(account), "com.atproto.repo.uploadBlob", account=account,
                              content=media.data, headers={"Content-Type": media.content_type})
        blob = self._body(response, "uploadBlob", creates=False).get("blob")
        if not (isinstance(blob, dict) and isinstance(blob.get("ref"), dict) and blob["ref"].get("$link")):
            raise TemporaryError("Bluesky uploadBlob answered without a blob reference")
        kept = {"blob": blob, "aspectRatio": {"width": media.width_px, "height": media.height_px}}
        return UploadedMedia(json.dumps(kept, sort_keys=True), media.alt_text,
                             self._clock() + BLOB_UNREFERENCED_LIFETIME)

    def publish(self, account: AccountCredentials, text: str, ref: PostRef | None = None,
                media: Sequence[UploadedMedia] = ()) -> PublishResult:
        """Create the post under its derived record key (with an ``app.bsky.embed.images``
        embed carrying each image's blob and alt text, when it has images); a refused or
        doubtful create is read back by that key (already published) before any error is raised."""
        if ref is None:
            raise PermanentError("a Bluesky post needs its PostRef: the record key is derived from it")
        too_long = limit_error(self.platform, text)
        if too_long:
            raise PermanentError(f"Bluesky would refuse the post: {too_long}")
        did = self._did(account)
        rkey = record_key(ref)
        dids = {handle: resolved for handle in mention_handles(text)
                if (resolved := self._resolve_handle(account, handle)) is not None}
        # The record keeps milliseconds: what we record is what the PDS holds.
        now = self._clock()
        created_at = now.replace(microsecond=now.microsecond // 1000 * 1000)
        record: dict[str, Any] = {"$type": POST_COLLECTION, "text": text, "createdAt": _timestamp(created_at),
                                  "langs": [ref.language]}
        facets = facet_records(bluesky_facets(text, dids))
        if facets:
            record["facets"] = facets
        if media:
            images = []
            for item in media:
                kept = json.loads(item.media_id)
                images.append({"image": kept["blob"], "alt": item.alt_text, "aspectRatio": kept["aspectRatio"]})
            record["embed"] = {"$type": IMAGES_EMBED, "images": images}
        body = {"repo": did, "collection": POST_COLLECTION, "rkey": rkey, "record": record}
        try:
            response = self._send("POST", self._host(account), "com.atproto.repo.createRecord",
                                  account=account, creates=True, json=body)
        except OutcomeUnknown:
            found = self._read_back(account, did, rkey)
            if found is not None:
                return found
            raise
        if response.status_code == 200:
            try:
                uri = str(response.json()["uri"])
            except (ValueError, KeyError, TypeError):
                raise OutcomeUnknown("Bluesky answered 200 with an unreadable body; the post may exist") from None
            return PublishResult(external_id=uri, url=_web_url(did, rkey), published_at=created_at)
        if response.status_code in (401, 429) or _error(response)[0] in AUTH_ERRORS:
            self._raise_for(response, creates=True)  # nothing was written
        # Refused or failed: a repeat of a create that went through is refused too, so ask.
        found = self._read_back(account, did, rkey)
        if found is not None:
            return found
        self._raise_for(response, creates=True)

    def find_published(self, account: AccountCredentials, text: str, since: datetime,
                       ref: PostRef | None = None) -> PublishResult | None:
        """The post's record, read at its derived key: exact, whatever its text became."""
        if ref is None:
            raise LookupUnsupported("Bluesky posts are found by their record key, which needs the post")
        return self._read_back(account, self._did(account), record_key(ref))

    def refresh(self, account: AccountCredentials) -> TokenSet:
        """A new session from the refresh JWT; AuthError (re-authorise) if the PDS refuses it,
        as it does once the app password is revoked."""
        if not account.refresh_token:
            raise AuthError("Bluesky account has no refresh token: it must be re-authorised")
        headers = {"Authorization": f"Bearer {account.refresh_token}"}
        response = self._send("POST", self._host(account), "com.atproto.server.refreshSession", headers=headers)
        if response.status_code in (400, 401):
            name, message = _error(response)
            raise AuthError(f"Bluesky refused the session refresh ({name}: {message}); "
                            "the app password may have been revoked")
        return self._session(self._body(response, "refreshSession", creates=False), self._host(account)).tokens

    def fetch_metrics(self, account: AccountCredentials, external_ids: list[str]) -> dict[str, PostMetrics]:
        """Likes, reposts (with quotes) and replies from ``app.bsky.feed.getPosts``, 25 at a
        time; Bluesky shows no impressions. A deleted post is simply absent."""
        metrics: dict[str, PostMetrics] = {}
        for batch in _batches(list(dict.fromkeys(external_ids)), DEFAULT_LOOKUP_BATCH):
            response = self._send("GET", self._host(account), "app.bsky.feed.getPosts", account=account,
                                  params=[("uris", uri) for uri in batch])
            for post in self._body(response, "getPosts", creates=False).get("posts") or []:
                if not isinstance(post, dict) or "uri" not in post:
                    continue
                metrics[str(post["uri"])] = PostMetrics(
                    impressions=0, likes=int(post.get("likeCount") or 0),
                    shares=int(post.get("repostCount") or 0) + int(post.get("quoteCount") or 0),
                    comments=int(post.get("replyCount") or 0))
        return metrics

    def check_account(self, account: AccountCredentials) -> str:
        """The handle the session acts for (``autopilot doctor`` shows it)."""
        response = self._send("GET", self._host(account), "com.atproto.server.getSession", account=account)
        return "@" + str(self._body(response, "getSession", creates=False).get("handle", "?"))

    # -- plumbing ---------------------------------------------------------------------------

    def _did(self, account: AccountCredentials) -> str:
        if not account.external_id:
            raise AuthError("Bluesky account has no DID: it must be connected again")
        return account.external_id

    def _host(self, account: AccountCredentials) -> str:
        return (account.service_url or self.pds_url).rstrip("/")

    def _resolve_handle(self, account: AccountCredentials, handle: str) -> str | None:
        """A mentioned handle's DID, or None (the mention then stays plain text)."""
        try:
            response = self._send("GET", self._host(account), "com.atproto.identity.resolveHandle",
                                  params={"handle": handle})
        except ProviderError:
            return None
        if response.status_code != 200:
            return None
        did = http.json_object("Bluesky", response, "resolveHandle").get("did")
        return str(did) if did else None

    def _read_back(self, account: AccountCredentials, did: str, rkey: str) -> PublishResult | None:
        """The record at our key, if it exists (``getRecord``; 400 RecordNotFound: it does not)."""
        response = self._send("GET", self._host(account), "com.atproto.repo.getRecord", account=account,
                              params={"repo": did, "collection": POST_COLLECTION, "rkey": rkey})
        if response.status_code == 400 and _error(response)[0] == "RecordNotFound":
            return None
        body = self._body(response, "getRecord", creates=False)
        raw = body.get("value")
        value: dict[str, Any] = raw if isinstance(raw, dict) else {}
        return PublishResult(external_id=str(body.get("uri") or f"at://{did}/{POST_COLLECTION}/{rkey}"),
                             url=_web_url(did, rkey), published_at=_parse_time(value.get("createdAt")))

    def _body(self, response: httpx.Response, what: str, *, creates: bool) -> dict[str, Any]:
        if response.status_code != 200:
            self._raise_for(response, creates=creates)
        return http.json_object("Bluesky", response, what)

    def _send(self, method: str, host: str, nsid: str, *, account: AccountCredentials | None = None,
              creates: bool = False, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if account is not None:
            headers.update(http.bearer("Bluesky", account, self._clock()))
        return http.send(self._http, "Bluesky", method, f"{host}/xrpc/{nsid}", creates=creates,
                         headers=headers, **kwargs)

    @staticmethod
    def _raise_for(response: httpx.Response, *, creates: bool) -> NoReturn:
        name, message = _error(response)
        detail = f"{name}: {message}" if name else message
        if response.status_code == 429:
            raise RateLimited(f"Bluesky rate limit: {detail}", reset_at=rate_limit_reset(response))
        if name in AUTH_ERRORS:
            raise AuthError(f"Bluesky refused the session: {detail}")
        http.raise_for_status("Bluesky", response, detail, creates=creates, reset_at=None)


def _web_url(did: str, rkey: str) -> str:
    return f"https://bsky.app/profile/{quote(did, safe=':')}/post/{rkey}"


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def from_settings(settings: Settings, timeout: httpx.Timeout) -> BlueskyPublisher | None:
    """The Bluesky publisher this configuration selects (app.platforms names this factory);
    None unless ``BLUESKY_ENABLED``."""
    if not settings.bluesky_enabled:
        return None
    return BlueskyPublisher(settings.bluesky_pds_url, timeout=timeout)
