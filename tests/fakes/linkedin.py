"""A local fake of the LinkedIn REST API on a real socket: posts, analytics, userinfo, OAuth.

Stricter than LinkedIn where leniency would hide a bug: a missing ``LinkedIn-Version`` header or
an unescaped little-text character (which LinkedIn would accept and silently truncate at) is a
400 here. The 3-legged OAuth flow as learn.microsoft.com's "Authorization Code Flow (3-legged
OAuth)" describes it: the consent page at ``/oauth/v2/authorization``, Cancel sending back
``error=user_cancelled_authorize``, a code valid once for 30 minutes, the client id and secret in
the ``/oauth/v2/accessToken`` form body; no PKCE for a web app, no revocation endpoint for apps.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from PIL import Image

from tests.fakes.oauth import CodeRefused, ConsentServer
from tests.fakes.platform import (
    FakePlatform,
    Recorded,
    Response,
    json_response,
)

#: The scopes LinkedIn's consent screen knows (those of the products the autopilot uses).
LINKEDIN_KNOWN_SCOPES = frozenset({"openid", "profile", "email", "w_member_social", "r_member_postAnalytics"})
#: Seconds an authorisation code stays valid (the docs: "The authorization code has a 30-minute lifespan").
LINKEDIN_CODE_LIFETIME_SECONDS = 30 * 60.0
LINKEDIN_AUTHORIZE_PATH = "/oauth/v2/authorization"
LINKEDIN_DECIDE_PATH = "/oauth/v2/authorization/decide"
#: What LinkedIn appends to the redirect URI when the member presses Cancel.
LINKEDIN_CANCELLED = {"error": "user_cancelled_authorize",
                      "error_description": "The user cancelled the authorization"}

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
    #: ``content`` as posted (``{"media": {"id": "urn:li:image:...", "altText": ...}}``), if any.
    content: dict[str, Any] | None = None


#: The Images API (learn.microsoft.com, linkedin/marketing/community-management/shares/images-api):
#: JPG, GIF and PNG; at most 36,152,320 pixels; an image is WAITING_UPLOAD until its bytes are
#: PUT to the uploadUrl, then PROCESSING, then AVAILABLE; a post may only name an AVAILABLE image
#: its author owns.
LI_IMAGE_MAGIC = {"image/jpeg": (b"\xff\xd8\xff",), "image/png": (b"\x89PNG\r\n\x1a\n",),
                  "image/gif": (b"GIF87a", b"GIF89a")}
LI_IMAGE_MAX_PIXELS = 36_152_320


@dataclass
class LinkedInImage:
    urn: str
    owner: str
    upload_token: str
    status: str = "WAITING_UPLOAD"
    data: bytes = b""
    #: GETs still to answer PROCESSING after the upload.
    processing_left: int = 0


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
        redirect_uris: Iterable[str] = (),
        code_lifetime_seconds: float = LINKEDIN_CODE_LIFETIME_SECONDS,
        oauth_clock: Callable[[], float] = time.monotonic,
        issue_refresh_tokens: bool = False,
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
        self.images: dict[str, LinkedInImage] = {}
        self._next_image = 1
        #: GETs of a new image that answer PROCESSING before AVAILABLE.
        self.image_processing_polls = 0
        #: The authorisation server: register the app's redirect URIs on ``consent.redirect_uris``.
        self.consent = ConsentServer(
            name="LinkedIn", client_id=client_id, scopes=LINKEDIN_KNOWN_SCOPES,
            decide_path=LINKEDIN_DECIDE_PATH, denied=LINKEDIN_CANCELLED,
            code_lifetime_seconds=code_lifetime_seconds, pkce_required=False, accept_label="Allow",
            clock=oauth_clock)
        self.consent.redirect_uris.update(redirect_uris)
        #: LinkedIn gives refresh tokens to approved partners only: off by default, as for most apps.
        self.issue_refresh_tokens = issue_refresh_tokens
        #: Access tokens issued for authorisation codes, in order.
        self.issued_access_tokens: list[str] = []

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
        if method == "GET" and path == LINKEDIN_AUTHORIZE_PATH:
            self.consent.account_label = self.member_name
            return self.consent.consent_page(request)
        if method == "POST" and path == LINKEDIN_DECIDE_PATH:
            return self.consent.decide(request)
        if request.headers.get("authorization", "") != f"Bearer {self.access_token}":
            return _li_error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600)
        if method == "PUT" and path.startswith("/dms-uploads/"):
            return self._image_put(request)
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
            if method == "POST" and path == "/rest/images" and request.query.get("action") == ["initializeUpload"]:
                return self._image_initialize(request)
            if method == "GET" and path.startswith("/rest/images/"):
                return self._image_get(unquote(path[len("/rest/images/"):]))
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
        content = body.get("content")
        if content is not None:
            refused = self._check_content(content)
            if refused is not None:
                return refused
        for post in self.posts:
            if post.commentary == commentary:
                return _li_error(422, "DUPLICATE_POST", f"Content is a duplicate of {post.urn}")
        with self._lock:
            post = self.add_post(_unescape(commentary), commentary=commentary)
            post.content = content
        return 201, {"x-restli-id": post.urn, "x-linkedin-id": post.urn.rsplit(":", 1)[1]}, b""

    # -- the Images API ------------------------------------------------------------------

    def _image_initialize(self, request: Recorded) -> Response:
        body = request.json if request.body else None
        owner = ((body or {}).get("initializeUploadRequest") or {}).get("owner")
        if owner != self.member_urn:
            return _li_error(403, "ACCESS_DENIED", f"Not allowed to upload images for {owner}")
        urn = f"urn:li:image:D4E10AQ{self._next_image:09d}"
        token = f"upload-{self._next_image}"
        self._next_image += 1
        self.images[urn] = LinkedInImage(urn, owner, token)
        return json_response(200, {"value": {
            "uploadUrlExpiresAt": int(time.time() * 1000) + 3_600_000,
            "uploadUrl": f"{self.base_url}/dms-uploads/{token}",
            "image": urn}})

    def _image_put(self, request: Recorded) -> Response:
        token = request.path.rsplit("/", 1)[1]
        image = next((i for i in self.images.values() if i.upload_token == token), None)
        if image is None or image.status != "WAITING_UPLOAD":
            return _li_error(400, "INVALID_UPLOAD", "unknown or already used upload URL")
        kind = next((t for t, magics in LI_IMAGE_MAGIC.items() if request.body.startswith(magics)), None)
        if kind is None:
            image.status = "PROCESSING_FAILED"
            return 201, {}, b""  # LinkedIn takes the bytes and fails the processing
        image.data = request.body
        with Image.open(io.BytesIO(request.body)) as decoded:
            if decoded.size[0] * decoded.size[1] > LI_IMAGE_MAX_PIXELS:
                image.status = "PROCESSING_FAILED"
                return 201, {}, b""
        image.status = "PROCESSING" if self.image_processing_polls else "AVAILABLE"
        image.processing_left = self.image_processing_polls
        return 201, {}, b""

    def _image_get(self, urn: str) -> Response:
        image = self.images.get(urn)
        if image is None or image.owner != self.member_urn:
            return _li_error(404, "NOT_FOUND", f"No image {urn}")
        if image.status == "PROCESSING":
            image.processing_left -= 1
            if image.processing_left <= 0:
                image.status = "AVAILABLE"
                return json_response(200, {"id": urn, "owner": image.owner, "status": "PROCESSING"})
        return json_response(200, {"id": urn, "owner": image.owner, "status": image.status})

    def _check_content(self, content: Any) -> Response | None:
        media = content.get("media") if isinstance(content, dict) else None
        if not isinstance(media, dict) or not isinstance(media.get("id"), str):
            return _li_error(422, "UNPROCESSABLE_ENTITY", "/content/media/id :: field is required")
        image = self.images.get(media["id"])
        if image is None or image.owner != self.member_urn:
            return _li_error(422, "UNPROCESSABLE_ENTITY", f"/content/media/id :: unknown image {media['id']}")
        if image.status != "AVAILABLE":
            return _li_error(422, "UNPROCESSABLE_ENTITY",
                             f"/content/media/id :: image {media['id']} is {image.status}")
        alt = media.get("altText")
        if alt is not None and (not isinstance(alt, str) or len(alt) > 4086):
            return _li_error(422, "UNPROCESSABLE_ENTITY", "/content/media/altText :: at most 4086 characters")
        return None

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
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
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
        if form.get("grant_type") == "authorization_code":
            return self._redeem_code(form)
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

    def _redeem_code(self, form: dict[str, str]) -> Response:
        """``grant_type=authorization_code``: a 60-day token for a valid code (it becomes the
        member's current one: the fake has one member)."""
        try:
            issued = self.consent.redeem(form, client_id=form.get("client_id", ""))
        except CodeRefused as exc:
            # LinkedIn's one message for every refused code (see the wire fixture's source).
            return json_response(400, {
                "error": "invalid_request",
                "error_description": "Unable to retrieve access token: appid/redirect uri/code verifier does "
                                     f"not match authorization code. Or authorization code expired. ({exc.description})",
            })
        self._generation += 1
        self.access_token = f"li-oauth-access-{self._generation}"
        self.issued_access_tokens.append(self.access_token)
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "expires_in": 5184000,
            "scope": ",".join(issued.consent.scope),
            "token_type": "Bearer",
        }
        if "openid" in issued.consent.scope:
            body["id_token"] = "eyJ6aXAiOiJERUYiLCJhbGciOiJSUzI1NiJ9.fake.signature"
        if self.issue_refresh_tokens:
            self.refresh_token = f"li-oauth-refresh-{self._generation}"
            body["refresh_token"] = self.refresh_token
            body["refresh_token_expires_in"] = 31536000
        return json_response(200, body)
