"""Local fakes of the X API v2 and the LinkedIn REST API, served over real sockets.

Each fake is a :class:`tests.fakes.http.FakeHTTPServer` on 127.0.0.1 (port 0), speaking the
platform's wire format: the same paths, headers, status codes and JSON bodies, so the real
clients in :mod:`app.providers.x` and :mod:`app.providers.linkedin` are tested unmodified.

The fakes are stricter than the platforms where leniency would hide a bug: a missing
``LinkedIn-Version`` header, an unescaped little-text character (which LinkedIn would accept
and silently truncate at), or more than 100 ids in a lookup all get a 400 here.

Behaviour is scripted per request: :meth:`FakePlatform.respond_next` (any status, body,
headers), :meth:`FakePlatform.hang_next` (process the request, then stall past the client's
read timeout: the post exists but the client cannot know) and :meth:`FakePlatform.drop_next`
(process, then close the connection without answering).
"""

from __future__ import annotations

import base64
import html
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.http import CLOSE, FakeHTTPServer, Reply

#: Seconds a hung request stalls at most (the fake releases it on exit anyway).
DEFAULT_HANG_SECONDS = 5.0

Response = tuple[int, dict[str, str], bytes]


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_query, keep_blank_values=True)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class _Scripted:
    action: str  # "respond", "hang" or "drop"
    method: str | None
    path: str | None
    response: Response | None = None
    seconds: float = DEFAULT_HANG_SECONDS
    process: bool = True

    def matches(self, request: Recorded) -> bool:
        return (self.method is None or self.method == request.method) and (
            self.path is None or request.path.startswith(self.path)
        )


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response tuple."""
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )


def unused_base_url() -> str:
    """A URL on which nothing listens: connecting is refused, so nothing can have been sent."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakePlatform:
    """Base of the fakes: server lifecycle, request log and scripted misbehaviour."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script: list[_Scripted] = []
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._http: FakeHTTPServer | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> FakePlatform:
        self._http = FakeHTTPServer(self._handle).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        assert self._http is not None
        self._http.__exit__(*exc)

    @property
    def base_url(self) -> str:
        assert self._http is not None, "use the fake as a context manager"
        return self._http.url

    # -- scripting ----------------------------------------------------------------------

    def respond_next(
        self,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next matching request with this response instead of processing it.

        ``body`` bytes are sent verbatim (for truncated or invalid JSON); anything else as JSON.
        """
        if isinstance(body, bytes):
            response: Response = (
                status,
                {"Content-Type": "application/json", **(headers or {})},
                body,
            )
        else:
            response = json_response(status, body if body is not None else {}, headers)
        self._script.append(_Scripted("respond", method, path, response=response))

    def hang_next(
        self,
        *,
        method: str | None = "POST",
        path: str | None = None,
        seconds: float = DEFAULT_HANG_SECONDS,
    ) -> None:
        """Process the next matching request (a post is created), then stall before answering."""
        self._script.append(_Scripted("hang", method, path, seconds=seconds))

    def drop_next(
        self, *, method: str | None = "POST", path: str | None = None, process: bool = True
    ) -> None:
        """Read the next matching request, optionally process it, then close without answering."""
        self._script.append(_Scripted("drop", method, path, process=process))

    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        """The recorded requests whose path starts with ``path``."""
        return [
            r
            for r in self.requests
            if r.path.startswith(path) and (method is None or r.method == method)
        ]

    # -- dispatch -----------------------------------------------------------------------

    def route(self, request: Recorded) -> Response:
        """Process ``request`` as the platform would (implemented by each fake)."""
        raise NotImplementedError

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        """FakeHTTPServer's handler: log, apply the script, else process as the platform."""
        parts = urlsplit(raw_path)
        request = Recorded(method=method, path=parts.path, raw_query=parts.query, headers=headers,
                           body=body)
        with self._lock:
            self.requests.append(request)
            scripted = next((s for s in self._script if s.matches(request)), None)
            if scripted is not None:
                self._script.remove(scripted)
        if scripted is not None and scripted.action == "respond":
            assert scripted.response is not None
            return scripted.response
        if scripted is not None and scripted.action == "drop":
            if scripted.process:
                with self._lock:
                    self.route(request)
            return CLOSE
        with self._lock:
            response = self.route(request)
        if scripted is not None and scripted.action == "hang":
            self._release.wait(scripted.seconds)
        return response


