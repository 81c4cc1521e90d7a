"""Publishing to LinkedIn through the versioned Posts API (``/rest/posts``).

Three LinkedIn habits shape this module:

* Every ``/rest`` call needs ``LinkedIn-Version: YYYYMM`` and ``X-Restli-Protocol-Version:
  2.0.0``. Versions are sunset about a year after release and then answer 426, which no retry
  fixes: the operator must raise ``LINKEDIN_VERSION``.
* ``commentary`` is in the "little" text format. An unescaped reserved character does not fail
  the call: LinkedIn silently cuts the post at that character. :func:`escape_little_text` is
  therefore applied to every post.
* Access tokens live 60 days and refresh tokens a year (for apps allowed to refresh at all), so
  users must re-authorise periodically; :func:`reauth_due` warns a week ahead.

Failures map onto :mod:`app.providers.errors` exactly as for X (see :mod:`app.providers.x`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from app.providers import http
from app.providers.base import AccountCredentials, PostMetrics, PublishResult, TokenSet
from app.providers.errors import (
    AuthError,
    OutcomeUnknown,
    PermanentError,
    TemporaryError,
)

#: The longest commentary LinkedIn accepts, in characters, counted before escaping.
DEFAULT_MAX_COMMENTARY = 3000
#: How long before access-token expiry (a timedelta) the user is asked to re-authorise.
DEFAULT_REAUTH_NOTICE = timedelta(days=7)
#: Recent posts (one page of ``GET /rest/posts?q=author``) searched when reconciling.
DEFAULT_FIND_COUNT = 10
#: The analytics metrics fetched per post, one call each as memberCreatorPostAnalytics requires.
METRIC_QUERY_TYPES = ("IMPRESSION", "REACTION", "COMMENT", "RESHARE")

#: Reserved characters of the little text format. The backslash comes first so that the
#: escapes added for the others are not themselves escaped again.
LITTLE_RESERVED = "\\|{}@[]()<>#*_~"
_LITTLE_RE = re.compile("[" + re.escape(LITTLE_RESERVED) + "]")
_UNESCAPE_RE = re.compile(r"\\([" + re.escape(LITTLE_RESERVED) + "])")

def escape_little_text(text: str) -> str:
    """``text`` with every little-format reserved character backslash-escaped.

    Posts are plain text to us: a ``#`` or ``@`` must not become a hashtag template or a
    mention, and an unescaped ``(`` would truncate the post on LinkedIn's side.
    """
    return _LITTLE_RE.sub(lambda m: "\\" + m.group(0), text)


def unescape_little_text(text: str) -> str:
    """The inverse of :func:`escape_little_text`, for comparing a stored post with a draft."""
    return _UNESCAPE_RE.sub(lambda m: m.group(1), text)


def reauth_due(
    expires_at: datetime | None, now: datetime, notice: timedelta = DEFAULT_REAUTH_NOTICE
) -> bool:
    """Whether a token expiring at ``expires_at`` is within ``notice`` of expiry (or expired)."""
    return expires_at is not None and expires_at - now <= notice


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
    ) -> None:
        if not (len(version) == 6 and version.isdigit()):
            raise ValueError(f"LinkedIn version must be YYYYMM (LINKEDIN_VERSION), got {version!r}")
        self.api_base_url = api_base_url.rstrip("/")
        self.oauth_base_url = oauth_base_url.rstrip("/")
        self.version = version
        self.client_id = client_id
        self.client_secret = client_secret
        super().__init__(timeout=timeout, transport=transport, clock=clock)

    # -- Publisher protocol -------------------------------------------------------------

    def publish(self, account: AccountCredentials, text: str) -> PublishResult:
        """Create a public feed post; the new post's URN comes back in ``x-restli-id``."""
        length = len(unicodedata.normalize("NFC", text))  # counted as app.text_limits counts
        if length > DEFAULT_MAX_COMMENTARY:
            raise PermanentError(
                f"LinkedIn post is {length} characters; the limit is {DEFAULT_MAX_COMMENTARY}"
            )
        body = {
            "author": self._author(account),
            "commentary": escape_little_text(text),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
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

    def find_published(
        self, account: AccountCredentials, text: str, since: datetime
    ) -> PublishResult | None:
        """The author's post created since ``since`` with this text, from their latest posts.

        Reading posts needs ``r_member_social`` (restricted) or ``r_organization_social``; when
        LinkedIn answers 403 the app has no way to look, so NotImplementedError sends the post
        to manual review as the Publisher protocol specifies.
        """
        author = self._author(account)
        url = (
            f"{self.api_base_url}/rest/posts?q=author&author={quote(author, safe='')}"
            f"&count={DEFAULT_FIND_COUNT}&sortBy=LAST_MODIFIED"
        )
        response = self._send("GET", url, account=account, headers={"X-RestLi-Method": "FINDER"})
        if response.status_code == 403:
            raise NotImplementedError(
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

    reauth_due = staticmethod(reauth_due)

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
            raise PermanentError(
                f"LinkedIn API version {self.version} is no longer served; "
                f"set LINKEDIN_VERSION to a current YYYYMM: {detail}"
            )
        reset_at = retry_after(response, self._clock()) if status == 429 else None
        http.raise_for_status("LinkedIn", response, detail, creates=creates, reset_at=reset_at)


def _from_epoch_ms(value: object) -> datetime | None:
    """LinkedIn's ``publishedAt`` / ``createdAt`` (epoch milliseconds) as aware UTC; None if absent."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)
