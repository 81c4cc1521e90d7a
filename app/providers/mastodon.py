"""Publishing to Mastodon, on whichever instance each account lives on.

Connecting: the app registers itself on the instance the user names (``POST /api/v1/apps``,
remembered per instance: :class:`app.models.OAuthClient`), then the OAuth authorization code
flow, with PKCE where the instance's authorization server metadata offers S256; the account
comes from ``verify_credentials``. Mastodon's tokens do not expire and have no refresh token:
a refused token means the user must connect again.

**Exactly once by the Idempotency-Key.** ``POST /api/v1/statuses`` carries a key derived from
the post (:func:`idempotency_key`): a repeated create with it returns the first status instead
of a second one. The instance keeps keys about an hour (docs: methods/statuses), so a re-send
later than that reconciles first, as for X (:data:`app.platforms.Platform.repeat_create_safe_for`).

Each instance sets its own limits (``GET /api/v2/instance``: ``max_characters``,
``characters_reserved_per_url``); a post is counted as Mastodon counts it
(:func:`app.richtext.mastodon_length`) against the account's instance before it is sent.

httpx rather than Mastodon.py: the workflow needs to know whether a failed create could have
reached the instance (connect errors vs read timeouts), which Mastodon.py folds into one
network error class, and the posting pool's per-thread clients. Shapes: docs.joinmastodon.org
(mastodon/documentation), recorded in ``tests/fixtures/wire/mastodon``.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import urlencode, urlparse

import httpx

from app.config import Settings
from app.errors import InvalidValue
from app.platforms import get_platform
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
    RateLimited,
    TemporaryError,
)
from app.richtext import DEFAULT_RESERVED_PER_URL, mastodon_length

#: The scopes asked for: read and write statuses, upload their images, and who the account is.
SCOPES = "read:statuses write:statuses write:media profile"
#: Where the instance shows the code when there is no redirect (a terminal's connect).
OUT_OF_BAND = "urn:ietf:wg:oauth:2.0:oob"
#: How long to wait for an uploaded image to be processed, and between two looks (seconds).
DEFAULT_MEDIA_PROCESSING_SECONDS = 60.0
DEFAULT_MEDIA_POLL_SECONDS = 1.0
#: An instance removes an attachment no status uses after a day (its media cleanup).
UNATTACHED_MEDIA_LIFETIME = timedelta(days=1)
#: Statuses of the account read when reconciling (Mastodon allows 40 per page).
DEFAULT_TIMELINE_PAGE = 40
#: The most ids ``GET /api/v1/statuses`` takes at once.
DEFAULT_LOOKUP_BATCH = 20

_TAG_RE = re.compile(r"<[^>]+>")
_URL_RE = re.compile(r"https?://\S+", re.IGNORECASE)


def instance_url(domain: str) -> str:
    """``example.social`` (or a URL) -> ``https://example.social``; InvalidValue (a ValueError)
    if it is not a plain host name."""
    text = domain.strip().rstrip("/")
    parsed = urlparse(text if "://" in text else f"https://{text}")
    if parsed.scheme not in ("https", "http") or not parsed.hostname or parsed.path not in ("", "/"):
        raise InvalidValue(f"{domain!r} is not an instance's domain, e.g. mastodon.social")
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.hostname}{port}"


def idempotency_key(ref: PostRef) -> str:
    """The post's Idempotency-Key: the same post always sends the same key."""
    seed = f"content-autopilot post {ref.post_id} at {ref.scheduled_at.astimezone(UTC).isoformat()}"
    return hashlib.sha256(seed.encode()).hexdigest()[:40]


def plain_text(content: str) -> str:
    """A status's HTML ``content`` reduced to comparable text (URLs dropped: the instance
    shortens how they show)."""
    text = content.replace("<br>", "\n").replace("<br />", "\n").replace("</p><p>", "\n\n")
    text = unicodedata.normalize("NFC", html.unescape(_TAG_RE.sub("", text)))
    return " ".join(_URL_RE.sub(" ", text).split()).casefold()


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        return "; ".join(str(body[k]) for k in ("error", "error_description") if body.get(k)) or str(body)[:300]
    return str(body)[:300]


