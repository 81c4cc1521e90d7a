"""Start and finish a consent, store what it yields, and disconnect: plain functions over a Runtime.

A consent under way is a :class:`app.models.ConnectFlow` row, so the PKCE verifier stays on the
server and the ``state`` the platform hands back is checked against it: the same user, the same
platform, the same browser session (``session_key``: whatever identifies the browser's sign-in,
stored only as a digest), not used before (claimed by a conditional UPDATE, so two tabs
answering at once cannot both finish it) and not older than :data:`DEFAULT_FLOW_LIFETIME`.
No transaction stays open across a call to the platform. Each failure raises
:class:`app.connect.ConnectError` with a message for the user; nothing is stored then.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from authlib.common.security import generate_token
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit import AuditEntry, record, record_many
from app.config import Settings
from app.connect.clients import Grant, OAuthCallFailed, OAuthConnector, connector_for
from app.connect.errors import ConnectError, ConnectFailure
from app.crypto import TokenVault
from app.errors import NotFound
from app.intents import Intent
from app.jobs.spec import Step, Tick
from app.lifecycle import move_many
from app.models import AccountStatus, ConnectFlow, PlatformAccount, Post, PostStatus
from app.platforms import display_name, get_platform

#: How long a user has to answer the platform's consent screen before the flow is refused.
DEFAULT_FLOW_LIFETIME = timedelta(minutes=10)
#: The errors a platform sends back when the user pressed Cancel (X: RFC 6749's
#: ``access_denied``; LinkedIn: ``user_cancelled_authorize`` / ``user_cancelled_login``).
DENIED_ERRORS = frozenset({"access_denied", "user_cancelled_authorize", "user_cancelled_login"})
#: The statuses of the posts a disconnect cancels: those that would still be published.
FUTURE_STATUSES = (PostStatus.SCHEDULED, PostStatus.QUEUED, PostStatus.NEEDS_REVIEW)
#: PKCE verifier length (RFC 7636 allows 43 to 128 characters).
VERIFIER_LENGTH = 64
#: How long a finished or abandoned consent's row is kept (for an operator looking into a complaint).
DEFAULT_FLOW_RETENTION = timedelta(days=1)


class FlowRuntime(Protocol):
    """What the flows need of a :class:`app.runtime.Runtime` (which is one): the portal, which
    runs no providers, builds a :class:`ConnectRuntime` instead."""

    settings: Settings
    session_factory: sessionmaker[Session]
    vault: TokenVault

    def now(self) -> datetime: ...


@dataclass
class ConnectRuntime:
    """Settings, sessions, the token vault and a clock: all the flows use."""

    settings: Settings
    session_factory: sessionmaker[Session]
    vault: TokenVault
    clock: Callable[[], datetime]

    def now(self) -> datetime:
        return self.clock()


@dataclass(frozen=True)
class Connected:
    """A finished consent: the account stored, and whether it replaced earlier tokens."""

    account_id: int
    platform: str
    handle: str
    reconnected: bool


@dataclass(frozen=True)
class Disconnected:
    """A disconnect: whether the platform revoked the token (None: it offers no revocation)."""

    platform: str
    handle: str | None
    revoked: bool | None
    cancelled_posts: int


def digest(value: str) -> str:
    """SHA-256 (hex): how states and session keys are stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def _connector(runtime: FlowRuntime, platform: str) -> OAuthConnector:
    try:
        connector = connector_for(runtime.settings, platform)
    except ValueError as exc:
        raise NotFound(str(exc)) from None
    if connector is None:
        variables = " and ".join(name.upper() for name in get_platform(platform).switch_settings)
        raise ConnectError(ConnectFailure.NOT_CONFIGURED,
                           f"Connecting {display_name(platform)} accounts is not set up on this server "
                           f"(the operator has not configured {variables}).")
    return connector


