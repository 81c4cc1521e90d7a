"""Tokens are encrypted at rest, never printed, and survive key rotation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import users
from app.crypto import TokenVault, generate_key
from app.errors import TokenDecryptionError, ValidationError
from app.providers.base import TokenSet
from tests.test_validation import GOOD

ACCESS, REFRESH = "access-PLAINTEXT-123", "refresh-PLAINTEXT-456"


def _connect(engine, vault, **kwargs):
    with Session(engine) as session, session.begin():
        users.create_user(session, "t@example.com", GOOD)
        account = users.connect_account(
            session, vault, "t@example.com", "twitter",
            TokenSet(ACCESS, REFRESH, datetime(2027, 1, 1, tzinfo=UTC)), handle="@t", **kwargs)
        return account.id


def test_raw_sql_finds_no_plaintext_token(engine):
    vault = TokenVault([generate_key()])
    _connect(engine, vault)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM platform_accounts")).all()
        audit = conn.execute(text("SELECT details FROM audit_log")).all()
    dump = repr(rows) + repr(audit)
    assert ACCESS not in dump and REFRESH not in dump
    assert "PLAINTEXT" not in dump


def test_repr_of_account_and_credentials_hide_tokens(engine):
    vault = TokenVault([generate_key()])
    _connect(engine, vault)
    with Session(engine) as session:
        account = users.get_user(session, "t@example.com").accounts[0]
        creds = vault.credentials(account)
        assert creds.access_token == ACCESS and creds.refresh_token == REFRESH
        for shown in (repr(account), str(account), repr(creds)):
            assert "PLAINTEXT" not in shown and "gAAAA" not in shown


def test_rotating_keys_keeps_old_tokens_readable(engine):
    old = generate_key()
    _connect(engine, TokenVault([old]))
    new = generate_key()
    rotated = TokenVault([new, old])
    with Session(engine) as session, session.begin():
        account = users.get_user(session, "t@example.com").accounts[0]
        assert rotated.credentials(account).access_token == ACCESS
        account.access_token_encrypted = rotated.rotate(account.access_token_encrypted)
        account.refresh_token_encrypted = rotated.rotate(account.refresh_token_encrypted)
    with Session(engine) as session:
        account = users.get_user(session, "t@example.com").accounts[0]
        only_new = TokenVault([new])
        assert only_new.credentials(account).refresh_token == REFRESH
        with pytest.raises(TokenDecryptionError):
            TokenVault([old]).credentials(account)


def test_refresh_without_new_refresh_token_keeps_the_stored_one(engine):
    vault = TokenVault([generate_key()])
    _connect(engine, vault)
    with Session(engine) as session, session.begin():
        account = users.get_user(session, "t@example.com").accounts[0]
        vault.store_tokens(account, TokenSet("new-access", None, None))
    with Session(engine) as session:
        creds = vault.credentials(users.get_user(session, "t@example.com").accounts[0])
        assert (creds.access_token, creds.refresh_token) == ("new-access", REFRESH)


def test_an_expired_token_without_refresh_is_refused(engine):
    vault = TokenVault([generate_key()])
    with Session(engine) as session:
        users.create_user(session, "e@example.com", GOOD)
        with pytest.raises(ValidationError, match="expires_at"):
            users.connect_account(session, vault, "e@example.com", "twitter",
                                  TokenSet("a", None, datetime(2020, 1, 1, tzinfo=UTC)),
                                  now=datetime(2026, 1, 1, tzinfo=UTC))
