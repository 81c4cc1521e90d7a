"""Connecting accounts on the open networks: Bluesky with an app password, Mastodon by OAuth on
the user's own instance.

Both need the real publisher (the sandbox cannot sign anyone in): with the platform switched
off the user is told which variable to set. ``autopilot accounts`` calls these (the terminal
holds the state and PKCE verifier between the two steps); the portal uses
:mod:`app.connect.open_networks`, which keeps them on a ``connect_flows`` row and shares the
per-instance app registration (:func:`app.connect.open_networks.registered_app`).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

from app.connect.open_networks import registered_app
from app.errors import FieldError, ValidationError
from app.models import PlatformAccount
from app.platforms import get_platform
from app.providers.bluesky import BlueskyPublisher
from app.providers.errors import AuthError, ProviderError
from app.providers.mastodon import OUT_OF_BAND, App, MastodonPublisher, instance_url
from app.runtime import Runtime
from app.users import connect_account

__all__ = ["InstanceAuthorization", "connect_with_app_password", "finish_instance_oauth", "start_instance_oauth"]


def _publisher(runtime: Runtime, kind: type) -> object:
    key = kind.platform  # type: ignore[attr-defined]
    publisher = runtime.providers.publisher(key)
    if not isinstance(publisher, kind):
        switch = " and ".join(name.upper() for name in get_platform(key).switch_settings)
        raise ValidationError([FieldError("platform", key, f"{get_platform(key).display_name} is simulated here; "
                                                            f"set {switch} to connect real accounts")])
    return publisher


def connect_with_app_password(runtime: Runtime, email: str, handle: str, app_password: str, *,
                              actor: str = "cli") -> PlatformAccount:
    """Sign in to Bluesky with a handle and an app password and store the session, encrypted.

    A refused password is a ValidationError on ``app_password`` (nothing stored); the app
    password itself is never stored, only the session's tokens.
    """
    publisher = _publisher(runtime, BlueskyPublisher)
    assert isinstance(publisher, BlueskyPublisher)
    if not handle.strip() or not app_password.strip():
        raise ValidationError([FieldError("handle" if not handle.strip() else "app_password", "",
                                          "must not be empty")])
    try:
        session = publisher.create_session(handle, app_password.strip())
    except AuthError as exc:
        raise ValidationError([FieldError("app_password", "***", str(exc))]) from None
    except ProviderError as exc:
        raise ValidationError([FieldError("handle", handle, f"could not reach the server: {exc}")]) from None
    with runtime.session_factory() as db, db.begin():
        account = connect_account(db, runtime.vault, email, publisher.platform, session.tokens,
                                  handle=f"@{session.handle}", external_id=session.did,
                                  service_url=session.pds_url, now=runtime.now(), actor=actor)
        db.flush()
        db.expunge(account)
    return account


@dataclass(frozen=True)
class InstanceAuthorization:
    """The first step's result: send the user to ``authorize_url``; keep ``state`` and
    ``code_verifier`` (secret) for :func:`finish_instance_oauth`."""

    instance: str
    authorize_url: str
    state: str
    code_verifier: str
    redirect_uri: str


def _registered_app(runtime: Runtime, publisher: MastodonPublisher, instance: str, redirect_uri: str) -> App:
    """Our app on ``instance``, registered the first time a user of that instance connects."""
    app: App = registered_app(runtime, publisher, instance, redirect_uri)
    return app


def start_instance_oauth(runtime: Runtime, domain: str, redirect_uri: str | None = None) -> InstanceAuthorization:
    """Step one of connecting a Mastodon account: register on the instance if needed and build
    the consent URL (with a PKCE challenge where the instance takes one)."""
    publisher = _publisher(runtime, MastodonPublisher)
    assert isinstance(publisher, MastodonPublisher)
    try:
        instance = instance_url(domain)
    except ValueError as exc:
        raise ValidationError([FieldError("instance", domain, str(exc))]) from None
    redirect = redirect_uri or runtime.settings.mastodon_redirect_uri or OUT_OF_BAND
    try:
        app = _registered_app(runtime, publisher, instance, redirect)
    except ProviderError as exc:
        raise ValidationError([FieldError("instance", domain, f"{instance} did not register the app: {exc}")]) from None
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return InstanceAuthorization(instance, publisher.authorize_url(instance, app, redirect, state, challenge),
                                 state, verifier, redirect)


def finish_instance_oauth(runtime: Runtime, email: str, authorization: InstanceAuthorization, code: str, *,
                          actor: str = "cli") -> PlatformAccount:
    """Step two: exchange the (single-use) code, read the account, store the token encrypted."""
    publisher = _publisher(runtime, MastodonPublisher)
    assert isinstance(publisher, MastodonPublisher)
    app = _registered_app(runtime, publisher, authorization.instance, authorization.redirect_uri)
    try:
        tokens = publisher.exchange_code(authorization.instance, app, authorization.redirect_uri, code.strip(),
                                         authorization.code_verifier)
        account = publisher.verify_credentials(authorization.instance, tokens.access_token)
    except AuthError as exc:
        raise ValidationError([FieldError("code", "***", str(exc))]) from None
    except ProviderError as exc:
        raise ValidationError([FieldError("instance", authorization.instance, str(exc))]) from None
    host = authorization.instance.split("://", 1)[1]
    with runtime.session_factory() as db, db.begin():
        stored = connect_account(db, runtime.vault, email, publisher.platform, tokens,
                                 handle=f"@{account.get('acct')}@{host}", external_id=str(account.get("id")),
                                 service_url=authorization.instance, now=runtime.now(), actor=actor)
        db.flush()
        db.expunge(stored)
    return stored