def start(runtime: FlowRuntime, *, user_id: int, platform: str, session_key: str, redirect_uri: str,
          connector: OAuthConnector | None = None) -> str:
    """Record a new consent for ``user_id`` and return the platform's consent page URL.

    The user's finished or expired flows are pruned at the same time (one indexed DELETE).
    """
    connector = connector or _connector(runtime, platform)
    verifier = generate_token(VERIFIER_LENGTH) if connector.pkce else None
    state = record_flow(runtime, user_id=user_id, platform=platform, session_key=session_key,
                        redirect_uri=redirect_uri, verifier=verifier)
    return connector.authorization_url(redirect_uri, state, verifier)


def record_flow(runtime: FlowRuntime, *, user_id: int, platform: str, session_key: str, redirect_uri: str,
                verifier: str | None, service_url: str | None = None) -> str:
    """Store a consent under way (pruning the user's finished or expired ones) and return its
    ``state``; ``service_url`` is the server it runs on where each user has their own."""
    now = runtime.now()
    state = secrets.token_urlsafe(32)
    with runtime.session_factory.begin() as session:
        session.execute(delete(ConnectFlow).where(
            ConnectFlow.user_id == user_id,
            or_(ConnectFlow.used_at.is_not(None), ConnectFlow.expires_at <= now)))
        session.add(ConnectFlow(
            user_id=user_id, platform=platform, state_hash=digest(state), session_hash=digest(session_key),
            code_verifier_encrypted=runtime.vault.encrypt(verifier) if verifier else None,
            redirect_uri=redirect_uri, service_url=service_url, created_at=now,
            expires_at=now + DEFAULT_FLOW_LIFETIME))
    return state


def finish(runtime: FlowRuntime, *, user_id: int, platform: str, session_key: str, params: Mapping[str, str],
           actor: str, connector: OAuthConnector | None = None) -> Connected:
    """Check the platform's answer (``params``: the callback's query), exchange the code, store.

    The state is used up before the code is exchanged, so an answer replayed later is refused
    whatever the platform would say about its code.
    """
    connector = connector or _connector(runtime, platform)
    name = connector.display_name
    flow, code, verifier = answer(runtime, user_id=user_id, platform=platform, session_key=session_key,
                                  params=params, name=name)
    try:
        grant = connector.complete(code, flow.redirect_uri, verifier, runtime.now())
    except OAuthCallFailed as exc:
        raise ConnectError(ConnectFailure.EXCHANGE_FAILED,
                           f"{exc}. Nothing was connected; try connecting again.") from None
    return store(runtime, user_id=user_id, platform=platform, grant=grant, actor=actor, name=name)


def answer(runtime: FlowRuntime, *, user_id: int, platform: str, session_key: str, params: Mapping[str, str],
           name: str) -> tuple[ClaimedFlow, str, str | None]:
    """The platform's answer checked: the flow it belongs to (used up now), the code, the PKCE
    verifier; ConnectError for a refusal, a cancel, a missing code or a state not this browser's."""
    flow = _claim_flow(runtime, user_id=user_id, platform=platform, session_key=session_key,
                       state=params.get("state") or "", name=name)
    error = params.get("error")
    if error:
        if error in DENIED_ERRORS:
            raise ConnectError(ConnectFailure.DENIED,
                               f"You cancelled on {name}'s consent screen: nothing was connected.")
        described = params.get("error_description") or error
        raise ConnectError(ConnectFailure.REFUSED, f"{name} did not authorise the connection: {described}.")
    code = params.get("code")
    if not code:
        raise ConnectError(ConnectFailure.NO_CODE,
                           f"{name} sent you back without an authorisation code: nothing was connected.")
    verifier = runtime.vault.decrypt(flow.code_verifier_encrypted) if flow.code_verifier_encrypted else None
    return flow, code, verifier


@dataclass(frozen=True)
class ClaimedFlow:
    """What a claimed consent row tells the code exchange."""

    redirect_uri: str
    code_verifier_encrypted: str | None
    #: The user's own server (a Mastodon instance), for the platforms where each has one.
    service_url: str | None = None


