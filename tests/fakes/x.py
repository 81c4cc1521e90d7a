"""A local fake of the X API v2 on a real socket: tweets, lookups, timeline, users/me, OAuth 2.0.

Stricter than X where leniency would hide a bug (more than 100 ids in a lookup is a 400 here).
OAuth 2.0 as docs.x.com describes it ("OAuth 2.0 Authorization Code Flow with PKCE"): the
consent page (``/i/oauth2/authorize``, on x.com in production: point ``X_AUTHORIZE_URL`` here),
PKCE required, a code valid once for 30 seconds, a confidential client authenticating with HTTP
Basic, ``POST /2/oauth2/token`` and ``POST /2/oauth2/revoke`` (see :mod:`tests.fakes.oauth`).
"""

from __future__ import annotations

import base64
import email.policy
import html
import itertools
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from typing import Any

from tests.fakes.oauth import CodeRefused, ConsentServer
from tests.fakes.platform import (
    FakePlatform,
    Recorded,
    Response,
    json_response,
)

#: The scopes X's consent screen knows (docs.x.com, "OAuth 2.0 scopes"; those the autopilot may ask).
X_KNOWN_SCOPES = frozenset({"tweet.read", "tweet.write", "users.read", "offline.access", "media.write",
                            "follows.read", "like.read", "like.write"})
#: Seconds an authorisation code stays valid (docs.x.com: "valid for 30 seconds").
X_CODE_LIFETIME_SECONDS = 30.0
#: Paths of the consent page and of its buttons' form.
X_AUTHORIZE_PATH = "/i/oauth2/authorize"
X_DECIDE_PATH = "/i/oauth2/authorize/decide"

_X_DUPLICATE = "You are not allowed to create a Tweet with duplicate content."
_URL_RE = re.compile(r"https?://\S+")


def _x_problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    return json_response(
        status, {"title": title, "detail": detail, "type": "about:blank", "status": status, **extra}
    )