# -- X --------------------------------------------------------------------------------------

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
    ) -> None:
        super().__init__()
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
        self._generation = 1
        self._next_id = 1790000000000000001

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
        if any(p.text == text for p in self.posts):
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

    def _token(self, request: Recorded) -> Response:
        if request.headers.get("content-type", "") != "application/x-www-form-urlencoded":
            return json_response(
                400, {"error": "invalid_request", "error_description": "form body required"}
            )
        form = request.form
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


# -- LinkedIn -------------------------------------------------------------------------------

LITTLE_RESERVED = set("\\|{}@[]()<>#*_~")
_ENTITY_RE = re.compile(r"\((share|ugc):(urn%3Ali%3A(share|ugcPost)%3A\d+)\)")


def _li_error(status: int, code: str, message: str, service_code: int = 100) -> Response:
    return json_response(
        status,
        {"status": status, "serviceErrorCode": service_code, "code": code, "message": message},
    )


#: A little-text hashtag template, ``{hashtag|\#|tag}`` (the tag itself little-escaped).
_HASHTAG_TEMPLATE = re.compile(r"\{hashtag\|\\#\|((?:[^\\{}|\[\]()<>@#*~]|\\.)+)\}")


def first_unescaped_reserved(text: str) -> int | None:
    """Index of the first little-text reserved character not escaped with a backslash
    (hashtag templates are markup, not reserved characters)."""
    i = 0
    while i < len(text):
        template = _HASHTAG_TEMPLATE.match(text, i)
        if template:
            i = template.end()
            continue
        char = text[i]
        if char == "\\":
            if i + 1 < len(text) and text[i + 1] in LITTLE_RESERVED:
                i += 2
                continue
            return i
        if char in LITTLE_RESERVED:
            return i
        i += 1
    return None


def _unescape(text: str) -> str:
    """Plain text of little-text commentary, as LinkedIn displays it (a template as ``#tag``)."""
    text = _HASHTAG_TEMPLATE.sub(lambda m: "\x00" + m.group(1), text)
    return re.sub(r"\\(.)", r"\1", text).replace("\x00", "#")


@dataclass
class LinkedInPost:
    urn: str
    author: str
    commentary: str  # as stored by LinkedIn: little text, escaped
    created_ms: int
    analytics: dict[str, int] = field(default_factory=dict)


