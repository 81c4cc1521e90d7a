"""A user's data: the download holds all of it and no token; deletion leaves only the audit policy's rows."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.audit import record
from app.config import Settings
from app.connect.flows import ConnectRuntime, FlowRuntime
from app.connect.revocation import Revocation
from app.crypto import TokenVault, generate_key
from app.models import (
    AuditLog,
    MemoryEntry,
    MetricSnapshot,
    Notification,
    PlatformAccount,
    Post,
    User,
    UserSettings,
    WorkflowExecution,
)
from app.notifications import notify, set_preferences
from app.providers.base import TokenSet
from app.statuses import PostStatus
from app.userdata import ConfirmationMismatch, delete_account, export_user_data, user_ref
from app.users import connect_account
from tests.factories import make_user

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
SETTINGS = {"timezone": "Europe/Berlin", "preferred_platforms": ["twitter"], "posting_times": {"twitter": ["09:00"]}}


def seed(sessions: sessionmaker[Session], vault: TokenVault, email: str) -> int:
    """A user with two accounts, published posts with snapshots, a future and a queued post,
    a report, a notification and audit rows."""
    user_id = make_user(sessions, vault, email, settings=SETTINGS, connect=("twitter", "linkedin"))
    with sessions.begin() as session:
        for day in range(1, 4):
            post = Post(user_id=user_id, platform="twitter", text=f"{email} post {day}", status=PostStatus.PUBLISHED,
                        scheduled_at=NOW - timedelta(days=day), published_at=NOW - timedelta(days=day),
                        external_id=f"x{day}", impressions=100 * day, likes=day)
            session.add(post)
            session.flush()
            session.add_all([MetricSnapshot(post_id=post.id, age=age, impressions=50 * day, likes=day)
                             for age in ("24h", "7d")])
            record(session, "post.published", user_id=user_id, post_id=post.id, details={"external_id": f"x{day}"})
        session.add(Post(user_id=user_id, platform="twitter", text="tomorrow", status=PostStatus.SCHEDULED,
                         scheduled_at=NOW + timedelta(days=1)))
        session.add(Post(user_id=user_id, platform="linkedin", text="queued", status=PostStatus.QUEUED,
                         scheduled_at=NOW + timedelta(minutes=1), claim_token="t"))
        session.add(MemoryEntry(user_id=user_id, kind="insight", key="weekly:2026-11-22",
                                content={"summary": "A fine week", "recommendations": []}))
        session.add(WorkflowExecution(workflow="weekly_report", user_id=user_id, slot=NOW))
        notify(session, user_id, "generation_failed", "No posts today", "Generation failed.", now=NOW)
        set_preferences(session, user_id, {"generation_failed": "digest"}, weekly_report_email=False, actor="t")
    return user_id


@pytest.fixture
def deleting(sessions: sessionmaker[Session], vault: TokenVault) -> ConnectRuntime:
    """What the deletion runs over: the test's sessions and vault, no platform set up."""
    return ConnectRuntime(Settings(database_url="sqlite://", token_encryption_keys=(generate_key(),)), sessions,
                          vault, clock=lambda: NOW)


@pytest.fixture
def users(sessions: sessionmaker[Session], vault: TokenVault) -> dict[str, int]:
    return {"ada": seed(sessions, vault, "ada@example.com"), "bob": seed(sessions, vault, "bob@example.com")}


