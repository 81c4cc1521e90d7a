"""Publishing to X (Twitter) through API v2 with an OAuth 2.0 user-context token.

Every failure is mapped onto exactly one class of :mod:`app.providers.errors`, because the
publish workflow decides from the class alone whether a retry is safe. The distinction that
matters most is *when* the failure happened: before anything reached X (refused connection,
connect timeout, 429, 503: retry) or after the request was sent (read timeout, dropped
connection, 500 on a create: the tweet may exist, so :class:`OutcomeUnknown`, reconcile with
:meth:`XPublisher.find_published` instead of posting twice).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import httpx

from app.chunks import chunks
from app.config import Settings
from app.providers import http
from app.providers.base import AccountCredentials, PostMetrics, PostRef, PublishResult, TokenSet
from app.providers.errors import (
    AuthError,
    OperatorProblem,
    OutcomeUnknown,
    RateLimited,
    TemporaryError,
)

#: The most ids ``GET /2/tweets`` accepts in one call.
IDS_PER_LOOKUP = 100
#: Timeline pages (of ``DEFAULT_TIMELINE_PAGE`` tweets) read when reconciling an unknown outcome.
DEFAULT_TIMELINE_PAGES = 3
#: Tweets per timeline page when reconciling (X accepts 5 to 100).
DEFAULT_TIMELINE_PAGE = 10

_URL_RE = re.compile(r"https?://\S+", re.IGNORECASE)


def _created_at(value: object) -> datetime | None:
    """A tweet's ``created_at`` (ISO 8601, ``2026-11-27T04:00:00.000Z``) as aware UTC; None if absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def normalise_for_match(text: str) -> str:
    """``text`` reduced to what survives X's rendering, for comparing a draft with a tweet.

    X wraps every URL in a t.co link, HTML-escapes ``& < >`` in API responses and may change
    whitespace, so URLs are dropped, entities unescaped and whitespace collapsed.
    """
    text = unicodedata.normalize("NFC", html.unescape(text))
    text = _URL_RE.sub(" ", text)
    return " ".join(text.split()).casefold()


def rate_limit_reset(response: httpx.Response) -> tuple[datetime | None, str]:
    """When a 429 lifts (aware UTC) and which limit it was, from X's epoch-seconds headers.

    X reports three limits on ``POST /2/tweets``: the 15-minute window (``x-rate-limit-*``),
    the app's 24-hour cap (``x-app-limit-24hour-*``) and the user's 24-hour cap
    (``x-user-limit-24hour-*``). A 429 with the window not exhausted comes from a daily cap:
    retrying at the window's reset would only fail again, so an exhausted daily cap's reset
    wins (the later one, when both are exhausted).
    """
    headers = response.headers
    daily = [
        (_epoch(headers.get(f"x-{scope}-limit-24hour-reset")), f"{scope}_24h")
        for scope in ("app", "user")
        if (headers.get(f"x-{scope}-limit-24hour-remaining") or "").strip() == "0"
    ]
    known = [(at, limit) for at, limit in daily if at is not None]
    if known:
        return max(known)
    return _epoch(headers.get("x-rate-limit-reset")), "window"


def operator_problem(response: httpx.Response) -> OperatorProblem | None:
    """The failures only the operator can fix: a monthly usage cap (429 ``usage-capped``) or
    a 402 (the app's plan or prepaid credits do not cover the call)."""
    status = response.status_code
    if status == 402:
        return OperatorProblem(
            f"X refused with 402 Payment Required ({_detail(response)}): the X app's plan or "
            "credits do not cover posting; check billing in the X developer portal",
            provider="x", kind="x_payment_required")
    if status != 429:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    kind = str(body.get("type") or "")
    if kind.endswith("/usage-capped") or body.get("title") == "UsageCapExceeded" or (
        "usage cap exceeded" in str(body.get("detail") or "").lower()
    ):
        return OperatorProblem(
            f"X usage cap exceeded ({_detail(response)}): the X app's monthly post cap is used "
            "up; nothing is published on X until the plan is raised or the month resets",
            provider="x", kind="x_usage_capped")
    return None


