"""The one revocation a disconnect and an account deletion share (app.connect.revocation): what
it reports when the platform could not be asked is "not revoked, and why", never "not offered"."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.clock import SettableClock
from app.config import Settings
from app.connect import flows
from app.connect.clients import connector_for
from app.connect.revocation import Revocation, revoke_account
from app.crypto import TokenVault, generate_key
from app.models import AuditLog, PlatformAccount
from app.platforms import PLATFORMS
from app.providers.base import TokenSet
from app.users import connect_account, create_user
from tests.factories import make_runtime
from tests.fakes.mastodon import FakeMastodon

BY_INSTANCE = next(key for key, p in PLATFORMS.items() if p.connect_with == "instance")
NO_REVOCATION = next(key for key, p in PLATFORMS.items() if not p.revokes_tokens)


@pytest.mark.parametrize("key", [key for key, p in PLATFORMS.items() if p.connector_factory])
def test_the_registry_says_revokes_exactly_where_the_platforms_connector_has_a_revocation(key: str) -> None:
    entry = PLATFORMS[key]
    connector = connector_for(Settings(**{name: "set" for name in entry.switch_settings}), key)
    assert connector is not None
    assert connector.revokes is entry.revokes_tokens


@pytest.fixture
def fake_mastodon() -> Iterator[FakeMastodon]:
    with FakeMastodon() as fake:
        yield fake


def hand_connected(pg_url: str, sessions: sessionmaker[Session], clock: SettableClock, fake: FakeMastodon,
                   **settings: object) -> tuple[flows.FlowRuntime, int]:
    """A runtime with ``settings``, and Ada's account on the fake connected by hand (``autopilot
    accounts connect``: the fake's token pasted, no app of ours registered on the instance)."""
    key = generate_key()
    runtime = make_runtime(Settings(database_url=pg_url, token_encryption_keys=(key,), **settings), sessions,
                           TokenVault([key]), clock=clock)
    with sessions.begin() as session:
        create_user(session, "ada@example.com", {"timezone": "UTC"})
        account = connect_account(session, runtime.vault, "ada@example.com", BY_INSTANCE,
                                  TokenSet(fake.access_token, None, None), external_id=fake.account_id,
                                  service_url=fake.base_url)
        return runtime, account.id


@pytest.mark.parametrize(("switched_on", "says"), [
    (True, "connected by hand"),
    (False, "is not set up on this server"),
])
def test_a_token_that_could_not_be_revoked_is_recorded_as_not_revoked_and_why(
        pg_url, sessions, clock, fake_mastodon, switched_on, says):
    switches = {name: switched_on for name in PLATFORMS[BY_INSTANCE].switch_settings}
    runtime, account_id = hand_connected(pg_url, sessions, clock, fake_mastodon, **switches)
    with sessions() as session:
        account = session.get(PlatformAccount, account_id)
    assert account is not None

    revocation = revoke_account(runtime, account)

    assert revocation.revoked is False and says in (revocation.error or "")
    # Nothing was revoked: the instance still takes the token.
    assert fake_mastodon.revoked_tokens == 0
    assert httpx.get(f"{fake_mastodon.base_url}/api/v1/accounts/verify_credentials",
                     headers={"Authorization": f"Bearer {fake_mastodon.access_token}"}).status_code == 200
    # A disconnect reports it the same way, and still deletes the account.
    with sessions() as session:
        user_id = session.scalars(select(PlatformAccount.user_id)).one()
    result = flows.disconnect(runtime, user_id=user_id, account_id=account_id, actor="user")
    assert result.revoked is False
    with sessions() as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "account.disconnected")).one()
        assert session.scalar(select(PlatformAccount.id)) is None
    assert says in audit.details["revoke_error"]


def test_a_platform_that_offers_no_revocation_is_not_asked_even_when_not_set_up(pg_url, sessions, clock):
    key = generate_key()
    runtime = make_runtime(Settings(database_url=pg_url, token_encryption_keys=(key,)), sessions,
                           TokenVault([key]), clock=clock)
    with sessions.begin() as session:
        create_user(session, "ada@example.com", {"timezone": "UTC"})
        account = connect_account(session, runtime.vault, "ada@example.com", NO_REVOCATION,
                                  TokenSet("tok", None, None))
    assert revoke_account(runtime, account) == Revocation(None)