def _claim_flow(runtime: FlowRuntime, *, user_id: int, platform: str, session_key: str, state: str,
                name: str) -> ClaimedFlow:
    """The flow ``state`` names, used up now; ConnectError if it is not this browser's to finish."""
    now = runtime.now()
    wrong = ConnectError(ConnectFailure.BAD_STATE,
                         f"This answer from {name} does not belong to a connection you started in this "
                         "browser, so it was ignored. Start again from your accounts page.")
    if not state:
        raise wrong
    with runtime.session_factory.begin() as session:
        flow = session.scalar(select(ConnectFlow).where(ConnectFlow.state_hash == digest(state)))
        if (flow is None or flow.user_id != user_id or flow.platform != platform
                or not secrets.compare_digest(flow.session_hash, digest(session_key))):
            raise wrong
        if flow.used_at is not None:
            raise ConnectError(ConnectFailure.REUSED_STATE,
                               f"This answer from {name} was already used. Start again from your accounts page.")
        claimed = session.execute(
            update(ConnectFlow).where(ConnectFlow.id == flow.id, ConnectFlow.used_at.is_(None))
            .values(used_at=now).execution_options(synchronize_session=False)).rowcount == 1  # type: ignore[attr-defined]
        if not claimed:
            raise ConnectError(ConnectFailure.REUSED_STATE,
                               f"This answer from {name} was already used. Start again from your accounts page.")
        if now >= flow.expires_at:
            # Used up all the same (committed): an expired state never becomes valid again.
            expired = ConnectError(ConnectFailure.EXPIRED,
                                   f"More than {int(DEFAULT_FLOW_LIFETIME.total_seconds() // 60)} minutes "
                                   f"passed on {name}'s consent screen. Start again from your accounts page.")
        else:
            expired = None
        result = ClaimedFlow(flow.redirect_uri, flow.code_verifier_encrypted, flow.service_url)
    if expired is not None:
        raise expired
    return result


def store(runtime: FlowRuntime, *, user_id: int, platform: str, grant: Grant, actor: str, name: str) -> Connected:
    """Store the grant's tokens on the user's account for ``platform`` (replacing any), audited;
    ConnectError (nothing stored) when another user holds that platform account."""
    identity = grant.identity
    with runtime.session_factory.begin() as session:
        same_account = [PlatformAccount.platform == platform, PlatformAccount.external_id == identity.external_id]
        if identity.id_per_server:
            same_account.append(PlatformAccount.service_url == identity.service_url)
        taken = session.scalar(select(PlatformAccount.id).where(*same_account, PlatformAccount.user_id != user_id))
        if taken is not None:
            # Committed, unlike the refused connection: an operator may want to know who tried.
            record(session, "account.connect_refused", user_id=user_id, actor=actor,
                   details={"platform": platform, "handle": identity.handle, "reason": "connected to another user"})
        else:
            connected = _replace_tokens(runtime, session, user_id=user_id, platform=platform, grant=grant,
                                        actor=actor)
    if taken is not None:
        raise ConnectError(ConnectFailure.TAKEN,
                           f"The {name} account {identity.handle} is already connected to another user "
                           "of this autopilot, so it was not connected here.")
    return connected


def _replace_tokens(runtime: FlowRuntime, session: Session, *, user_id: int, platform: str, grant: Grant,
                    actor: str) -> Connected:
    identity = grant.identity
    account = session.scalar(select(PlatformAccount).where(
        PlatformAccount.user_id == user_id, PlatformAccount.platform == platform).with_for_update())
    reconnected = account is not None
    previous = account.handle if account is not None else None
    if account is None:
        account = PlatformAccount(user_id=user_id, platform=platform)
        session.add(account)
    runtime.vault.store_tokens(account, grant.tokens)
    if not grant.tokens.refresh_token:
        account.refresh_token_encrypted = None  # a new grant: the old refresh token is not its
    account.expires_at = grant.tokens.expires_at
    account.refresh_expires_at = grant.tokens.refresh_expires_at
    account.handle = identity.handle
    account.external_id = identity.external_id
    account.service_url = identity.service_url
    account.status = AccountStatus.ACTIVE
    account.reauth_notified_at = None
    session.flush()
    details: dict[str, object] = {"platform": platform, "handle": identity.handle, "via": grant.via}
    if reconnected:
        details["replaced"] = previous
    record(session, "account.reconnected" if reconnected else "account.connected",
           user_id=user_id, actor=actor, details=details)
    return Connected(account.id, platform, identity.handle, reconnected)