class FakeLinkedIn(FakePlatform):
    """LinkedIn: ``/rest/posts`` (create, find by author), memberCreatorPostAnalytics,
    ``/v2/userinfo`` and the ``/oauth/v2/accessToken`` refresh, on one base URL."""

    def __init__(
        self,
        *,
        client_id: str = "li-client-id",
        client_secret: str = "li-client-secret",
        oldest_active_version: str = "202410",
        posts_readable: bool = True,
        refresh_mode: str = "same",
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.oldest_active_version = oldest_active_version
        self.posts_readable = posts_readable
        self.refresh_mode = refresh_mode
        self.member_sub = "782bbtaQ"
        self.member_name = "Ada Lovelace"
        self.access_token = "li-access-1"
        self.refresh_token = "li-refresh-1"
        self.posts: list[LinkedInPost] = []
        self._generation = 1
        self._next_id = 7200000000000000001

    def __enter__(self) -> FakeLinkedIn:
        super().__enter__()
        return self

    @property
    def member_urn(self) -> str:
        return f"urn:li:person:{self.member_sub}"

    def add_post(
        self,
        text: str,
        *,
        created_ms: int | None = None,
        analytics: dict[str, int] | None = None,
        kind: str = "share",
        commentary: str | None = None,
    ) -> LinkedInPost:
        """Seed an existing post; ``text`` is plain and stored escaped, as LinkedIn would
        (``commentary``: the little text exactly as received, hashtag templates included)."""
        with self._lock:
            escaped = commentary if commentary is not None else "".join(
                "\\" + c if c in LITTLE_RESERVED else c for c in text)
            post = LinkedInPost(
                urn=f"urn:li:{kind}:{self._next_id}",
                author=self.member_urn,
                commentary=escaped,
                created_ms=created_ms or int(datetime.now(UTC).timestamp() * 1000),
                analytics=analytics or {},
            )
            self._next_id += 1
            self.posts.append(post)
            return post

    def revoke_access_token(self) -> None:
        """Invalidate the current access token."""
        with self._lock:
            self.access_token = f"li-revoked-{self._generation}"

    def route(self, request: Recorded) -> Response:
        path, method = request.path, request.method
        if method == "POST" and path == "/oauth/v2/accessToken":
            return self._token(request)
        if request.headers.get("authorization", "") != f"Bearer {self.access_token}":
            return _li_error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600)
        if method == "GET" and path == "/v2/userinfo":
            return json_response(
                200,
                {
                    "sub": self.member_sub,
                    "email_verified": True,
                    "name": self.member_name,
                    "given_name": "Ada",
                    "family_name": "Lovelace",
                    "locale": {"country": "GB", "language": "en"},
                },
            )
        if path.startswith("/rest/"):
            refused = self._check_rest_headers(request)
            if refused is not None:
                return refused
            if method == "POST" and path == "/rest/posts":
                return self._create(request)
            if method == "GET" and path == "/rest/posts":
                return self._find(request)
            if method == "GET" and path == "/rest/memberCreatorPostAnalytics":
                return self._analytics(request)
        return _li_error(404, "NOT_FOUND", f"No resource for {method} {path}")

    def _check_rest_headers(self, request: Recorded) -> Response | None:
        version = request.headers.get("linkedin-version", "")
        if not re.fullmatch(r"\d{6}(?:\.\d{2})?", version):
            return _li_error(
                400,
                "VERSION_MISSING",
                "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
            )
        if version < self.oldest_active_version:
            return _li_error(
                426, "NONEXISTENT_VERSION", f"Requested version {version} is not active"
            )
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            return _li_error(
                400, "PROTOCOL_VERSION_MISSING", "X-Restli-Protocol-Version: 2.0.0 is required"
            )
        return None

    def _create(self, request: Recorded) -> Response:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _li_error(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json")
        try:
            body = request.json
        except ValueError:
            return _li_error(400, "INVALID_JSON", "Request body is not valid JSON")
        expected_distribution = {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        }
        if not isinstance(body, dict) or body.get("distribution") != expected_distribution:
            return _li_error(422, "UNPROCESSABLE_ENTITY", "/distribution :: field is required")
        if body.get("author") != self.member_urn:
            return _li_error(
                403, "ACCESS_DENIED", f"Member is not allowed to post as {body.get('author')}"
            )
        for name, value in (("visibility", "PUBLIC"), ("lifecycleState", "PUBLISHED")):
            if body.get(name) != value:
                return _li_error(422, "UNPROCESSABLE_ENTITY", f"/{name} :: expected {value}")
        if body.get("isReshareDisabledByAuthor") is not False:
            return _li_error(
                422, "UNPROCESSABLE_ENTITY", "/isReshareDisabledByAuthor :: boolean required"
            )
        commentary = body.get("commentary")
        if not isinstance(commentary, str) or not commentary:
            return _li_error(422, "UNPROCESSABLE_ENTITY", "/commentary :: field is required")
        index = first_unescaped_reserved(commentary)
        if index is not None:
            return _li_error(
                400,
                "UNESCAPED_RESERVED_CHARACTER",
                f"commentary has an unescaped {commentary[index]!r} at {index}: "
                "LinkedIn would silently truncate the post there",
            )
        if len(_unescape(commentary)) > 3000:
            return _li_error(
                422, "UNPROCESSABLE_ENTITY", "/commentary :: length exceeds 3000 characters"
            )
        for post in self.posts:
            if post.commentary == commentary:
                return _li_error(422, "DUPLICATE_POST", f"Content is a duplicate of {post.urn}")
        with self._lock:
            post = self.add_post(_unescape(commentary), commentary=commentary)
        return 201, {"x-restli-id": post.urn, "x-linkedin-id": post.urn.rsplit(":", 1)[1]}, b""

    def _find(self, request: Recorded) -> Response:
        query = request.query
        if request.headers.get("x-restli-method", "").upper() != "FINDER" or query.get("q") != [
            "author"
        ]:
            return _li_error(
                400, "ILLEGAL_ARGUMENT", "q=author with X-RestLi-Method: FINDER required"
            )
        if not self.posts_readable:
            return _li_error(
                403,
                "ACCESS_DENIED",
                "Not enough permissions to access: partnerApiPostsExternal.FINDER-author.20250101",
            )
        author = query.get("author", [""])[0]
        if author != self.member_urn:
            return _li_error(403, "ACCESS_DENIED", f"Not allowed to read posts of {author}")
        count = int(query.get("count", ["10"])[0])
        posts = sorted(self.posts, key=lambda p: p.created_ms, reverse=True)[:count]
        elements = [
            {
                "id": p.urn,
                "author": p.author,
                "commentary": p.commentary,
                "createdAt": p.created_ms,
                "publishedAt": p.created_ms,
                "lastModifiedAt": p.created_ms,
                "lifecycleState": "PUBLISHED",
                "visibility": "PUBLIC",
                "distribution": {
                    "feedDistribution": "MAIN_FEED",
                    "targetEntities": [],
                    "thirdPartyDistributionChannels": [],
                },
                "isReshareDisabledByAuthor": False,
            }
            for p in posts
        ]
        return json_response(
            200, {"paging": {"start": 0, "count": count, "links": []}, "elements": elements}
        )

    def _analytics(self, request: Recorded) -> Response:
        # Parsed from the raw query: Rest.li needs the URN percent-encoded *inside* literal parens.
        raw = dict(part.split("=", 1) for part in request.raw_query.split("&") if "=" in part)
        if raw.get("q") != "entity":
            return _li_error(400, "ILLEGAL_ARGUMENT", "q must be entity")
        match = _ENTITY_RE.fullmatch(raw.get("entity", ""))
        if match is None:
            return _li_error(
                400,
                "ILLEGAL_ARGUMENT",
                f"Invalid entity {raw.get('entity')!r}: expected (share:<encoded urn>) or (ugc:<encoded urn>)",
            )
        kind, urn = match.group(1), unquote(match.group(2))
        if (kind == "ugc") != (match.group(3) == "ugcPost"):
            return _li_error(400, "ILLEGAL_ARGUMENT", f"entity key {kind} does not match {urn}")
        query_type = raw.get("queryType", "")
        if query_type not in {"IMPRESSION", "MEMBERS_REACHED", "RESHARE", "REACTION", "COMMENT"}:
            return _li_error(
                400, "ILLEGAL_ARGUMENT", f"queryType must be exactly one metric, got {query_type!r}"
            )
        if raw.get("aggregation") not in {"TOTAL", "DAILY"}:
            return _li_error(400, "ILLEGAL_ARGUMENT", "aggregation must be TOTAL or DAILY")
        post = next((p for p in self.posts if p.urn == urn), None)
        if post is None:
            return _li_error(404, "NOT_FOUND", f"{urn} not found")
        element = {
            "count": post.analytics.get(query_type, 0),
            "metricType": {
                "com.linkedin.adsexternalapi.memberanalytics.v1.CreatorPostAnalyticsMetricTypeV1": query_type
            },
            "targetEntity": {"ugcPost" if kind == "ugc" else "share": urn},
        }
        return json_response(
            200, {"paging": {"start": 0, "count": 10, "links": []}, "elements": [element]}
        )

    def _token(self, request: Recorded) -> Response:
        if request.headers.get("content-type", "") != "application/x-www-form-urlencoded":
            return json_response(
                400, {"error": "invalid_request", "error_description": "form body required"}
            )
        form = request.form
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return json_response(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
            )
        if form.get("grant_type") != "refresh_token":
            return json_response(
                400, {"error": "unsupported_grant_type", "error_description": "grant_type"}
            )
        if form.get("refresh_token") != self.refresh_token:
            return json_response(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "The provided authorization grant or refresh token is invalid, expired or revoked",
                },
            )
        self._generation += 1
        self.access_token = f"li-access-{self._generation}"
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "expires_in": 5184000,
            "refresh_token_expires_in": 31000000,
            "scope": "openid profile w_member_social r_member_postAnalytics",
        }
        if self.refresh_mode == "rotate":
            self.refresh_token = f"li-refresh-{self._generation}"
        if self.refresh_mode != "omit":
            body["refresh_token"] = self.refresh_token
        return json_response(200, body)
