"""Each platform's OAuth 2.0 authorisation code flow, through Authlib's httpx client.

Authlib builds the authorisation URL (with the PKCE S256 challenge from our verifier), sends the
code exchange with the platform's kind of client authentication, and the revocation; this module
only knows each platform's endpoints, scopes and how to ask who the token belongs to.

- **X** (docs.x.com, "OAuth 2.0 Authorization Code Flow with PKCE"): consent on x.com, token and
  revocation on the API host, a confidential client authenticating with HTTP Basic, PKCE S256,
  ``offline.access`` for a refresh token, ``GET /2/users/me`` for the id and @username.
- **LinkedIn** (learn.microsoft.com, "Authorization Code Flow (3-legged OAuth)" and "Sign In with
  LinkedIn using OpenID Connect"): consent and token on www.linkedin.com, the client id and
  secret in the form body, the member from OpenID ``userinfo`` (``sub`` -> ``urn:li:person:{sub}``).
  LinkedIn offers no revocation endpoint to apps: the member removes the app in their settings.

The platform registry (:mod:`app.platforms`) names each factory (``connector_factory``); a
factory returns None when the platform's client id or secret is not configured.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authlib.integrations.httpx_client import OAuth2Client, OAuthError

try:  # Authlib's httpx client runs on httpx2 when it is installed (the openai SDK brings it)
    import httpx2 as oauth_http
except ImportError:  # pragma: no cover - and on httpx otherwise
    import httpx as oauth_http  # type: ignore[no-redef]

from app.config import Settings
from app.errors import AutopilotError, InvalidValue
from app.platforms import PLATFORMS, get_platform
from app.providers.base import TokenSet

#: Seconds allowed for each call to a platform's OAuth endpoints (a user is waiting).
DEFAULT_OAUTH_TIMEOUT_SECONDS = 15.0

X_SCOPES = ("tweet.read", "tweet.write", "users.read", "offline.access", "media.write")
LINKEDIN_SCOPES = ("openid", "profile", "w_member_social")


class OAuthCallFailed(AutopilotError):
    """The platform refused or did not answer a call of the flow; ``str()`` says which, for a user."""


@dataclass(frozen=True)
class Identity:
    """Who a token acts for: the id the autopilot stores and the name a user recognises."""

    external_id: str
    handle: str
    #: The account's own server where each user has one (a Bluesky PDS, a Mastodon instance).
    service_url: str | None = None
    #: Whether ``external_id`` is unique only on ``service_url`` (a Mastodon account id is the
    #: instance's own), not across the platform (a Bluesky DID is global).
    id_per_server: bool = False


@dataclass(frozen=True)
class Grant:
    """What a completed consent yields: the tokens and the account they belong to."""

    tokens: TokenSet
    identity: Identity
    #: How it was obtained, for the audit log ("oauth", "app_password").
    via: str = "oauth"


#: Asks the platform who the token's owner is, with a client that sends the token.
Identify = Callable[[OAuth2Client], Identity]


class OAuthConnector:
    """One platform's consent flow; thread-safe (a fresh Authlib client per call)."""

    def __init__(
        self,
        *,
        platform: str,
        client_id: str,
        client_secret: str,
        authorize_url: str,
        token_url: str,
        scopes: tuple[str, ...],
        token_auth_method: str,
        pkce: bool,
        identify: Identify,
        revoke_url: str | None = None,
        timeout_seconds: float = DEFAULT_OAUTH_TIMEOUT_SECONDS,
    ) -> None:
        self.platform = platform
        self.display_name = get_platform(platform).display_name
        self.client_id = client_id
        self.client_secret = client_secret
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.scopes = scopes
        self.token_auth_method = token_auth_method
        #: Whether the flow carries a PKCE S256 challenge (then a code verifier is kept per flow).
        self.pkce = pkce
        self.identify = identify
        self.revoke_url = revoke_url
        self.timeout_seconds = timeout_seconds

    @property
    def revokes(self) -> bool:
        """Whether the platform lets the app revoke a token (X does; LinkedIn does not)."""
        return self.revoke_url is not None

    def _client(self, redirect_uri: str | None = None, token: dict[str, Any] | None = None) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.client_id, client_secret=self.client_secret,
            token_endpoint_auth_method=self.token_auth_method,
            revocation_endpoint_auth_method=self.token_auth_method,
            scope=" ".join(self.scopes), redirect_uri=redirect_uri, token=token,
            code_challenge_method="S256" if self.pkce else None,
            timeout=self.timeout_seconds)

    def authorization_url(self, redirect_uri: str, state: str, code_verifier: str | None) -> str:
        """The platform's consent page for this flow (the S256 challenge of ``code_verifier``)."""
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                self.authorize_url, state=state, code_verifier=code_verifier if self.pkce else None)
        return str(url)

    def complete(self, code: str, redirect_uri: str, code_verifier: str | None, now: datetime) -> Grant:
        """Exchange the code (with the verifier) for tokens and ask whose they are.

        Raises :class:`OAuthCallFailed` with the platform's own reason when the code is refused
        (used, expired, a verifier that does not match) or the platform cannot be reached.
        """
        name = self.display_name
        with self._client(redirect_uri) as client:
            extra = {"code_verifier": code_verifier} if self.pkce else {}
            try:
                token = client.fetch_token(self.token_url, grant_type="authorization_code", code=code, **extra)
            except OAuthError as exc:
                raise OAuthCallFailed(f"{name} refused the authorisation code ({exc.error}"
                                      f"{': ' + exc.description if exc.description else ''})") from None
            except oauth_http.HTTPStatusError as exc:
                raise OAuthCallFailed(f"{name}'s token endpoint answered {exc.response.status_code}") from None
            except (oauth_http.HTTPError, ValueError) as exc:
                raise OAuthCallFailed(f"{name} could not be reached ({type(exc).__name__})") from None
            access = token.get("access_token")
            if not isinstance(access, str) or not access:
                raise OAuthCallFailed(f"{name} answered without an access token")
            try:
                identity = self.identify(client)
            except (oauth_http.HTTPError, ValueError, KeyError, TypeError) as exc:
                raise OAuthCallFailed(f"{name} did not say whose account this is ({type(exc).__name__})") from None
        return Grant(tokens=_token_set(token, now), identity=identity)

    def revoke(self, access_token: str, refresh_token: str | None) -> None:
        """Revoke both tokens at the platform; :class:`OAuthCallFailed` unless it confirms."""
        if self.revoke_url is None:
            raise OAuthCallFailed(f"{self.display_name} offers no revocation to apps")
        with self._client() as client:
            for token, hint in ((refresh_token, "refresh_token"), (access_token, "access_token")):
                if not token:
                    continue
                try:
                    response = client.revoke_token(self.revoke_url, token=token, token_type_hint=hint)
                except oauth_http.HTTPError as exc:
                    raise OAuthCallFailed(f"{self.display_name} could not be reached ({type(exc).__name__})") from None
                if response.status_code != 200:
                    raise OAuthCallFailed(f"{self.display_name} answered {response.status_code} to the revocation")