def test_the_download_holds_every_table_as_json_and_csv_and_never_a_token(
        sessions: sessionmaker[Session], users: dict[str, int]) -> None:
    with sessions.begin() as session:
        tokens = session.scalars(select(PlatformAccount.access_token_encrypted)).all()
        blob = export_user_data(session, users["ada"], now=NOW, actor="user:ada@example.com")
    archive = zipfile.ZipFile(io.BytesIO(blob))
    names = set(archive.namelist())
    assert names == {"README.txt", "settings.json", "reports.json"} | {
        f"{t}.{ext}" for t in ("accounts", "posts", "metrics", "notifications", "audit") for ext in ("json", "csv")}
    text = "".join(archive.read(n).decode() for n in names)
    assert "bob@example.com" not in text
    assert not any(token in text for token in tokens) and "tok" not in json.loads(archive.read("accounts.json"))[0]
    profile = json.loads(archive.read("settings.json"))
    assert profile["settings"]["timezone"] == "Europe/Berlin"
    assert profile["notification_preferences"] == {"email_by_kind": {"generation_failed": "digest"},
                                                   "weekly_report_email": False}
    posts = json.loads(archive.read("posts.json"))
    assert [p["text"] for p in posts] == ["ada@example.com post 3", "ada@example.com post 2",
                                          "ada@example.com post 1", "queued", "tomorrow"]
    assert len(list(csv.DictReader(io.StringIO(archive.read("posts.csv").decode())))) == 5
    assert len(json.loads(archive.read("metrics.json"))) == 6
    assert {row["post_id"] for row in json.loads(archive.read("metrics.json"))} <= {p["id"] for p in posts}
    assert json.loads(archive.read("reports.json"))[0]["content"]["summary"] == "A fine week"
    assert [n["subject"] for n in json.loads(archive.read("notifications.json"))] == ["No posts today"]
    audit = list(csv.DictReader(io.StringIO(archive.read("audit.csv").decode())))
    assert {row["action"] for row in audit} >= {"post.published", "notifications.preferences"}
    with sessions() as session:
        exported = session.scalars(select(AuditLog.details).where(AuditLog.action == "data.exported")).one()
    assert exported["posts"] == 5 and exported["metrics"] == 6


def counts(session: Session, user_id: int) -> dict[str, int]:
    tables = {"users": (User, User.id), "settings": (UserSettings, UserSettings.user_id),
              "accounts": (PlatformAccount, PlatformAccount.user_id), "posts": (Post, Post.user_id),
              "reports": (MemoryEntry, MemoryEntry.user_id), "notifications": (Notification, Notification.user_id),
              "executions": (WorkflowExecution, WorkflowExecution.user_id), "audit": (AuditLog, AuditLog.user_id)}
    return {name: session.scalar(select(func.count()).select_from(model).where(column == user_id)) or 0
            for name, (model, column) in tables.items()}


def test_a_wrong_confirmation_deletes_nothing(sessions: sessionmaker[Session], deleting: ConnectRuntime,
                                              users: dict[str, int]) -> None:
    with sessions() as session:
        before = counts(session, users["ada"])
    with pytest.raises(ConfirmationMismatch, match="type your account's email"):
        delete_account(deleting, users["ada"], "bob@example.com", actor="u")
    with sessions() as session:
        assert counts(session, users["ada"]) == before and before["posts"] == 5


def test_deleting_revokes_tokens_cancels_posts_erases_rows_and_keeps_pseudonymous_audit(
        sessions: sessionmaker[Session], vault: TokenVault, deleting: ConnectRuntime, users: dict[str, int]) -> None:
    revoked: list[tuple[str, str, str | None]] = []

    def revoke(runtime: FlowRuntime, account: PlatformAccount) -> Revocation:
        credentials = runtime.vault.credentials(account)
        revoked.append((account.platform, credentials.access_token, credentials.refresh_token))
        return Revocation(True) if account.platform == "twitter" else Revocation(None)  # LinkedIn offers none

    with sessions() as session:
        bob_before = counts(session, users["bob"])
        ada_audit = session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.user_id == users["ada"]))
    done = delete_account(deleting, users["ada"], " Ada@Example.com ", actor="user:ada", revoke=revoke)
    assert sorted(revoked) == [("linkedin", "tok", "ref"), ("twitter", "tok", "ref")]
    assert done.accounts == {"twitter": True, "linkedin": None}
    assert done.posts_cancelled == 2 and done.posts_deleted == 5
    with sessions() as session:
        assert set(counts(session, users["ada"]).values()) == {0}
        assert session.scalar(select(func.count()).select_from(MetricSnapshot)) == 6  # Bob's only
        assert counts(session, users["bob"]) == bob_before
        kept = session.scalars(select(AuditLog).where(AuditLog.details["erased"].as_string()
                                                      == user_ref(users["ada"], "ada@example.com"))).all()
        # Every row about Ada is kept (with the two cancellations), stripped to action, actor and time.
        assert len(kept) == ada_audit + 2 == done.audit_rows_kept
        assert {r.action for r in kept} >= {"post.published", "post.cancelled", "notifications.preferences"}
        assert all(r.user_id is None and r.post_id is None for r in kept)
        deleted = session.scalars(select(AuditLog).where(AuditLog.action == "account.deleted")).one()
        assert "ada@example.com" not in json.dumps(deleted.details).lower()
        assert deleted.details["user_ref"] == done.user_ref