def disconnect(runtime: FlowRuntime, *, user_id: int, account_id: int, actor: str) -> Disconnected:
    """Revoke the account's tokens where the platform allows, cancel its future posts, delete it.

    ``account_id`` must be one of ``user_id``'s accounts (else :class:`NotFound`). The tokens
    are revoked as an account deletion revokes them (:func:`app.connect.revocation.revoke_account`),
    with no transaction open. A revocation the platform does not confirm does not keep the
    account: the user asked for it to go, and the audit row says the revocation failed.
    """
    # Imported here: the revocation reaches the open networks' module, which builds on this one.
    from app.connect.revocation import revoke_account

    with runtime.session_factory() as session:
        account = session.scalar(select(PlatformAccount).where(
            PlatformAccount.id == account_id, PlatformAccount.user_id == user_id))
        if account is None:
            raise NotFound(f"no account {account_id}")
        platform, handle = account.platform, account.handle
    revocation = revoke_account(runtime, account)
    revoked, revoke_error = revocation.revoked, revocation.error
    reason = f"{display_name(platform)} account disconnected by its owner"
    with runtime.session_factory.begin() as session:
        gone = session.execute(delete(PlatformAccount).where(
            PlatformAccount.id == account_id, PlatformAccount.user_id == user_id)).rowcount == 0  # type: ignore[attr-defined]
        future = session.execute(select(Post.id, Post.status).where(
            Post.user_id == user_id, Post.platform == platform, Post.status.in_(FUTURE_STATUSES))).all()
        cancelled: list[int] = []
        for status in FUTURE_STATUSES:
            ids = [row.id for row in future if row.status == status]
            if ids:
                cancelled.extend(row.id for row in move_many(
                    session, ids, source=status, target=PostStatus.CANCELLED,
                    returning=(Post.id,), claim_token=None, last_error=reason))
        record_many(session, [AuditEntry("post.cancelled", user_id=user_id, post_id=post_id, actor=actor,
                                         details={"reason": reason}) for post_id in cancelled])
        details: dict[str, object] = {"platform": platform, "handle": handle, "revoked": revoked,
                                      "cancelled_posts": len(cancelled)}
        if revoke_error:
            details["revoke_error"] = revoke_error
        if gone:
            details["already_gone"] = True
        record(session, "account.disconnected", user_id=user_id, actor=actor, details=details)
    return Disconnected(platform, handle, revoked, len(cancelled))


def connector_for_optional(runtime: FlowRuntime, platform: str) -> OAuthConnector | None:
    """The platform's connector, or None (not configured, or not an OAuth platform)."""
    try:
        return connector_for(runtime.settings, platform)
    except ValueError:
        return None


def prune_flows(session: Session, now: datetime, *, retention: timedelta = DEFAULT_FLOW_RETENTION) -> int:
    """Delete consents that expired more than ``retention`` ago (used or abandoned); how many."""
    deleted: int = session.execute(delete(ConnectFlow).where(ConnectFlow.expires_at <= now - retention)).rowcount  # type: ignore[attr-defined]
    return deleted


def _prune(tick: Tick) -> Sequence[Intent]:
    with tick.runtime.session_factory.begin() as session:
        prune_flows(session, tick.now)
    return []


PRUNE_CONNECT_FLOWS = Step(
    "prune_connect_flows",
    "Delete account-connection consents that expired more than a day ago (finished or abandoned)",
    _prune)