def _token_set(token: dict[str, Any], now: datetime) -> TokenSet:
    """A token endpoint's answer as a TokenSet, with lifetimes turned into instants."""
    def after(key: str) -> datetime | None:
        seconds = token.get(key)
        return now + timedelta(seconds=int(seconds)) if seconds else None
    return TokenSet(access_token=str(token["access_token"]), refresh_token=token.get("refresh_token") or None,
                    expires_at=after("expires_in"), refresh_expires_at=after("refresh_token_expires_in"))


def _json(response: oauth_http.Response) -> dict[str, Any]:
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict):
        raise InvalidValue("expected a JSON object")
    return body


def _x_identity(api_base_url: str) -> Identify:
    def identify(client: OAuth2Client) -> Identity:
        data = _json(client.get(f"{api_base_url}/2/users/me"))["data"]
        return Identity(external_id=str(data["id"]), handle=f"@{data['username']}")
    return identify


def _linkedin_identity(api_base_url: str) -> Identify:
    def identify(client: OAuth2Client) -> Identity:
        info = _json(client.get(f"{api_base_url}/v2/userinfo"))
        sub = str(info["sub"])
        return Identity(external_id=f"urn:li:person:{sub}", handle=str(info.get("name") or sub))
    return identify


def x_from_settings(settings: Settings, platform: str) -> OAuthConnector | None:
    """X's connector for the registry entry ``platform`` (which names this factory); None
    without ``X_CLIENT_ID``/``X_CLIENT_SECRET``."""
    if not (settings.x_client_id and settings.x_client_secret):
        return None
    api = settings.x_api_base_url.rstrip("/")
    return OAuthConnector(
        platform=platform, client_id=settings.x_client_id, client_secret=settings.x_client_secret,
        authorize_url=settings.x_authorize_url, token_url=f"{api}/2/oauth2/token", scopes=X_SCOPES,
        token_auth_method="client_secret_basic", pkce=True, identify=_x_identity(api),
        revoke_url=f"{api}/2/oauth2/revoke")


def linkedin_from_settings(settings: Settings, platform: str) -> OAuthConnector | None:
    """LinkedIn's connector for the registry entry ``platform`` (which names this factory); None
    without its client id and secret."""
    if not (settings.linkedin_client_id and settings.linkedin_client_secret):
        return None
    oauth = settings.linkedin_oauth_base_url.rstrip("/")
    return OAuthConnector(
        platform=platform, client_id=settings.linkedin_client_id,
        client_secret=settings.linkedin_client_secret,
        authorize_url=f"{oauth}/oauth/v2/authorization", token_url=f"{oauth}/oauth/v2/accessToken",
        scopes=LINKEDIN_SCOPES, token_auth_method="client_secret_post", pkce=False,
        identify=_linkedin_identity(settings.linkedin_api_base_url.rstrip("/")))


def connectable_platforms() -> tuple[str, ...]:
    """The platform keys whose registry entry names a connector, in the registry's order."""
    return tuple(key for key, platform in PLATFORMS.items() if platform.connector_factory)


def connector_for(settings: Settings, platform: str) -> OAuthConnector | None:
    """The connector the registry names for ``platform``, or None when it is not configured.

    :class:`InvalidValue` (a ValueError) for a platform that is unknown or not connected by OAuth.
    """
    factory = get_platform(platform).connector_factory
    if factory is None:
        raise InvalidValue(f"{platform} accounts are not connected through an OAuth consent")
    module, name = factory.split(":")
    # The entry's key is handed over, so a connector module never spells its platform's key.
    connector: OAuthConnector | None = getattr(importlib.import_module(module), name)(settings, platform)
    return connector
