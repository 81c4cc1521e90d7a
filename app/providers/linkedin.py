"""Publishing to LinkedIn through the versioned Posts API (``/rest/posts``).

Three LinkedIn habits shape this module:

* Every ``/rest`` call needs ``LinkedIn-Version: YYYYMM`` and ``X-Restli-Protocol-Version:
  2.0.0``. Versions are sunset about a year after release and then answer 426, which no retry
  fixes: the operator must raise ``LINKEDIN_VERSION``.
* ``commentary`` is in the "little" text format. An unescaped reserved character does not fail
  the call: LinkedIn silently cuts the post at that character. :func:`to_little_text` therefore
  writes every hashtag as a hashtag template (``{hashtag|\\#|AI}``, shown as a hashtag) and
  escapes everything else.
* Rate limits are daily and reset at midnight UTC; a 429 for a day limit carries no
  ``Retry-After``, so :func:`next_midnight_utc` says when to try again.
* Access tokens live 60 days and refresh tokens a year (for apps allowed to refresh at all), so
  users must re-authorise periodically; the daily accounts step warns a week ahead.

Failures map onto :mod:`app.providers.errors` exactly as for X (see :mod:`app.providers.x`).
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from app.config import Settings
from app.errors import InvalidValue
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
    OperatorProblem,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TemporaryError,
)
from app.text_limits import limit_error

#: Recent posts (one page of ``GET /rest/posts?q=author``) searched when reconciling.
DEFAULT_FIND_COUNT = 10
#: How long to wait for an uploaded image to become AVAILABLE, and between two looks (seconds).
DEFAULT_IMAGE_PROCESSING_SECONDS = 60.0
DEFAULT_IMAGE_POLL_SECONDS = 1.0
#: The analytics metrics fetched per post, one call each as memberCreatorPostAnalytics requires.
METRIC_QUERY_TYPES = ("IMPRESSION", "REACTION", "COMMENT", "RESHARE")

#: Reserved characters of the little text format. The backslash comes first so that the
#: escapes added for the others are not themselves escaped again.
LITTLE_RESERVED = "\\|{}@[]()<>#*_~"
_LITTLE_RE = re.compile("[" + re.escape(LITTLE_RESERVED) + "]")
_UNESCAPE_RE = re.compile(r"\\([" + re.escape(LITTLE_RESERVED) + "])")
#: A hashtag as people write it: ``#`` not glued to a word, then letters, digits or ``_``
#: including at least one letter (``#1`` is a number, not a tag).
_HASHTAG_RE = re.compile(r"(?<![\w#&])#(?=\w*[^\W\d_])(\w+)")
#: A hashtag template of the little format, as LinkedIn stores and returns it.
_TEMPLATE_RE = re.compile(r"\{hashtag\|\\#\|((?:[^\\{}|]|\\.)+)\}")
#: A LinkedIn-Version header: YYYYMM, optionally with a revision (YYYYMM.RR).
VERSION_RE = re.compile(r"(?P<year>20\d\d)(?P<month>0[1-9]|1[0-2])(?:\.(?P<revision>\d\d))?")

#: LinkedIn's wording of an application or member day throttle ("... APPLICATION DAY limit ...").
_DAY_LIMIT_RE = re.compile(r"\b(?:APPLICATION|MEMBER)?\s*DAY limit\b", re.IGNORECASE)


def escape_little_text(text: str) -> str:
    """``text`` with every little-format reserved character backslash-escaped.

    Posts are plain text to us: a ``#`` or ``@`` must not become a hashtag template or a
    mention, and an unescaped ``(`` would truncate the post on LinkedIn's side.
    """
    return _LITTLE_RE.sub(lambda m: "\\" + m.group(0), text)


def to_little_text(text: str) -> str:
    """``text`` as LinkedIn commentary: hashtags as hashtag templates, the rest escaped.

    Generated posts end with hashtags on purpose; escaped, ``#AI`` would show as plain text.
    """
    parts: list[str] = []
    position = 0
    for match in _HASHTAG_RE.finditer(text):
        parts.append(escape_little_text(text[position:match.start()]))
        parts.append("{hashtag|\\#|" + escape_little_text(match.group(1)) + "}")
        position = match.end()
    parts.append(escape_little_text(text[position:]))
    return "".join(parts)


def unescape_little_text(text: str) -> str:
    """Plain text from commentary (:func:`to_little_text` or :func:`escape_little_text`),
    for comparing a stored post with a draft: hashtag templates become ``#tag``."""
    parts: list[str] = []
    position = 0
    for match in _TEMPLATE_RE.finditer(text):
        parts.append(_UNESCAPE_RE.sub(lambda m: m.group(1), text[position:match.start()]))
        parts.append("#" + _UNESCAPE_RE.sub(lambda m: m.group(1), match.group(1)))
        position = match.end()
    parts.append(_UNESCAPE_RE.sub(lambda m: m.group(1), text[position:]))
    return "".join(parts)


def check_version(version: str) -> str:
    """``version`` if it is a LinkedIn-Version (``YYYYMM`` or ``YYYYMM.RR``), else ValueError."""
    if not VERSION_RE.fullmatch(version):
        raise InvalidValue(f"expected YYYYMM or YYYYMM.RR (e.g. 202610 or 202610.01), got {version!r}")
    return version


def version_age_months(version: str, now: datetime) -> int:
    """Whole months between a version's release month and ``now``'s month (UTC).

    LinkedIn sunsets a version about a year after its release; ``autopilot doctor`` warns
    before that.
    """
    match = VERSION_RE.fullmatch(check_version(version))
    assert match is not None
    utc = now.astimezone(UTC)
    return (utc.year * 12 + utc.month) - (int(match["year"]) * 12 + int(match["month"]))


#: LINKEDIN_VERSION older than this many months is warned about: LinkedIn sunsets a version
#: about a year after its release, and then every call answers 426.
DEFAULT_VERSION_WARN_MONTHS = 10


def doctor_checks(settings: Settings, now: datetime) -> list[tuple[str, str, str]]:
    """``autopilot doctor``'s LinkedIn check (named by the registry entry): is
    LINKEDIN_VERSION near its sunset? (check, status, detail) triples."""
    version = settings.linkedin_version
    age = version_age_months(version, now)
    if age > DEFAULT_VERSION_WARN_MONTHS:
        return [("linkedin version", "warning",
                 f"LINKEDIN_VERSION {version} is {age} months old; LinkedIn sunsets versions about "
                 "a year after release (then every call answers 426): set a recent YYYYMM")]
    return [("linkedin version", "ok", f"LINKEDIN_VERSION {version} ({age} months old)")]


def next_midnight_utc(now: datetime) -> datetime:
    """The next 00:00 UTC after ``now``: when LinkedIn's daily limits reset."""
    utc = now.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC) + timedelta(days=1)


