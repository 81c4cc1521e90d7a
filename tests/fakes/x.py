"""A local fake of the X API v2 on a real socket: tweets, lookups, timeline, users/me, OAuth 2.0.

Stricter than X where leniency would hide a bug (more than 100 ids in a lookup is a 400 here).
OAuth 2.0 as docs.x.com describes it ("OAuth 2.0 Authorization Code Flow with PKCE"): the
consent page (``/i/oauth2/authorize``, on x.com in production: point ``X_AUTHORIZE_URL`` here),
PKCE required, a code valid once for 30 seconds, a confidential client authenticating with HTTP
Basic, ``POST /2/oauth2/token`` and ``POST /2/oauth2/revoke`` (see :mod:`tests.fakes.oauth`).
"""

from __future__ import annotations

import base64
import html
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
        if self._already_posted(text):
            return _x_problem(403, "Forbidden", _X_DUPLICATE)
        post = self.add_post(text)
        return json_response(
            201, {"data": {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}}
        )

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