def open_transactions(engine: Engine) -> int:
    """How many other sessions of this database sit ``idle in transaction`` right now."""
    with engine.connect() as connection:
        return connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'")) or 0


def test_no_transaction_is_open_while_the_platforms_revoke(
        deleting: ConnectRuntime, users: dict[str, int], pg_engine: Engine) -> None:
    """The revocations run between the deletion's two transactions: no row lock waits on a platform."""
    seen: list[tuple[str, int]] = []

    def revoke(runtime: FlowRuntime, account: PlatformAccount) -> Revocation:
        seen.append((account.platform, open_transactions(pg_engine)))
        return Revocation(True)

    done = delete_account(deleting, users["ada"], "ada@example.com", actor="user:ada", revoke=revoke)

    assert sorted(seen) == [("linkedin", 0), ("twitter", 0)]
    assert done.accounts == {"twitter": True, "linkedin": True}


def test_an_account_connected_while_the_platforms_revoke_is_deleted_and_recorded_as_not_revoked(
        sessions: sessionmaker[Session], vault: TokenVault, deleting: ConnectRuntime, users: dict[str, int]) -> None:
    """Between the read and the deletion the user connects Bluesky and reconnects LinkedIn (in
    another session, which a held row lock would block): both go, recorded as not revoked."""
    def revoke(runtime: FlowRuntime, account: PlatformAccount) -> Revocation:
        if account.platform == "twitter":
            with sessions.begin() as session:
                connect_account(session, vault, "ada@example.com", "bluesky", TokenSet("bsky", None, None))
                connect_account(session, vault, "ada@example.com", "linkedin", TokenSet("new", None, None))
        return Revocation(True)

    done = delete_account(deleting, users["ada"], "ada@example.com", actor="user:ada", revoke=revoke)

    assert done.accounts == {"twitter": True, "linkedin": False, "bluesky": False}
    with sessions() as session:
        assert set(counts(session, users["ada"]).values()) == {0}
        deleted = session.scalars(select(AuditLog).where(AuditLog.action == "account.deleted")).one()
    lines = deleted.details["accounts"]
    assert lines["twitter"] == {"revoked": True}
    assert lines["bluesky"]["revoked"] is False and "connected while" in lines["bluesky"]["revocation"]
    assert lines["linkedin"]["revoked"] is False


def test_without_the_platforms_set_up_the_audit_says_what_was_not_revoked_and_what_is_not_offered(
        sessions: sessionmaker[Session], deleting: ConnectRuntime, users: dict[str, int]) -> None:
    """The real revocation on a server where X is not set up: X's token could not be revoked
    (false, and why), LinkedIn offers apps no revocation (not offered)."""
    done = delete_account(deleting, users["ada"], "ada@example.com", actor="user:ada")

    assert done.accounts == {"twitter": False, "linkedin": None}
    with sessions() as session:
        deleted = session.scalars(select(AuditLog).where(AuditLog.action == "account.deleted")).one()
    assert deleted.details["accounts"] == {
        "twitter": {"revoked": False, "revocation": "X is not set up on this server: the token could not be revoked"},
        "linkedin": {"revoked": None, "revocation": "not offered by LinkedIn"}}
