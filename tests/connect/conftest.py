"""Fixtures of the consent-flow tests: the X and LinkedIn fakes, and a runtime pointed at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.clock import SettableClock
from app.config import Settings
from app.crypto import TokenVault, generate_key
from app.runtime import Runtime
from app.users import create_user
from tests.factories import make_runtime
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.x import FakeX

PORTAL = "https://portal.example.com"
X_CALLBACK = f"{PORTAL}/connect/twitter/callback"
LINKEDIN_CALLBACK = f"{PORTAL}/connect/linkedin/callback"


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    with FakeX(client_id="x-client", client_secret="x-secret", redirect_uris=[X_CALLBACK]) as fake:
        yield fake


@pytest.fixture
def fake_linkedin() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn(client_id="li-client", client_secret="li-secret",
                      redirect_uris=[LINKEDIN_CALLBACK]) as fake:
        yield fake


def oauth_settings(pg_url: str, vault_key: str, fake_x: FakeX, fake_linkedin: FakeLinkedIn) -> Settings:
    """Settings naming both fakes as the platforms, with the apps' credentials."""
    return Settings(
        database_url=pg_url, token_encryption_keys=(vault_key,),
        x_client_id="x-client", x_client_secret="x-secret", x_api_base_url=fake_x.base_url,
        x_authorize_url=fake_x.authorize_url,
        linkedin_client_id="li-client", linkedin_client_secret="li-secret",
        linkedin_api_base_url=fake_linkedin.base_url, linkedin_oauth_base_url=fake_linkedin.base_url)


@pytest.fixture
def connect_runtime(pg_url: str, sessions: sessionmaker[Session], clock: SettableClock, fake_x: FakeX,
                    fake_linkedin: FakeLinkedIn) -> Runtime:
    """A runtime whose settings point at both fakes, on the settable clock."""
    key = generate_key()
    return make_runtime(oauth_settings(pg_url, key, fake_x, fake_linkedin), sessions, TokenVault([key]),
                        clock=clock)


@pytest.fixture
def two_users(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions.begin() as session:
        ada = create_user(session, "ada@example.com", {"timezone": "Europe/London"})
        bob = create_user(session, "bob@example.com", {"timezone": "Europe/Paris"})
        return ada.id, bob.id
