"""A local fake of one Mastodon instance on a real socket: apps, OAuth, statuses, instance.

Built from docs.joinmastodon.org (mastodon/documentation: methods/apps, methods/oauth,
spec/oauth, methods/statuses, methods/instance, methods/accounts, api/rate-limits,
entities/Status); the recorded shapes and their sources are in ``tests/fixtures/wire/mastodon/``.
It enforces what the instance does:

* a repeated ``Idempotency-Key`` (same account) returns the first status, not a second one,
  for ``idempotency_ttl_seconds`` (the docs: "stored for up to 1 hour"); after that the key is
  forgotten and a repeat creates again;
* a status longer than ``max_characters``, counted as Mastodon counts (every URL as
  ``characters_reserved_per_url``, ``@user@domain`` as ``@user``), is refused with 422;
* an authorization code is single use, bound to its client and redirect URI, and to its PKCE
  challenge (S256) when one was sent;
* an invalid token is 401 ``The access token is invalid``; a missing status 404.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import html
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import regex

from tests.fakes.platform import FakePlatform, Recorded, Response, json_response

_URL = re.compile(r"https?://[^\s]+")
_MENTION = re.compile(r"(?<![\w/])(@\w+(?:[.\w-]*\w)?)(@[\w.-]+\w)?")
VISIBILITIES = ("public", "unlisted", "private", "direct")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"error": message}, headers)


def counted_length(text: str, reserved: int) -> int:
    """Mastodon's StatusLengthValidator, written again here (not imported from the app)."""
    text = _URL.sub(lambda m: "x" * reserved + m.group(0)[len(m.group(0).rstrip(".,;:!?\"')")):], text)
    text = _MENTION.sub(lambda m: m.group(1), text)
    return len(regex.findall(r"\X", text))


@dataclass
class Status:
    id: str
    account_id: str
    text: str
    visibility: str
    language: str | None
    created_at: datetime
    counts: dict[str, int] = field(default_factory=dict)


#: Media limits of a default instance (docs.joinmastodon.org, entities/Instance:
#: configuration.media_attachments: image_size_limit 16 MB (16777216), supported_mime_types;
#: methods/media: POST /api/v2/media answers 202 while processing, GET /api/v1/media/:id 206).
MEDIA_IMAGE_SIZE_LIMIT = 16 * 1024 * 1024
MEDIA_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/avif"}


@dataclass
class Attachment:
    id: str
    account_id: str
    data: bytes
    mime: str
    description: str
    processing_left: int = 0
    status_id: str | None = None


