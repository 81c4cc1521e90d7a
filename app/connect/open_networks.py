"""Connecting accounts on the platforms without one central consent screen, for the portal.

The registry's ``connect_with`` says how (:mod:`app.platforms`):

- ``"app_password"`` (Bluesky): the user types a handle and an app password; the platform's
  server signs them in and only the session's tokens are stored, encrypted. The app password is
  used for that one call and never stored nor shown again.
- ``"instance"`` (Mastodon): the user names their own server; the autopilot registers itself
  there once (an :class:`app.models.OAuthClient` row per server and redirect URI), then runs that
  server's OAuth code flow with PKCE. The consent under way is a ``connect_flows`` row like X's
  and LinkedIn's (:mod:`app.connect.flows`: state single use, bound to the browser, ten
  minutes), which also keeps the server, so the code is exchanged where it was issued.

Both build the platform's real publisher from Settings through the registry's factory (the
portal runs no providers); without it (the platform switched off) the user is told so. Every
failure is a :class:`ConnectError` with a message for the user, and nothing is stored.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
from typing import Any

import httpx
from authlib.common.security import generate_token
from sqlalchemy import select

from app.connect.clients import DEFAULT_OAUTH_TIMEOUT_SECONDS, Grant, Identity
from app.connect.errors import ConnectError, ConnectFailure
from app.connect.flows import VERIFIER_LENGTH, Connected, FlowRuntime, answer, record_flow, store
from app.errors import InvalidValue
from app.models import OAuthClient
from app.platforms import PLATFORMS, display_name, get_platform
from app.providers.base import AccountCredentials
from app.providers.errors import AuthError, ProviderError

__all__ = ["APP_PASSWORD", "INSTANCE", "connect_app_password", "finish_instance", "forms", "registered_app",
           "revoke", "start_instance"]

#: The registry's ``connect_with`` values this module handles.
APP_PASSWORD = "app_password"
INSTANCE = "instance"


def forms() -> dict[str, str]:
    """Platform key -> how its accounts are connected here, for the platforms that say."""
    return {key: platform.connect_with for key, platform in PLATFORMS.items() if platform.connect_with}


def _publisher(runtime: FlowRuntime, platform: str) -> Any:
    """The platform's real publisher, built by its registry factory; ConnectError when off."""
    module, name = get_platform(platform).publisher_factory.split(":")
    publisher = getattr(importlib.import_module(module), name)(
        runtime.settings, httpx.Timeout(DEFAULT_OAUTH_TIMEOUT_SECONDS))
    if publisher is None:
        variables = " and ".join(s.upper() for s in get_platform(platform).switch_settings)
        raise ConnectError(ConnectFailure.NOT_CONFIGURED,
                           f"Connecting {display_name(platform)} accounts is not set up on this server "
                           f"(the operator has not set {variables}).")
    return publisher


def _check(platform: str, kind: str) -> None:
    if get_platform(platform).connect_with != kind:
        raise InvalidValue(f"{platform} accounts are not connected with {kind}")


def connect_app_password(runtime: FlowRuntime, *, user_id: int, platform: str, handle: str, app_password: str,
                         actor: str) -> Connected:
    """Sign in with a handle and an app password and store the session's tokens for ``user_id``."""
    _check(platform, APP_PASSWORD)
    name = display_name(platform)
    if not handle.strip().lstrip("@") or not app_password.strip():
        missing = "your handle" if not handle.strip().lstrip("@") else "an app password"
        raise ConnectError(ConnectFailure.BAD_INPUT, f"Type {missing} to connect {name}: nothing was connected.")
    publisher = _publisher(runtime, platform)
    try:
        session = publisher.create_session(handle, app_password.strip())
    except AuthError:
        raise ConnectError(ConnectFailure.REFUSED,
                           f"{name} did not accept this handle and app password. Check the handle and create "
                           f"a new app password in {name}'s settings if needed: nothing was connected.") from None
    except ProviderError as exc:
        raise ConnectError(ConnectFailure.UNREACHABLE,
                           f"{name} could not be reached ({exc}): nothing was connected; try again later.") from None
    grant = Grant(session.tokens, Identity(session.did, f"@{session.handle}", session.pds_url), via=APP_PASSWORD)
    return store(runtime, user_id=user_id, platform=platform, grant=grant, actor=actor, name=name)