def _x_invalid(message: str, parameter: str) -> Response:
    return json_response(
        400,
        {
            "errors": [{"parameters": {parameter: []}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
    )


@dataclass
class XPost:
    id: str
    text: str
    author_id: str
    created_at: datetime
    public_metrics: dict[str, int] = field(default_factory=dict)
    media_ids: list[str] = field(default_factory=list)


#: What the v2 media upload takes for a post's images (docs.x.com, x-api/media: "Image
#: 5 MB, GIF 15 MB"; media_category tweet_image / tweet_gif; media ids expire after
#: ``expires_after_secs``, 86,400 s in the documented examples for images).
X_MEDIA_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif"}
X_MEDIA_MAX_BYTES = {"tweet_image": 5 * 1024 * 1024, "tweet_gif": 15 * 1024 * 1024}
X_MEDIA_EXPIRES_SECS = 86_400
X_MEDIA_PER_TWEET = 4


@dataclass
class XMedia:
    """One upload session: initialized, appended in order, finalized, processed."""

    id: str
    owner: str
    media_type: str
    category: str
    total_bytes: int
    created_at: float
    segments: dict[int, bytes] = field(default_factory=dict)
    finalized: bool = False
    #: STATUS answers still to say "in_progress" before "succeeded".
    processing_left: int = 0
    alt_text: str | None = None

    @property
    def data(self) -> bytes:
        return b"".join(self.segments[i] for i in sorted(self.segments))

    @property
    def ready(self) -> bool:
        return self.finalized and self.processing_left == 0


def _multipart(request: Recorded) -> dict[str, bytes]:
    """The fields of a multipart/form-data body (name -> raw value)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ValueError("multipart/form-data required")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request.body)
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = part.get_payload(decode=True) or b""
    return fields


#: The first bytes of each image type (what X's media processing would reject otherwise).
_MAGIC = {"image/jpeg": (b"\xff\xd8\xff",), "image/png": (b"\x89PNG\r\n\x1a\n",),
          "image/gif": (b"GIF87a", b"GIF89a"), "image/webp": (b"RIFF",)}


def _looks_like(media_type: str, data: bytes) -> bool:
    return data.startswith(_MAGIC[media_type]) and (media_type != "image/webp" or data[8:12] == b"WEBP")


class FakeX(FakePlatform):
    """X API v2: tweets, tweet lookup, user timeline, users/me and the OAuth 2.0 token endpoint.

    Only the current access token is accepted; a refresh issues a new one (and, depending on
    ``refresh_mode``, a rotated, the same, no or an empty refresh token).
    """

    def __init__(
        self,
        *,
        client_id: str = "x-client-id",
        client_secret: str | None = None,
        refresh_mode: str = "rotate",
        max_text: int = 280,
        create_latency: float = 0.0,
        redirect_uris: Iterable[str] = (),
        code_lifetime_seconds: float = X_CODE_LIFETIME_SECONDS,
        oauth_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        #: Seconds each create takes before X answers (benches: a platform's real latency).
        self.create_latency = create_latency
        if refresh_mode not in {"rotate", "same", "omit", "empty"}:
            raise ValueError(f"unknown refresh_mode {refresh_mode!r}")
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_mode = refresh_mode
        self.max_text = max_text
        self.user_id = "1500000000000000001"
        self.username = "autopilot_test"
        self.access_token = "x-access-1"
        self.refresh_token = "x-refresh-1"
        self.posts: list[XPost] = []
        self._texts: set[str] = set()
        self._indexed = 0
        self._generation = 1
        self._next_id = 1790000000000000001
        self.media: dict[str, XMedia] = {}
        self._media_ids = itertools.count(1880028106020515841)
        #: STATUS polls each new upload needs before it is processed (0: ready at finalize).
        self.media_processing_polls = 0
        #: Seconds after which an upload's id is refused (X's ``expires_after_secs``).
        self.media_expires_secs = X_MEDIA_EXPIRES_SECS
        #: The authorisation server: register the app's redirect URIs on ``consent.redirect_uris``.
        self.consent = ConsentServer(
            name="X", client_id=client_id, scopes=X_KNOWN_SCOPES, decide_path=X_DECIDE_PATH,
            denied={"error": "access_denied"}, code_lifetime_seconds=code_lifetime_seconds,
            pkce_required=True, accept_label="Authorize app", clock=oauth_clock)
        self.consent.redirect_uris.update(redirect_uris)
        #: Tokens revoked through ``POST /2/oauth2/revoke``.
        self.revoked: list[str] = []
        #: Access tokens issued for authorisation codes, in order.
        self.issued_access_tokens: list[str] = []

    @property
    def authorize_url(self) -> str:
        """The consent page's URL (``X_AUTHORIZE_URL``)."""
        return self.base_url + X_AUTHORIZE_PATH

    def __enter__(self) -> FakeX:
        super().__enter__()
        return self

    def add_post(
        self,
        text: str,
        *,
        created_at: datetime | None = None,
        metrics: dict[str, int] | None = None,
    ) -> XPost:
        """Seed an existing tweet (as if posted earlier)."""
        with self._lock:
            post = XPost(
                id=str(self._next_id),
                text=text,
                author_id=self.user_id,
                created_at=created_at or datetime.now(UTC),
                public_metrics=metrics or {},
            )
            self._next_id += 1
            self.posts.append(post)
            return post

    def _already_posted(self, text: str) -> bool:
        """X's duplicate check, in O(1): the texts of ``posts``, indexed as they are appended
        (a scan per create made a 12,000-post bench quadratic in the fake)."""
        with self._lock:
            if len(self.posts) < self._indexed:  # cleared by a test: index afresh
                self._texts, self._indexed = set(), 0
            self._texts.update(p.text for p in self.posts[self._indexed:])
            self._indexed = len(self.posts)
            return text in self._texts

    def revoke_access_token(self) -> None:
        """Invalidate the current access token (as after its 2-hour lifetime)."""
        with self._lock:
            self.access_token = f"x-revoked-{self._generation}"

    def rate_limit_next(self, reset_at: datetime, *, path: str = "/2/tweets") -> None:
        """Answer the next request to ``path`` with 429 and epoch-seconds reset headers."""
        self.respond_next(
            429,
            {
                "title": "Too Many Requests",
                "detail": "Too Many Requests",
                "type": "about:blank",
                "status": 429,
            },
            headers={
                "x-rate-limit-limit": "100",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(reset_at.timestamp())),
            },
            path=path,
        )

    def route(self, request: Recorded) -> Response:
        path, method = request.path, request.method
        if method == "POST" and path == "/2/oauth2/token":
            return self._token(request)
        if method == "POST" and path == "/2/oauth2/revoke":
            return self._revoke(request)
        if method == "GET" and path == X_AUTHORIZE_PATH:
            self.consent.account_label = f"@{self.username}"
            return self.consent.consent_page(request)
        if method == "POST" and path == X_DECIDE_PATH:
            return self.consent.decide(request)
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {self.access_token}":
            return _x_problem(401, "Unauthorized", "Unauthorized")
        if method == "POST" and path == "/2/tweets":
            return self._create(request)
        if path.startswith("/2/media"):
            return self._media(request)
        if method == "GET" and path == "/2/tweets":
            return self._lookup(request)
        if method == "GET" and path == "/2/users/me":
            return json_response(
                200,
                {"data": {"id": self.user_id, "name": "Autopilot Test", "username": self.username}},
            )
        match = re.fullmatch(r"/2/users/(\d+)/tweets", path)
        if method == "GET" and match:
            return self._timeline(request, match.group(1))
        return _x_problem(404, "Not Found Error", f"no route for {method} {path}")

    def latency(self, request: Recorded) -> float:
        return self.create_latency if (request.method, request.path) == ("POST", "/2/tweets") else 0.0

    def _create(self, request: Recorded) -> Response:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _x_invalid("Content-Type must be application/json", "body")
        try:
            body = request.json
        except ValueError:
            return _x_invalid("Request body is not valid JSON", "body")
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return _x_invalid("$.text must be a non-empty string", "text")
        if len(text) > self.max_text:
            return _x_invalid(
                f"Your Tweet text is too long ({len(text)} > {self.max_text}).", "text"
            )
        media_ids = (body.get("media") or {}).get("media_ids") or []
        refused = self._check_tweet_media(media_ids)
        if refused is not None:
            return refused
        if self._already_posted(text):
            return _x_problem(403, "Forbidden", _X_DUPLICATE)
        post = self.add_post(text)
        post.media_ids = list(media_ids)
        return json_response(
            201, {"data": {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}}
        )

    # -- media upload (v2): initialize, append, finalize, STATUS, metadata ----------------

    def _check_tweet_media(self, media_ids: list[Any]) -> Response | None:
        if len(media_ids) > X_MEDIA_PER_TWEET:
            return _x_invalid(f"at most {X_MEDIA_PER_TWEET} media per post", "media.media_ids")
        for media_id in media_ids:
            media = self.media.get(str(media_id))
            if media is None or media.owner != self.user_id:
                return _x_invalid(f"Your media IDs are invalid: {media_id}", "media.media_ids")
            if not media.ready:
                return _x_invalid(f"Media {media_id} is not ready (finalize and wait for processing)",
                                  "media.media_ids")
            if time.time() - media.created_at > self.media_expires_secs:
                return _x_invalid(f"Media {media_id} has expired", "media.media_ids")
        return None

    def _media(self, request: Recorded) -> Response:
        path, method = request.path, request.method
        if method == "POST" and path == "/2/media/upload/initialize":
            return self._media_initialize(request)
        if method == "GET" and path == "/2/media/upload":
            return self._media_status(request)
        if method == "POST" and path == "/2/media/metadata":
            return self._media_metadata(request)
        match = re.fullmatch(r"/2/media/upload/(\d+)/(append|finalize)", path)
        if method == "POST" and match:
            media = self.media.get(match.group(1))
            if media is None or media.owner != self.user_id:
                return _x_problem(404, "Not Found Error", f"no upload {match.group(1)}")
            if match.group(2) == "append":
                return self._media_append(request, media)
            return self._media_finalize(media)
        return _x_problem(404, "Not Found Error", f"no route for {method} {path}")

    def _media_initialize(self, request: Recorded) -> Response:
        body = request.json if request.body else None
        if not isinstance(body, dict):
            return _x_invalid("JSON body required", "body")
        media_type, category = body.get("media_type"), body.get("media_category")
        total = body.get("total_bytes")
        if media_type not in X_MEDIA_TYPES:
            return _x_invalid(f"media_type {media_type!r} is not supported", "media_type")
        if category not in X_MEDIA_MAX_BYTES:
            return _x_invalid(f"media_category {category!r} is not supported here", "media_category")
        if category == "tweet_gif" and media_type != "image/gif":
            return _x_invalid("tweet_gif takes image/gif only", "media_category")
        if not isinstance(total, int) or total < 1:
            return _x_invalid("total_bytes must be a positive integer", "total_bytes")
        if total > X_MEDIA_MAX_BYTES[category]:
            return _x_invalid(f"File size exceeds {X_MEDIA_MAX_BYTES[category]} bytes", "total_bytes")
        media = XMedia(str(next(self._media_ids)), self.user_id, media_type, category, total, time.time(),
                       processing_left=self.media_processing_polls)
        self.media[media.id] = media
        return json_response(200, {"data": {"id": media.id, "media_key": f"3_{media.id}",
                                            "expires_after_secs": self.media_expires_secs}})

    def _media_append(self, request: Recorded, media: XMedia) -> Response:
        if media.finalized:
            return _x_invalid("The upload was already finalized", "media_id")
        try:
            fields = _multipart(request)
        except ValueError as exc:
            return _x_invalid(str(exc), "body")
        try:
            index = int(fields.get("segment_index", b"").decode())
        except ValueError:
            return _x_invalid("segment_index must be an integer", "segment_index")
        if not 0 <= index <= 999 or "media" not in fields:
            return _x_invalid("segment_index 0-999 and a media part are required", "segment_index")
        media.segments[index] = fields["media"]
        if sum(map(len, media.segments.values())) > media.total_bytes:
            return _x_invalid("more bytes appended than total_bytes declared", "media")
        return 204, {}, b""

    def _media_finalize(self, media: XMedia) -> Response:
        size = sum(map(len, media.segments.values()))
        if sorted(media.segments) != list(range(len(media.segments))) or size != media.total_bytes:
            return _x_invalid(f"Segments missing: {size} of {media.total_bytes} bytes received", "media_id")
        if media.media_type not in X_MEDIA_TYPES or not _looks_like(media.media_type, media.data):
            return _x_invalid("The media is not a valid image of its declared type", "media")
        media.finalized = True
        data: dict[str, Any] = {"id": media.id, "media_key": f"3_{media.id}", "size": size,
                                "expires_after_secs": self.media_expires_secs}
        if media.processing_left:
            data["processing_info"] = {"state": "pending", "check_after_secs": 1}
        return json_response(200, {"data": data})

    def _media_status(self, request: Recorded) -> Response:
        if request.query.get("command", [""])[0] != "STATUS":
            return _x_invalid("command must be STATUS", "command")
        media = self.media.get(request.query.get("media_id", [""])[0])
        if media is None or media.owner != self.user_id or not media.finalized:
            return _x_invalid("No finalized upload with this media_id", "media_id")
        if media.processing_left:
            media.processing_left -= 1
        state = "succeeded" if media.processing_left == 0 else "in_progress"
        info: dict[str, Any] = {"state": state, "progress_percent": 100 if state == "succeeded" else 50}
        if state != "succeeded":
            info["check_after_secs"] = 1
        return json_response(200, {"data": {"id": media.id, "media_key": f"3_{media.id}",
                                            "processing_info": info}})

    def _media_metadata(self, request: Recorded) -> Response:
        body = request.json if request.body else None
        media = self.media.get(str((body or {}).get("id", "")))
        if media is None or media.owner != self.user_id:
            return _x_invalid("Unknown media id", "id")
        alt = (((body or {}).get("metadata") or {}).get("alt_text") or {}).get("text")
        if not isinstance(alt, str) or len(alt) > 1000:
            return _x_invalid("alt_text.text must be a string of at most 1000 characters", "metadata")
        media.alt_text = alt
        return json_response(200, {"data": {"associated_metadata": True, "id": media.id}})

    def media_of(self, post: XPost) -> list[XMedia]:
        """The uploads a tweet carries."""
        return [self.media[media_id] for media_id in post.media_ids]

    def _lookup(self, request: Recorded) -> Response:
        raw = request.query.get("ids", [""])[0]
        ids = [i for i in raw.split(",") if i]
        if not ids or len(ids) > 100:
            return _x_invalid(f"`ids` must have between 1 and 100 items, got {len(ids)}", "ids")
        if not all(i.isdigit() for i in ids):
            return _x_invalid("`ids` must be numeric", "ids")
        fields = request.query.get("tweet.fields", [""])[0].split(",")
        by_id = {p.id: p for p in self.posts}
        data, errors = [], []
        for tweet_id in ids:
            post = by_id.get(tweet_id)
            if post is None:
                errors.append(
                    {
                        "value": tweet_id,
                        "detail": f"Could not find tweet with ids: [{tweet_id}].",
                        "title": "Not Found Error",
                        "resource_type": "tweet",
                        "parameter": "ids",
                        "resource_id": tweet_id,
                        "type": "https://api.twitter.com/2/problems/resource-not-found",
                    }
                )
                continue
            item: dict[str, Any] = {
                "id": post.id,
                "text": post.text,
                "edit_history_tweet_ids": [post.id],
            }
            if "public_metrics" in fields:
                item["public_metrics"] = {
                    "retweet_count": 0,
                    "reply_count": 0,
                    "like_count": 0,
                    "quote_count": 0,
                    "bookmark_count": 0,
                    "impression_count": 0,
                    **post.public_metrics,
                }
            data.append(item)
        body: dict[str, Any] = {}
        if data:
            body["data"] = data
        if errors:
            body["errors"] = errors
        return json_response(200, body)

    def _timeline(self, request: Recorded, user_id: str) -> Response:
        if user_id != self.user_id:
            return _x_problem(403, "Forbidden", "You can only read your own timeline here")
        query = request.query
        try:
            max_results = int(query.get("max_results", ["10"])[0])
        except ValueError:
            return _x_invalid("max_results must be an integer", "max_results")
        if not 5 <= max_results <= 100:
            return _x_invalid("max_results must be between 5 and 100", "max_results")
        posts = sorted(self.posts, key=lambda p: p.created_at, reverse=True)
        if "start_time" in query:
            raw = query["start_time"][0]
            if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", raw):
                return _x_invalid(
                    f"Invalid start_time {raw!r}: expected YYYY-MM-DDTHH:mm:ssZ", "start_time"
                )
            start = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            posts = [p for p in posts if p.created_at >= start]
        offset = int(query.get("pagination_token", ["0"])[0] or 0)
        page = posts[offset : offset + max_results]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta["newest_id"], meta["oldest_id"] = page[0].id, page[-1].id
        if offset + max_results < len(posts):
            meta["next_token"] = str(offset + max_results)
        data = [
            {
                "id": p.id,
                # As X renders it: links wrapped in t.co, & < > HTML-escaped.
                "text": html.escape(_URL_RE.sub("https://t.co/AbCdEf1234", p.text), quote=False),
                "created_at": p.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "edit_history_tweet_ids": [p.id],
            }
            for p in page
        ]
        body: dict[str, Any] = {"meta": meta}
        if data:
            body["data"] = data
        return json_response(200, body)

    def _client_refused(self, request: Recorded) -> Response | None:
        """A confidential client must authenticate with HTTP Basic; a public one names itself."""
        if self.client_secret is not None:
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                return json_response(
                    401,
                    {
                        "error": "unauthorized_client",
                        "error_description": "Missing valid authorization header",
                    },
                )
        elif request.form.get("client_id") != self.client_id:
            return json_response(
                400, {"error": "invalid_request", "error_description": "Missing required parameter [client_id]."})
        return None

    def _token(self, request: Recorded) -> Response:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return json_response(
                400, {"error": "invalid_request", "error_description": "form body required"}
            )
        form = request.form
        if form.get("grant_type") == "authorization_code":
            return self._redeem_code(request)
        refused = self._client_refused(request)
        if refused is not None:
            return refused
        if form.get("grant_type") != "refresh_token" or form.get("client_id") != self.client_id:
            return json_response(
                400,
                {"error": "invalid_request", "error_description": "bad grant_type or client_id"},
            )
        if form.get("refresh_token") != self.refresh_token:
            return json_response(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "Value passed for the token was invalid.",
                },
            )
        self._generation += 1
        self.access_token = f"x-access-{self._generation}"
        body: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": 7200,
            "access_token": self.access_token,
            "scope": "tweet.read tweet.write users.read offline.access",
        }
        if self.refresh_mode == "rotate":
            self.refresh_token = f"x-refresh-{self._generation}"
            body["refresh_token"] = self.refresh_token
        elif self.refresh_mode == "same":
            body["refresh_token"] = self.refresh_token
        elif self.refresh_mode == "empty":
            body["refresh_token"] = ""
        return json_response(200, body)

    def _redeem_code(self, request: Recorded) -> Response:
        """``grant_type=authorization_code``: a new token pair for a valid code (it becomes the
        account's current one: the fake has one account)."""
        refused = self._client_refused(request)
        if refused is not None:
            return refused
        form = request.form
        if form.get("client_id", self.client_id) != self.client_id:
            return json_response(400, {"error": "invalid_request", "error_description": "client_id mismatch"})
        again = self.consent.is_redeemed_again(form)
        try:
            issued = self.consent.redeem(form, client_id=self.client_id)
        except CodeRefused as exc:
            if again is not None and self.access_token in again.tokens:
                self.revoke_access_token()  # a replayed code: what it yielded is withdrawn
            return json_response(400, {"error": exc.error, "error_description": exc.description})
        self._generation += 1
        self.access_token = f"x-oauth-access-{self._generation}"
        issued.tokens.append(self.access_token)
        self.issued_access_tokens.append(self.access_token)
        body: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": 7200,
            "access_token": self.access_token,
            "scope": " ".join(issued.consent.scope),
        }
        if "offline.access" in issued.consent.scope:
            self.refresh_token = f"x-oauth-refresh-{self._generation}"
            body["refresh_token"] = self.refresh_token
        return json_response(200, body)

    def _revoke(self, request: Recorded) -> Response:
        """``POST /2/oauth2/revoke``: the token stops working; X answers ``{"revoked": true}``."""
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return json_response(400, {"error": "invalid_request", "error_description": "form body required"})
        refused = self._client_refused(request)
        if refused is not None:
            return refused
        token = request.form.get("token", "")
        if not token:
            return json_response(400, {"error": "invalid_request",
                                       "error_description": "Missing required parameter [token]."})
        if token == self.access_token:
            self.revoke_access_token()
        if token == self.refresh_token:
            self.refresh_token = f"x-refresh-revoked-{self._generation}"
        self.revoked.append(token)
        return json_response(200, {"revoked": True})