def multipart_fields(request: Recorded) -> dict[str, tuple[bytes, str]]:
    """The parts of a multipart/form-data body: name -> (bytes, the part's content type)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ValueError("multipart/form-data required")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request.body)
    fields: dict[str, tuple[bytes, str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_payload(decode=True) or b"", part.get_content_type())
    return fields


@dataclass
class App:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    scopes: str


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    account_id: str
    challenge: str | None


class FakeMastodon(FakePlatform):
    """One instance. ``pkce``: whether it advertises S256 (Mastodon 4.3+) or is older."""

    def __init__(self, *, domain: str = "social.test", max_characters: int = 500, reserved_per_url: int = 23,
                 pkce: bool = True, idempotency_ttl_seconds: float = 3600.0, create_latency: float = 0.0) -> None:
        super().__init__()
        self.domain = domain
        self.max_characters = max_characters
        self.reserved_per_url = reserved_per_url
        self.pkce = pkce
        self.idempotency_ttl_seconds = idempotency_ttl_seconds
        self.create_latency = create_latency
        self.apps: dict[str, App] = {}
        self.accounts: dict[str, str] = {}  # id -> username
        self.tokens: dict[str, str] = {}  # token -> account id
        self.statuses: list[Status] = []
        self._grants: dict[str, Grant] = {}
        self._keys: dict[tuple[str, str], tuple[str, float]] = {}  # (account, key) -> (status id, when)
        self._next_id = 113_000_000_000_000_001
        self.media: dict[str, Attachment] = {}
        self._next_media_id = 114_000_000_000_000_001
        #: GETs of a new attachment answering 206 (processing) before 200.
        self.media_processing_polls = 0
        #: Tokens revoked through POST /oauth/revoke (a disconnect).
        self.revoked_tokens = 0
        self.account_id, self.access_token = self.add_account("ada")

    def __enter__(self) -> FakeMastodon:
        super().__enter__()
        return self

    # -- state ----------------------------------------------------------------------------

    def add_account(self, username: str) -> tuple[str, str]:
        """A local account and a token for it (benches connect with these)."""
        with self._lock:
            account_id = str(100 + len(self.accounts))
            self.accounts[account_id] = username
            token = f"mastodon-token-{account_id}-{secrets.token_hex(4)}"
            self.tokens[token] = account_id
            return account_id, token

    def revoke(self, token: str) -> None:
        with self._lock:
            self.tokens.pop(token, None)

    def forget_idempotency_keys(self) -> None:
        """As an hour later: every key has expired."""
        with self._lock:
            self._keys.clear()

    def statuses_of(self, account_id: str) -> list[Status]:
        with self._lock:
            return [s for s in self.statuses if s.account_id == account_id]

    def approve(self, authorize_url: str, account_id: str | None = None) -> str:
        """What the user's click on "Authorize" does: the redirect URL carrying the code (or,
        out of band, the code itself)."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        with self._lock:
            problem = self._check_authorize(query)
            assert problem is None, problem
            return self._grant(query, account_id or self.account_id)

    def rate_limit_next(self, reset_at: datetime, *, path: str | None = None) -> None:
        self.respond_next(429, {"error": "Too many requests"}, headers=self._rate_headers(0, reset_at), path=path)

    @staticmethod
    def _rate_headers(remaining: int, reset_at: datetime) -> dict[str, str]:
        return {"x-ratelimit-limit": "300", "x-ratelimit-remaining": str(remaining),
                "x-ratelimit-reset": reset_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}

    # -- routing --------------------------------------------------------------------------

    def latency(self, request: Recorded) -> float:
        return self.create_latency if (request.method, request.path) == ("POST", "/api/v1/statuses") else 0.0

    def route(self, request: Recorded) -> Response:
        path, method = request.path, request.method
        if (method, path) == ("POST", "/api/v1/apps"):
            return self._register(request)
        if (method, path) == ("GET", "/.well-known/oauth-authorization-server"):
            if not self.pkce:
                return (404, {"Content-Type": "text/html"}, b"<h1>The page you are looking for isn't here.</h1>")
            return json_response(200, {
                "issuer": f"{self.base_url}/", "authorization_endpoint": f"{self.base_url}/oauth/authorize",
                "token_endpoint": f"{self.base_url}/oauth/token", "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "client_credentials"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["read", "write", "read:statuses", "write:statuses", "write:media",
                                     "profile"]})
        if path == "/oauth/authorize":
            return self._authorize_page(request)
        if (method, path) == ("POST", "/oauth/token"):
            return self._token(request)
        if (method, path) == ("POST", "/oauth/revoke"):
            return self._revoke(request)
        if (method, path) == ("GET", "/api/v2/instance"):
            return json_response(200, {
                "domain": self.domain, "title": "Fake instance", "version": "4.3.0",
                "configuration": {"statuses": {"max_characters": self.max_characters, "max_media_attachments": 4,
                                               "characters_reserved_per_url": self.reserved_per_url},
                                  "urls": {"streaming": f"wss://{self.domain}"}}})
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        account_id = self.tokens.get(token)
        if account_id is None:
            return _error(401, "The access token is invalid")
        if (method, path) == ("GET", "/api/v1/accounts/verify_credentials"):
            return json_response(200, self._account(account_id))
        if (method, path) == ("POST", "/api/v1/statuses"):
            return self._create(request, account_id)
        if (method, path) == ("POST", "/api/v2/media"):
            return self._upload(request, account_id)
        match = re.fullmatch(r"/api/v1/media/(\d+)", path)
        if method == "GET" and match:
            return self._media_status(match.group(1), account_id)
        if (method, path) == ("GET", "/api/v1/statuses"):
            wanted = request.query.get("id[]", [])
            if len(wanted) > 20:
                return _error(422, "Validation failed: too many ids")
            by_id = {s.id: s for s in self.statuses}
            return json_response(200, [self._status(by_id[i]) for i in wanted if i in by_id])
        match = re.fullmatch(r"/api/v1/statuses/(\d+)", path)
        if method == "GET" and match:
            found = next((s for s in self.statuses if s.id == match.group(1)), None)
            return json_response(200, self._status(found)) if found else _error(404, "Record not found")
        match = re.fullmatch(r"/api/v1/accounts/(\d+)/statuses", path)
        if method == "GET" and match:
            limit = min(int(request.query.get("limit", ["20"])[0]), 40)
            mine = [s for s in reversed(self.statuses) if s.account_id == match.group(1)]
            return json_response(200, [self._status(s) for s in mine[:limit]])
        return _error(404, "Not Found")

    # -- apps and OAuth -------------------------------------------------------------------

    def _params(self, request: Recorded) -> dict[str, Any]:
        if request.headers.get("content-type", "").startswith("application/json"):
            return request.json or {}
        return request.form

    def _register(self, request: Recorded) -> Response:
        params = self._params(request)
        if not params.get("client_name"):
            return _error(422, "Validation failed: Application name can't be blank")
        redirect = params.get("redirect_uris")
        if not redirect:
            return _error(422, "Validation failed: Redirect URI can't be blank")
        uris = redirect if isinstance(redirect, list) else str(redirect).split()
        app = App(f"client-{secrets.token_hex(6)}", f"secret-{secrets.token_hex(8)}", uris,
                  str(params.get("scopes") or "read"))
        self.apps[app.client_id] = app
        return json_response(200, {"id": str(len(self.apps)), "name": params["client_name"], "website": None,
                                   "scopes": app.scopes.split(), "redirect_uri": "\n".join(uris),
                                   "redirect_uris": uris, "client_id": app.client_id,
                                   "client_secret": app.client_secret, "client_secret_expires_at": 0,
                                   "vapid_key": "BFake"})

    def _check_authorize(self, query: dict[str, str]) -> str | None:
        app = self.apps.get(query.get("client_id", ""))
        if app is None:
            return "Client authentication failed due to unknown client"
        if query.get("redirect_uri") not in app.redirect_uris:
            return "The redirect uri included is not valid."
        if query.get("response_type") != "code":
            return "The authorization server does not support this response type."
        if not set(query.get("scope", "read").split()) <= set(app.scopes.split()):
            return "The requested scope is invalid, unknown, or malformed."
        if "code_challenge" in query and query.get("code_challenge_method") != "S256":
            return "Code challenge method must be S256"
        return None

    def _grant(self, query: dict[str, str], account_id: str) -> str:
        code = secrets.token_urlsafe(16)
        self._grants[code] = Grant(query["client_id"], query["redirect_uri"], account_id,
                                   query.get("code_challenge"))
        redirect = query["redirect_uri"]
        if redirect == "urn:ietf:wg:oauth:2.0:oob":
            return code
        sep = "&" if "?" in redirect else "?"
        return f"{redirect}{sep}{urlencode({'code': code, 'state': query.get('state', '')})}"

    def _authorize_page(self, request: Recorded) -> Response:
        """The consent page (GET) and its "Authorize" button (POST: redirect with the code)."""
        query = {k: v[0] for k, v in request.query.items()}
        if request.method == "POST":
            query = {**query, **request.form}
        problem = self._check_authorize(query)
        if problem:
            return (400, {"Content-Type": "text/html"}, f"<h1>{html.escape(problem)}</h1>".encode())
        if request.method == "POST" and query.pop("decision", "authorize") == "deny":
            # Doorkeeper's "Deny": back to the app with RFC 6749's access_denied and the state.
            redirect = query["redirect_uri"]
            sep = "&" if "?" in redirect else "?"
            denied = urlencode({"error": "access_denied", "state": query.get("state", ""), "error_description":
                                "The resource owner or authorization server denied the request."})
            return (302, {"Location": f"{redirect}{sep}{denied}"}, b"")
        if request.method == "POST":
            target = self._grant(query, self.account_id)
            return (302, {"Location": target}, b"")
        fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in query.items())
        page = (f"<html><body><h1>Authorization required</h1><p>{html.escape(self.apps[query['client_id']].client_id)}"
                f" would like permission to access your account ({html.escape(query.get('scope', ''))}).</p>"
                f'<form method="post" action="/oauth/authorize">{fields}<button name="decision" value="authorize">'
                f'Authorize</button> <button name="decision" value="deny">Deny</button></form></body></html>')
        return (200, {"Content-Type": "text/html; charset=utf-8"}, page.encode())

    def _token(self, request: Recorded) -> Response:
        form = self._params(request)
        invalid = json_response(400, {"error": "invalid_grant", "error_description":
                                      "The provided authorization grant is invalid, expired, revoked, does not "
                                      "match the redirection URI used in the authorization request, or was "
                                      "issued to another client."})
        app = self.apps.get(str(form.get("client_id", "")))
        if app is None or form.get("client_secret") != app.client_secret:
            return json_response(401, {"error": "invalid_client", "error_description":
                                       "Client authentication failed due to unknown client, no client "
                                       "authentication included, or unsupported authentication method."})
        if form.get("grant_type") != "authorization_code":
            return json_response(400, {"error": "unsupported_grant_type"})
        grant = self._grants.pop(str(form.get("code", "")), None)  # single use, even when refused
        if grant is None or grant.client_id != app.client_id or grant.redirect_uri != form.get("redirect_uri"):
            return invalid
        if grant.challenge is not None:
            verifier = str(form.get("code_verifier", ""))
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            if digest != grant.challenge:
                return invalid
        token = f"mastodon-token-{secrets.token_hex(8)}"
        self.tokens[token] = grant.account_id
        return json_response(200, {"access_token": token, "token_type": "Bearer", "scope": app.scopes,
                                   "created_at": int(time.time())})

    def _revoke(self, request: Recorded) -> Response:
        """POST /oauth/revoke (methods/oauth): the client's own credentials and the token; 200
        ``{}`` even for an unknown token (RFC 7009), 403 ``unauthorized_client`` for a wrong client."""
        form = self._params(request)
        app = self.apps.get(str(form.get("client_id", "")))
        if app is None or form.get("client_secret") != app.client_secret:
            return json_response(403, {"error": "unauthorized_client", "error_description":
                                       "You are not authorized to revoke this token"})
        self.tokens.pop(str(form.get("token", "")), None)
        self.revoked_tokens += 1
        return json_response(200, {})

    # -- statuses -------------------------------------------------------------------------

    def _create(self, request: Recorded, account_id: str) -> Response:
        params = self._params(request)
        key = request.headers.get("idempotency-key")
        now = time.time()
        if key:
            seen = self._keys.get((account_id, key))
            if seen is not None and now - seen[1] < self.idempotency_ttl_seconds:
                first = next(s for s in self.statuses if s.id == seen[0])
                return json_response(200, self._status(first))
        media_ids = parse_qs(request.body.decode(), keep_blank_values=True).get("media_ids[]", []) \
            if not request.headers.get("content-type", "").startswith("application/json") \
            else list(params.get("media_ids") or [])
        refused = self._check_attachments(media_ids, account_id)
        if refused is not None:
            return refused
        text = str(params.get("status") or "")
        if not text.strip():
            return _error(422, "Validation failed: Text can't be blank")
        if counted_length(text, self.reserved_per_url) > self.max_characters:
            return _error(422, f"Validation failed: Text character limit of {self.max_characters} exceeded")
        visibility = str(params.get("visibility") or "public")
        if visibility not in VISIBILITIES:
            return _error(422, f"Validation failed: Visibility is not included in the list ({visibility})")
        language = params.get("language") or None
        if language is not None and not re.fullmatch(r"[a-z]{2,3}", str(language)):
            return _error(422, "Validation failed: Language is not a valid language code")
        status = Status(str(self._next_id), account_id, text, visibility, language, datetime.now(UTC))
        self._next_id += 1
        self.statuses.append(status)
        for media_id in media_ids:
            self.media[media_id].status_id = status.id
        status.media_ids = list(media_ids)
        if key:
            self._keys[(account_id, key)] = (status.id, now)
        reset = datetime.fromtimestamp(now + 3 * 3600, tz=UTC)
        return json_response(200, self._status(status), self._rate_headers(299, reset))

    # -- media (POST /api/v2/media, GET /api/v1/media/:id) ----------------------------------

    def _upload(self, request: Recorded, account_id: str) -> Response:
        try:
            fields = multipart_fields(request)
        except ValueError as exc:
            return _error(422, f"Validation failed: {exc}")
        if "file" not in fields:
            return _error(422, "Validation failed: File can't be blank")
        data, mime = fields["file"]
        if mime not in MEDIA_TYPES:
            return _error(422, f"Validation failed: File content type is invalid ({mime})")
        if len(data) > MEDIA_IMAGE_SIZE_LIMIT:
            return _error(422, f"Validation failed: File file size must be less than {MEDIA_IMAGE_SIZE_LIMIT} bytes")
        description = fields.get("description", (b"", ""))[0].decode()
        if len(description) > 1500:
            return _error(422, "Validation failed: Description is too long (maximum is 1500 characters)")
        attachment = Attachment(str(self._next_media_id), account_id, data, mime, description,
                                processing_left=self.media_processing_polls)
        self._next_media_id += 1
        self.media[attachment.id] = attachment
        return json_response(202 if attachment.processing_left else 200, self._attachment(attachment))

    def _media_status(self, media_id: str, account_id: str) -> Response:
        attachment = self.media.get(media_id)
        if attachment is None or attachment.account_id != account_id:
            return _error(404, "Record not found")
        if attachment.processing_left:
            attachment.processing_left -= 1
            return json_response(206, self._attachment(attachment))
        return json_response(200, self._attachment(attachment))

    def _attachment(self, attachment: Attachment) -> dict[str, Any]:
        ready = attachment.processing_left == 0
        return {"id": attachment.id, "type": "image", "description": attachment.description or None,
                "url": f"https://{self.domain}/media/{attachment.id}" if ready else None,
                "preview_url": f"https://{self.domain}/media/{attachment.id}/small"}

    def _check_attachments(self, media_ids: list[str], account_id: str) -> Response | None:
        """What Mastodon's PostStatusService refuses: more than 4, another account's or an
        unknown id, one still processing, one already attached to a status."""
        if len(media_ids) > 4:
            return _error(422, "Validation failed: You cannot attach more than 4 files")
        for media_id in media_ids:
            attachment = self.media.get(media_id)
            if attachment is None or attachment.account_id != account_id or attachment.status_id is not None:
                return _error(422, f"Validation failed: media {media_id} not found or already attached")
            if attachment.processing_left:
                return _error(422, "Cannot attach files that have not finished processing. Try again in a moment!")
        return None

    def _account(self, account_id: str) -> dict[str, Any]:
        username = self.accounts[account_id]
        return {"id": account_id, "username": username, "acct": username, "display_name": username.title(),
                "url": f"https://{self.domain}/@{username}", "locked": False, "bot": False}

    def _status(self, status: Status) -> dict[str, Any]:
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in status.text.split("\n\n"))
        username = self.accounts[status.account_id]
        return {"id": status.id, "created_at": status.created_at.strftime("%Y-%m-%dT%H:%M:%S.") +
                f"{status.created_at.microsecond // 1000:03d}Z",
                "in_reply_to_id": None, "sensitive": False, "spoiler_text": "", "visibility": status.visibility,
                "language": status.language, "uri": f"https://{self.domain}/users/{username}/statuses/{status.id}",
                "url": f"https://{self.domain}/@{username}/{status.id}", "replies_count": 0, "reblogs_count": 0,
                "favourites_count": 0, **{f"{k}_count": v for k, v in status.counts.items()},
                "content": paragraphs.replace("\n", "<br>"), "account": self._account(status.account_id),
                "media_attachments": [], "mentions": [], "tags": [], "emojis": []}