def _epoch(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(int(value.strip()), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _detail(response: httpx.Response) -> str:
    """The platform's own explanation of an error response, for the exception message."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:300]
    parts = [str(body[k]) for k in ("title", "detail", "error", "error_description") if body.get(k)]
    for error in body.get("errors") or []:
        if isinstance(error, dict) and error.get("message"):
            parts.append(str(error["message"]))
    return "; ".join(parts) or response.text[:300]


class XPublisher(http.PlatformClient):
    """The real X publisher: ``POST /2/tweets`` with the account's OAuth 2.0 user token."""

    name = "x"
    platform = "twitter"
    offline = False

    def __init__(
        self,
        base_url: str,
        client_id: str | None,
        client_secret: str | None = None,
        *,
        timeout: httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        super().__init__(base_url=self.base_url, timeout=timeout, transport=transport, clock=clock)

    # -- Publisher protocol -------------------------------------------------------------

    def publish(self, account: AccountCredentials, text: str, ref: PostRef | None = None) -> PublishResult:
        """Create a tweet. Any failure after sending raises :class:`OutcomeUnknown`."""
        response = self._send(
            "POST", "/2/tweets", account=account, creates=True, json={"text": text}
        )
        if response.status_code not in (200, 201):
            self._raise_for(response, creates=True)
        try:
            tweet_id = str(response.json()["data"]["id"])
        except (ValueError, KeyError, TypeError):
            # X answered "created" but we cannot tell with which id: the tweet probably exists.
            raise OutcomeUnknown(
                f"X answered {response.status_code} with an unreadable body; the tweet may exist"
            ) from None
        return PublishResult(external_id=tweet_id, url=f"https://x.com/i/web/status/{tweet_id}")

    def find_published(
        self, account: AccountCredentials, text: str, since: datetime, ref: PostRef | None = None
    ) -> PublishResult | None:
        """The account's tweet created since ``since`` whose text matches ``text``, if any.

        Compares with :func:`normalise_for_match` because X rewrites URLs to t.co links.
        Reads at most ``DEFAULT_TIMELINE_PAGES`` pages: enough for an account posting a few
        times a day, and bounded so reconciliation never scans a whole history.
        """
        user_id = account.external_id or self._me(account)["id"]
        wanted = normalise_for_match(text)
        params: dict[str, str | int] = {
            "start_time": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "max_results": DEFAULT_TIMELINE_PAGE,
            "tweet.fields": "created_at,text",
        }
        for _ in range(DEFAULT_TIMELINE_PAGES):
            body = self._get_json(f"/2/users/{user_id}/tweets", account, params)
            for tweet in body.get("data") or []:
                if normalise_for_match(str(tweet.get("text", ""))) == wanted:
                    tweet_id = str(tweet["id"])
                    return PublishResult(tweet_id, f"https://x.com/i/web/status/{tweet_id}",
                                         published_at=_created_at(tweet.get("created_at")))
            next_token = (body.get("meta") or {}).get("next_token")
            if not next_token:
                break
            params["pagination_token"] = next_token
        return None

    def refresh(self, account: AccountCredentials) -> TokenSet:
        """Exchange the refresh token (``offline.access`` scope) for a new access token.

        X rotates refresh tokens: the response's one replaces the stored one. A response
        without one (or an empty one) yields ``refresh_token=None``, meaning keep the stored
        token, so a valid refresh token is never overwritten with nothing.
        """
        if not account.refresh_token:
            raise AuthError("X account has no refresh token: it must be re-authorised")
        if not self.client_id:
            raise AuthError("X_CLIENT_ID is not configured: cannot refresh X tokens")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": account.refresh_token,
            "client_id": self.client_id,
        }
        # Confidential clients must authenticate with Basic auth; public clients send only the id.
        auth = (self.client_id, self.client_secret) if self.client_secret else None
        response = self._send("POST", "/2/oauth2/token", data=form, auth=auth)
        if response.status_code in (400, 401):
            raise AuthError(f"X refused the refresh token: {_detail(response)}")
        if response.status_code != 200:
            self._raise_for(response, creates=False)
        try:
            body = response.json()
            access_token = str(body["access_token"])
            expires_in = body.get("expires_in")
        except (ValueError, KeyError, TypeError):
            raise TemporaryError("X token endpoint returned an unreadable body") from None
        now = self._clock()
        return TokenSet(
            access_token=access_token,
            refresh_token=body.get("refresh_token") or None,
            expires_at=now + timedelta(seconds=int(expires_in)) if expires_in else None,
        )

    def fetch_metrics(
        self, account: AccountCredentials, external_ids: list[str]
    ) -> dict[str, PostMetrics]:
        """Public metrics of the given tweets, ``IDS_PER_LOOKUP`` ids per call.

        Deleted or protected tweets come back in ``errors`` instead of ``data``; they are
        simply absent from the result.
        """
        metrics: dict[str, PostMetrics] = {}
        for chunk in chunks(list(dict.fromkeys(external_ids)), IDS_PER_LOOKUP):
            body = self._get_json(
                "/2/tweets", account, {"ids": ",".join(chunk), "tweet.fields": "public_metrics"}
            )
            for tweet in body.get("data") or []:
                parsed = _public_metrics(tweet)
                if parsed is not None:
                    metrics[str(tweet["id"])] = parsed
        return metrics

    # -- extras -------------------------------------------------------------------------

    def check_account(self, account: AccountCredentials) -> str:
        """The @username the token acts for (``autopilot doctor`` shows it)."""
        return str(self._me(account)["username"])


    # -- plumbing -----------------------------------------------------------------------

    def _me(self, account: AccountCredentials) -> dict[str, Any]:
        body = self._get_json("/2/users/me", account, None)
        data = body.get("data")
        if not isinstance(data, dict) or "id" not in data:
            raise TemporaryError("X /2/users/me returned no user")
        return data

    def _get_json(
        self, path: str, account: AccountCredentials, params: dict[str, Any] | None
    ) -> dict[str, Any]:
        response = self._send("GET", path, account=account, params=params)
        if response.status_code != 200:
            self._raise_for(response, creates=False)
        return http.json_object("X", response, path)

    def _send(
        self,
        method: str,
        path: str,
        *,
        account: AccountCredentials | None = None,
        creates: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request, turning transport failures into the right error class."""
        headers = http.bearer("X", account, self._clock()) if account is not None else {}
        return http.send(self._http, "X", method, path, creates=creates, thing="tweet", headers=headers, **kwargs)

    @staticmethod
    def _raise_for(response: httpx.Response, *, creates: bool) -> NoReturn:
        """Raise the error class for a non-success status (see the module docstring)."""
        problem = operator_problem(response)
        if problem is not None:
            raise problem
        if response.status_code == 429:
            reset_at, limit = rate_limit_reset(response)
            raise RateLimited(f"X rate limit ({limit}): {_detail(response)}", reset_at=reset_at, limit=limit)
        http.raise_for_status("X", response, _detail(response), creates=creates, reset_at=None, thing="tweet")


def _public_metrics(tweet: Any) -> PostMetrics | None:
    """A tweet's ``public_metrics`` as PostMetrics; None for an item too malformed to trust."""
    if not isinstance(tweet, dict) or "id" not in tweet:
        return None  # cannot be attributed to a post
    try:
        public = tweet.get("public_metrics") or {}
        return PostMetrics(
            impressions=int(public.get("impression_count") or 0),
            likes=int(public.get("like_count") or 0),
            shares=int(public.get("retweet_count") or 0) + int(public.get("quote_count") or 0),
            comments=int(public.get("reply_count") or 0),
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def from_settings(settings: Settings, timeout: httpx.Timeout) -> XPublisher | None:
    """The X publisher this configuration selects (app.platforms names this factory); None
    without ``X_CLIENT_ID``."""
    if not settings.x_client_id:
        return None
    return XPublisher(settings.x_api_base_url, settings.x_client_id, settings.x_client_secret, timeout=timeout)