def registered_app(runtime: FlowRuntime, publisher: Any, instance: str, redirect_uri: str) -> Any:
    """Our app on ``instance``, registered the first time a user of that instance connects
    (two users of a new instance at once: the first registration stored wins)."""
    platform = publisher.platform

    def stored(row: OAuthClient) -> Any:
        return type(publisher).app_type(row.client_id, runtime.vault.decrypt(row.client_secret_encrypted), row.pkce)

    where = (OAuthClient.platform == platform, OAuthClient.host == instance, OAuthClient.redirect_uri == redirect_uri)
    with runtime.session_factory() as db:
        row = db.scalar(select(OAuthClient).where(*where))
        if row is not None:
            return stored(row)
    app = publisher.register_app(instance, redirect_uri)
    with runtime.session_factory.begin() as db:
        existing = db.scalar(select(OAuthClient).where(*where).with_for_update())
        if existing is not None:
            return stored(existing)
        db.add(OAuthClient(platform=platform, host=instance, redirect_uri=redirect_uri, client_id=app.client_id,
                           client_secret_encrypted=runtime.vault.encrypt(app.client_secret),
                           scopes=publisher.scopes, pkce=app.pkce))
    return app


def start_instance(runtime: FlowRuntime, *, user_id: int, platform: str, domain: str, session_key: str,
                   redirect_uri: str) -> str:
    """Register on the user's server if needed, record the consent, return its consent page URL."""
    _check(platform, INSTANCE)
    name = display_name(platform)
    publisher = _publisher(runtime, platform)
    if not domain.strip():
        raise ConnectError(ConnectFailure.BAD_INPUT,
                           f"Type your {name} server's domain (e.g. mastodon.social): nothing was connected.")
    try:
        instance = publisher.instance_url(domain)
    except (InvalidValue, ValueError) as exc:
        raise ConnectError(ConnectFailure.BAD_INPUT, f"{exc}: nothing was connected.") from None
    try:
        app = registered_app(runtime, publisher, instance, redirect_uri)
    except ProviderError as exc:
        raise ConnectError(ConnectFailure.UNREACHABLE,
                           f"{instance} did not answer as a {name} server ({exc}). Check the domain: "
                           "nothing was connected.") from None
    verifier = generate_token(VERIFIER_LENGTH)
    state = record_flow(runtime, user_id=user_id, platform=platform, session_key=session_key,
                        redirect_uri=redirect_uri, verifier=verifier, service_url=instance)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return str(publisher.authorize_url(instance, app, redirect_uri, state, challenge))


def finish_instance(runtime: FlowRuntime, *, user_id: int, platform: str, session_key: str,
                    params: dict[str, str], actor: str) -> Connected:
    """Check the server's answer, exchange the code there, read the account, store the token."""
    _check(platform, INSTANCE)
    name = display_name(platform)
    flow, code, verifier = answer(runtime, user_id=user_id, platform=platform, session_key=session_key,
                                  params=params, name=name)
    instance = flow.service_url
    if not instance:
        raise ConnectError(ConnectFailure.BAD_STATE, f"This answer from {name} names no server: start again.")
    publisher = _publisher(runtime, platform)
    try:
        app = registered_app(runtime, publisher, instance, flow.redirect_uri)
        tokens = publisher.exchange_code(instance, app, flow.redirect_uri, code, verifier)
        account = publisher.verify_credentials(instance, tokens.access_token)
    except ProviderError as exc:  # AuthError included: a reused or expired code, a PKCE mismatch
        raise ConnectError(ConnectFailure.EXCHANGE_FAILED,
                           f"{exc}. Nothing was connected; try connecting again.") from None
    host = instance.split("://", 1)[1]
    identity = Identity(str(account.get("id")), f"@{account.get('acct')}@{host}", instance, id_per_server=True)
    return store(runtime, user_id=user_id, platform=platform, grant=Grant(tokens, identity, via=INSTANCE),
                 actor=actor, name=name)


def revoke(runtime: FlowRuntime, credentials: AccountCredentials) -> None:
    """End the account's access on its server: Bluesky's session is deleted, Mastodon's token
    revoked (through :func:`app.connect.revocation.revoke_account`, which reads the outcome).
    ProviderError when the server does not confirm; ConnectError when it cannot be asked from
    here (the platform switched off on this server, or an account connected by hand, with no
    client of ours on its server to revoke with): the token may still work then."""
    kind = get_platform(credentials.platform).connect_with
    if kind not in (APP_PASSWORD, INSTANCE):
        raise InvalidValue(f"{credentials.platform} accounts are not connected on their own servers")
    name = display_name(credentials.platform)
    publisher = _publisher(runtime, credentials.platform)
    if kind == APP_PASSWORD:
        publisher.delete_session(credentials)
        return
    with runtime.session_factory() as db:
        row = None if not credentials.service_url else db.scalar(select(OAuthClient).where(
            OAuthClient.platform == credentials.platform, OAuthClient.host == credentials.service_url))
        if row is None:
            raise ConnectError(ConnectFailure.REVOKE_FAILED,
                               f"this {name} account was connected by hand: no app of ours on its server "
                               "can revoke the token (remove it in the account's settings)")
        app = type(publisher).app_type(row.client_id, runtime.vault.decrypt(row.client_secret_encrypted), row.pkce)
    publisher.revoke_token(credentials.service_url, app, credentials.access_token)