def rate_limit_reset(response: httpx.Response) -> datetime | None:
    """``X-RateLimit-Reset``: an ISO 8601 timestamp on Mastodon."""
    return _parse_time(response.headers.get("x-ratelimit-reset"))


@dataclass(frozen=True)
class App:
    """Our app as registered on one instance."""

    client_id: str
    client_secret: str
    pkce: bool


@dataclass(frozen=True)
class Limits:
    """An instance's status limits."""

    max_characters: int
    reserved_per_url: int


class MastodonPublisher(http.PlatformClient):
    """The real Mastodon publisher: the REST API of each account's instance."""

    name = "mastodon"
    platform = "mastodon"
    offline = False
    #: What the connect flow (:mod:`app.connect.open_networks`) needs beside the methods.
    app_type = App
    scopes = SCOPES
    instance_url = staticmethod(instance_url)

    def __init__(self, *, client_name: str = "Content Autopilot", timeout: httpx.Timeout | None = None,
                 transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep
        self.client_name = client_name
        self._limits: dict[str, Limits] = {}
        self._limits_lock = threading.Lock()
        super().__init__(timeout=timeout, transport=transport, clock=clock)

    # -- connecting -------------------------------------------------------------------------

    def register_app(self, instance: str, redirect_uri: str) -> App:
        """Register on ``instance`` (``POST /api/v1/apps``) and learn whether it takes PKCE."""
        response = self._send("POST", f"{instance}/api/v1/apps", data={
            "client_name": self.client_name, "redirect_uris": redirect_uri, "scopes": SCOPES})
        body = self._body(response, "apps")
        try:
            client_id, client_secret = str(body["client_id"]), str(body["client_secret"])
        except KeyError:
            raise TemporaryError(f"{instance} registered the app without client credentials") from None
        return App(client_id, client_secret, self._offers_pkce(instance))

    def _offers_pkce(self, instance: str) -> bool:
        try:
            response = self._send("GET", f"{instance}/.well-known/oauth-authorization-server")
        except TemporaryError:
            return False
        if response.status_code != 200:
            return False  # older than 4.3: no metadata, no PKCE
        try:
            return "S256" in (response.json().get("code_challenge_methods_supported") or [])
        except (ValueError, AttributeError):
            return False

    @staticmethod
    def authorize_url(instance: str, app: App, redirect_uri: str, state: str, code_challenge: str | None) -> str:
        """Where to send the user to consent."""
        params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": redirect_uri,
                  "scope": SCOPES, "state": state}
        if app.pkce and code_challenge:
            params.update(code_challenge=code_challenge, code_challenge_method="S256")
        return f"{instance}/oauth/authorize?{urlencode(params)}"

    def exchange_code(self, instance: str, app: App, redirect_uri: str, code: str,
                      code_verifier: str | None) -> TokenSet:
        """The access token for an authorization code (single use); AuthError if refused."""
        form = {"grant_type": "authorization_code", "code": code, "client_id": app.client_id,
                "client_secret": app.client_secret, "redirect_uri": redirect_uri, "scope": SCOPES}
        if app.pkce and code_verifier:
            form["code_verifier"] = code_verifier
        response = self._send("POST", f"{instance}/oauth/token", data=form)
        if response.status_code in (400, 401):
            raise AuthError(f"{instance} refused the authorization code: {_detail(response)}")
        body = self._body(response, "oauth/token")
        if not body.get("access_token"):
            raise TemporaryError(f"{instance} answered the token request without a token")
        return TokenSet(access_token=str(body["access_token"]))

    def verify_credentials(self, instance: str, access_token: str) -> dict[str, Any]:
        """The account the token acts for (``id``, ``username``, ``acct``, ``url``)."""
        response = self._send("GET", f"{instance}/api/v1/accounts/verify_credentials",
                              headers={"Authorization": f"Bearer {access_token}"})
        return self._body(response, "verify_credentials")

    def revoke_token(self, instance: str, app: App, access_token: str) -> None:
        """``POST /oauth/revoke`` (docs.joinmastodon.org, methods/oauth): the token stops
        working; AuthError if the instance refuses our client, ProviderError otherwise."""
        response = self._send("POST", f"{instance}/oauth/revoke", data={
            "client_id": app.client_id, "client_secret": app.client_secret, "token": access_token})
        if response.status_code in (401, 403):
            raise AuthError(f"{instance} refused to revoke the token: {_detail(response)}")
        self._body(response, "oauth/revoke")

    def instance_limits(self, instance: str) -> Limits:
        """The instance's own limits, read once per process (``GET /api/v2/instance``); the
        registry's defaults if the instance does not say."""
        with self._limits_lock:
            known = self._limits.get(instance)
        if known is not None:
            return known
        default = Limits(get_platform(self.platform).max_length, DEFAULT_RESERVED_PER_URL)
        try:
            body = self._body(self._send("GET", f"{instance}/api/v2/instance"), "instance")
            statuses = ((body.get("configuration") or {}).get("statuses") or {})
            limits = Limits(int(statuses.get("max_characters") or default.max_characters),
                            int(statuses.get("characters_reserved_per_url") or default.reserved_per_url))
        except (TemporaryError, PermanentError, ValueError, TypeError, AttributeError):
            return default  # not remembered: asked again next time
        with self._limits_lock:
            self._limits[instance] = limits
        return limits

    # -- Publisher protocol -----------------------------------------------------------------

    def upload_media(self, account: AccountCredentials, media: MediaFile) -> UploadedMedia:
        """``POST /api/v2/media`` with the alt text as ``description``. 200: ready; 202: still
        processing, so ``GET /api/v1/media/:id`` is polled until it answers 200 (206 while
        processing), within :data:`DEFAULT_MEDIA_PROCESSING_SECONDS`. An attachment no status
        uses is removed by the instance after a day. Creates no status."""
        instance = self._instance(account)
        response = self._send("POST", f"{instance}/api/v2/media", account=account,
                              data={"description": media.alt_text},
                              files={"file": ("image", media.data, media.content_type)})
        if response.status_code not in (200, 202):
            self._raise_for(response, creates=False)
        attachment = http.json_object("Mastodon", response, "media")
        media_id = str(attachment.get("id") or "")
        if not media_id:
            raise TemporaryError("Mastodon answered the upload without an attachment id")
        waited = 0.0
        while response.status_code != 200:
            if waited >= DEFAULT_MEDIA_PROCESSING_SECONDS:
                raise TemporaryError(f"{instance} still processing attachment {media_id} after {waited:.0f} s")
            self._sleep(DEFAULT_MEDIA_POLL_SECONDS)
            waited += DEFAULT_MEDIA_POLL_SECONDS
            response = self._send("GET", f"{instance}/api/v1/media/{media_id}", account=account)
            if response.status_code not in (200, 206):
                self._raise_for(response, creates=False)
        return UploadedMedia(media_id, media.alt_text, self._clock() + UNATTACHED_MEDIA_LIFETIME)

    def publish(self, account: AccountCredentials, text: str, ref: PostRef | None = None,
                media: Sequence[UploadedMedia] = ()) -> PublishResult:
        """Post a status with the post's Idempotency-Key (a repeat returns the first status),
        and its attachments' ids in ``media_ids[]`` when it has images."""
        if ref is None:
            raise PermanentError("a Mastodon status needs its PostRef: the Idempotency-Key is derived from it")
        instance = self._instance(account)
        limits = self.instance_limits(instance)
        length = mastodon_length(text, limits.reserved_per_url)
        if not text.strip() or length > limits.max_characters:
            raise PermanentError(f"{instance} would refuse the status: {length} characters, "
                                 f"it allows {limits.max_characters}")
        response = self._send("POST", f"{instance}/api/v1/statuses", account=account, creates=True,
                              headers={"Idempotency-Key": idempotency_key(ref)},
                              data={"status": text, "visibility": ref.visibility, "language": ref.language,
                                    **({"media_ids[]": [item.media_id for item in media]} if media else {})})
        if response.status_code != 200:
            self._raise_for(response, creates=True)
        try:
            status = response.json()
            return _result(status)
        except (ValueError, KeyError, TypeError):
            raise OutcomeUnknown("Mastodon answered 200 with an unreadable body; the status may exist") from None

    def find_published(self, account: AccountCredentials, text: str, since: datetime,
                       ref: PostRef | None = None) -> PublishResult | None:
        """The account's status created since ``since`` with this text, from its latest page."""
        if not account.external_id:
            raise LookupUnsupported("the account's id is unknown: connect it again")
        response = self._send("GET", f"{self._instance(account)}/api/v1/accounts/{account.external_id}/statuses",
                              account=account, params={"limit": DEFAULT_TIMELINE_PAGE, "exclude_replies": "true"})
        if response.status_code != 200:
            self._raise_for(response, creates=False)
        wanted = plain_text(html.escape(text))
        for status in response.json() or []:
            created = _parse_time(status.get("created_at")) if isinstance(status, dict) else None
            if created is not None and created >= since and plain_text(str(status.get("content", ""))) == wanted:
                return _result(status)
        return None

    def refresh(self, account: AccountCredentials) -> TokenSet:
        """Mastodon tokens have no refresh: a refused one means connecting again."""
        raise AuthError("Mastodon access tokens cannot be refreshed: the user must connect the account again")

    def fetch_metrics(self, account: AccountCredentials, external_ids: list[str]) -> dict[str, PostMetrics]:
        """Favourites, reblogs and replies of each status (``GET /api/v1/statuses?id[]=``, 20
        at a time); a deleted one (404, or absent) is left out. Mastodon shows no impressions."""
        instance = self._instance(account)
        metrics: dict[str, PostMetrics] = {}
        ids = list(dict.fromkeys(external_ids))
        for start in range(0, len(ids), DEFAULT_LOOKUP_BATCH):
            batch = ids[start:start + DEFAULT_LOOKUP_BATCH]
            response = self._send("GET", f"{instance}/api/v1/statuses", account=account,
                                  params=[("id[]", i) for i in batch])
            if response.status_code == 404:  # before 4.3: one at a time
                statuses = []
                for status_id in batch:
                    one = self._send("GET", f"{instance}/api/v1/statuses/{status_id}", account=account)
                    if one.status_code == 404:
                        continue
                    statuses.append(self._body(one, "status"))
            else:
                if response.status_code != 200:
                    self._raise_for(response, creates=False)
                statuses = response.json() or []
            for status in statuses:
                if isinstance(status, dict) and "id" in status:
                    metrics[str(status["id"])] = PostMetrics(
                        impressions=0, likes=int(status.get("favourites_count") or 0),
                        shares=int(status.get("reblogs_count") or 0), comments=int(status.get("replies_count") or 0))
        return metrics

    def check_account(self, account: AccountCredentials) -> str:
        """The @acct the token acts for (``autopilot doctor`` shows it)."""
        return "@" + str(self.verify_credentials(self._instance(account), account.access_token).get("acct", "?"))

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _instance(account: AccountCredentials) -> str:
        if not account.service_url:
            raise AuthError("Mastodon account has no instance recorded: connect it again")
        return account.service_url.rstrip("/")

    def _body(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code != 200:
            self._raise_for(response, creates=False)
        return http.json_object("Mastodon", response, what)

    def _send(self, method: str, url: str, *, account: AccountCredentials | None = None, creates: bool = False,
              **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if account is not None:
            headers.update(http.bearer("Mastodon", account, self._clock()))
        return http.send(self._http, "Mastodon", method, url, creates=creates, thing="status",
                         headers=headers, **kwargs)

    @staticmethod
    def _raise_for(response: httpx.Response, *, creates: bool) -> NoReturn:
        """401: token refused (re-authorise); 403 and 422: refused for good (a scope, a
        suspension, validation); 404: gone; 429: wait for ``X-RateLimit-Reset``."""
        if response.status_code == 429:
            raise RateLimited(f"Mastodon rate limit: {_detail(response)}", reset_at=rate_limit_reset(response))
        http.raise_for_status("Mastodon", response, _detail(response), creates=creates, reset_at=None,
                              thing="status")


def _result(status: dict[str, Any]) -> PublishResult:
    return PublishResult(external_id=str(status["id"]), url=status.get("url") or status.get("uri"),
                         published_at=_parse_time(status.get("created_at")))


def from_settings(settings: Settings, timeout: httpx.Timeout) -> MastodonPublisher | None:
    """The Mastodon publisher this configuration selects (app.platforms names this factory);
    None unless ``MASTODON_ENABLED``."""
    if not settings.mastodon_enabled:
        return None
    return MastodonPublisher(client_name=settings.mastodon_client_name, timeout=timeout)