def retry_after(response: httpx.Response, now: datetime) -> datetime | None:
    """``Retry-After`` (seconds or an HTTP date) as an aware UTC datetime, or None if absent."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return now + timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:300]
    parts = [str(body[k]) for k in ("code", "message", "error", "error_description") if body.get(k)]
    return "; ".join(parts) or response.text[:300]


def _analytics_entity(urn: str) -> str:
    """The Rest.li ``entity`` value for a post URN, with the URN itself percent-encoded."""
    kind = "ugc" if urn.startswith("urn:li:ugcPost:") else "share"
    return f"({kind}:{quote(urn, safe='')})"


class LinkedInPublisher(http.PlatformClient):
    """The real LinkedIn publisher for member (``urn:li:person``) or page (``urn:li:organization``) authors."""

    name = "linkedin"
    platform = "linkedin"
    offline = False

    def __init__(
        self,
        api_base_url: str,
        oauth_base_url: str,
        version: str,
        client_id: str | None,
        client_secret: str | None,
        *,
        timeout: httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sleep = sleep
        if not VERSION_RE.fullmatch(version):
            raise InvalidValue(f"LINKEDIN_VERSION must be YYYYMM or YYYYMM.RR, got {version!r}")
        self.api_base_url = api_base_url.rstrip("/")
        self.oauth_base_url = oauth_base_url.rstrip("/")
        self.version = version
        self.client_id = client_id
        self.client_secret = client_secret
        super().__init__(timeout=timeout, transport=transport, clock=clock)

    # -- Publisher protocol -------------------------------------------------------------

    def publish(self, account: AccountCredentials, text: str, ref: PostRef | None = None,
                media: Sequence[UploadedMedia] = ()) -> PublishResult:
        """Create a public feed post (with its image's URN in ``content.media`` when it has
        one); the new post's URN comes back in ``x-restli-id``."""
        too_long = limit_error(self.platform, text)
        if too_long:
            raise PermanentError(f"LinkedIn refuses the post: {too_long}")
        body = {
            "author": self._author(account),
            "commentary": to_little_text(text),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if len(media) == 1:
            body["content"] = {"media": {"id": media[0].media_id, "altText": media[0].alt_text}}
        elif media:
            body["content"] = {"multiImage": {"images": [
                {"id": item.media_id, "altText": item.alt_text} for item in media]}}
        response = self._send(
            "POST", f"{self.api_base_url}/rest/posts", account=account, creates=True, json=body
        )
        if response.status_code not in (200, 201):
            self._raise_for(response, creates=True)
        urn = response.headers.get("x-restli-id", "").strip()
        if not urn:
            raise OutcomeUnknown(
                f"LinkedIn answered {response.status_code} without x-restli-id; the post may exist"
            )
        return PublishResult(external_id=urn, url=f"https://www.linkedin.com/feed/update/{urn}")

    def upload_media(self, account: AccountCredentials, media: MediaFile) -> UploadedMedia:
        """The Images API: ``initializeUpload`` for the author, PUT the bytes to the upload URL,
        then wait until LinkedIn says the image is ``AVAILABLE``. Creates no post, so every
        failure is a plain provider error. An uploaded image's URN does not expire.
        """
        body = {"initializeUploadRequest": {"owner": self._author(account)}}
        response = self._send("POST", f"{self.api_base_url}/rest/images?action=initializeUpload",
                              account=account, json=body)
        value = self._json(response, "images initializeUpload").get("value") or {}
        upload_url, urn = value.get("uploadUrl"), value.get("image")
        if not (isinstance(upload_url, str) and isinstance(urn, str) and urn.startswith("urn:li:image:")):
            raise TemporaryError("LinkedIn initializeUpload returned no uploadUrl or image URN")
        put = self._send("PUT", upload_url, account=account, content=media.data,
                         headers={"Content-Type": "application/octet-stream"})
        if put.status_code not in (200, 201):
            self._raise_for(put, creates=False)
        self._wait_available(account, urn)
        return UploadedMedia(urn, media.alt_text, None)

    def _wait_available(self, account: AccountCredentials, urn: str) -> None:
        """Poll ``GET /rest/images/{urn}`` until ``AVAILABLE`` (a post naming an image still
        processing is refused), within :data:`DEFAULT_IMAGE_PROCESSING_SECONDS`."""
        waited = 0.0
        while True:
            response = self._send("GET", f"{self.api_base_url}/rest/images/{quote(urn, safe='')}",
                                  account=account)
            status = self._json(response, "image").get("status")
            if status == "AVAILABLE":
                return
            if status == "PROCESSING_FAILED":
                raise PermanentError(f"LinkedIn could not process image {urn}")
            if waited >= DEFAULT_IMAGE_PROCESSING_SECONDS:
                raise TemporaryError(f"LinkedIn image {urn} still {status} after {waited:.0f} s")
            self._sleep(DEFAULT_IMAGE_POLL_SECONDS)
            waited += DEFAULT_IMAGE_POLL_SECONDS

    def find_published(
        self, account: AccountCredentials, text: str, since: datetime, ref: PostRef | None = None
    ) -> PublishResult | None:
        """The author's post created since ``since`` with this text, from their latest posts.

        Reading posts needs ``r_member_social`` (restricted) or ``r_organization_social``; when
        LinkedIn answers 403 the app has no way to look, so LookupUnsupported sends the post
        to manual review as the Publisher protocol specifies.
        """
        author = self._author(account)
        url = (
            f"{self.api_base_url}/rest/posts?q=author&author={quote(author, safe='')}"
            f"&count={DEFAULT_FIND_COUNT}&sortBy=LAST_MODIFIED"
        )
        response = self._send("GET", url, account=account, headers={"X-RestLi-Method": "FINDER"})
        if response.status_code == 403:
            raise LookupUnsupported(
                f"LinkedIn does not let this app read {author}'s posts: {_detail(response)}"
            )
        body = self._json(response, "posts")
        wanted = _normalise(text)
        since_ms = since.timestamp() * 1000
        for post in body.get("elements") or []:
            created = post.get("publishedAt") or post.get("createdAt") or 0
            if created < since_ms:
                continue
            if _normalise(unescape_little_text(str(post.get("commentary", "")))) == wanted:
                urn = str(post["id"])
                return PublishResult(urn, f"https://www.linkedin.com/feed/update/{urn}",
                                     published_at=_from_epoch_ms(created))
        return None

    def refresh(self, account: AccountCredentials) -> TokenSet:
        """Exchange the refresh token for a new 60-day access token.

        LinkedIn returns the same refresh token with its remaining lifetime (it does not
        rotate); a missing or empty one yields ``refresh_token=None``: keep the stored one.
        """
        if not account.refresh_token:
            raise AuthError("LinkedIn account has no refresh token: it must be re-authorised")
        if not (self.client_id and self.client_secret):
            raise AuthError("LINKEDIN_CLIENT_ID/LINKEDIN_CLIENT_SECRET are not configured")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": account.refresh_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        response = self._send("POST", f"{self.oauth_base_url}/oauth/v2/accessToken", data=form)
        if response.status_code in (400, 401):
            raise AuthError(f"LinkedIn refused the refresh token: {_detail(response)}")
        body = self._json(response, "token")
        if not body.get("access_token"):
            raise TemporaryError("LinkedIn token endpoint returned no access_token")
        now = self._clock()
        expires_in = body.get("expires_in")
        refresh_in = body.get("refresh_token_expires_in")
        return TokenSet(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token") or None,
            expires_at=now + timedelta(seconds=int(expires_in)) if expires_in else None,
            refresh_expires_at=now + timedelta(seconds=int(refresh_in)) if refresh_in else None,
        )

    def fetch_metrics(
        self, account: AccountCredentials, external_ids: list[str]
    ) -> dict[str, PostMetrics]:
        """Lifetime totals per post from memberCreatorPostAnalytics (``r_member_postAnalytics``).

        The API takes one post and one metric per call, hence four calls per post. A post
        LinkedIn no longer knows (404, deleted) is left out of the result.
        """
        metrics: dict[str, PostMetrics] = {}
        for urn in dict.fromkeys(external_ids):
            counts: dict[str, int] = {}
            for query_type in METRIC_QUERY_TYPES:
                count = self._metric(account, urn, query_type)
                if count is None:
                    break
                counts[query_type] = count
            else:
                metrics[urn] = PostMetrics(
                    impressions=counts["IMPRESSION"],
                    likes=counts["REACTION"],
                    shares=counts["RESHARE"],
                    comments=counts["COMMENT"],
                )
        return metrics

    # -- extras -------------------------------------------------------------------------

    def author_urn(self, access_token: str) -> str:
        """The member URN a token belongs to, from OpenID ``userinfo`` (``sub``)."""
        return f"urn:li:person:{self._userinfo(access_token)['sub']}"

    def check_account(self, account: AccountCredentials) -> str:
        """Who the token acts for, e.g. ``Ada Lovelace (urn:li:person:abc)``, for the doctor."""
        info = self._userinfo(account.access_token, account)
        urn = f"urn:li:person:{info['sub']}"
        return f"{info['name']} ({urn})" if info.get("name") else urn


    # -- plumbing -----------------------------------------------------------------------

    def _author(self, account: AccountCredentials) -> str:
        author = account.external_id
        if not author:
            return self.author_urn(account.access_token)
        return author if author.startswith("urn:li:") else f"urn:li:person:{author}"

    def _userinfo(
        self, access_token: str, account: AccountCredentials | None = None
    ) -> dict[str, Any]:
        response = self._send(
            "GET",
            f"{self.api_base_url}/v2/userinfo",
            account=account,
            headers={"Authorization": f"Bearer {access_token}"},
        )
        body = self._json(response, "userinfo")
        if not body.get("sub"):
            raise TemporaryError("LinkedIn userinfo returned no 'sub'")
        return body

    def _metric(self, account: AccountCredentials, urn: str, query_type: str) -> int | None:
        # Built by hand: Rest.li wants the parentheses literal and the URN inside percent-encoded,
        # which a params dict would encode the other way round.
        url = (
            f"{self.api_base_url}/rest/memberCreatorPostAnalytics?q=entity"
            f"&entity={_analytics_entity(urn)}&queryType={query_type}&aggregation=TOTAL"
        )
        response = self._send("GET", url, account=account)
        if response.status_code == 404:
            return None
        body = self._json(response, "memberCreatorPostAnalytics")
        return sum(
            int(e.get("count", 0)) for e in body.get("elements") or [] if isinstance(e, dict)
        )

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code != 200:
            self._raise_for(response, creates=False)
        return http.json_object("LinkedIn", response, what)

    def _send(
        self,
        method: str,
        url: str,
        *,
        account: AccountCredentials | None = None,
        creates: bool = False,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request with LinkedIn's headers; transport failures become error classes."""
        all_headers = http.bearer("LinkedIn", account, self._clock()) if account is not None else {}
        if url.startswith(f"{self.api_base_url}/rest/"):
            all_headers["LinkedIn-Version"] = self.version
            all_headers["X-Restli-Protocol-Version"] = "2.0.0"
        all_headers.update(headers or {})
        return http.send(self._http, "LinkedIn", method, url, creates=creates, headers=all_headers, **kwargs)

    def _raise_for(self, response: httpx.Response, *, creates: bool) -> NoReturn:
        status = response.status_code
        detail = _detail(response)
        if status == 426:
            # No retry helps until the operator raises LINKEDIN_VERSION and restarts.
            raise OperatorProblem(
                f"LinkedIn API version {self.version} is no longer served; "
                f"set LINKEDIN_VERSION to a current YYYYMM: {detail}",
                provider="linkedin", kind="linkedin_version_sunset", pause=None,
            )
        if status == 429:
            now = self._clock()
            reset_at = retry_after(response, now)
            if reset_at is not None:
                raise RateLimited(f"LinkedIn rate limit: {detail}", reset_at=reset_at, limit="window")
            if _DAY_LIMIT_RE.search(detail):
                raise RateLimited(f"LinkedIn daily limit (resets at midnight UTC): {detail}",
                                  reset_at=next_midnight_utc(now), limit="day")
        http.raise_for_status("LinkedIn", response, detail, creates=creates, reset_at=None)


def from_settings(settings: Settings, timeout: httpx.Timeout) -> LinkedInPublisher | None:
    """The LinkedIn publisher this configuration selects (app.platforms names this factory);
    None without ``LINKEDIN_CLIENT_ID``."""
    if not settings.linkedin_client_id:
        return None
    return LinkedInPublisher(settings.linkedin_api_base_url, settings.linkedin_oauth_base_url,
                             settings.linkedin_version, settings.linkedin_client_id,
                             settings.linkedin_client_secret, timeout=timeout)


def _from_epoch_ms(value: object) -> datetime | None:
    """LinkedIn's ``publishedAt`` / ``createdAt`` (epoch milliseconds) as aware UTC; None if absent."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)
