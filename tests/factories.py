"""Shared factories for the tests: runtimes, users and posts, in one place (not per file).

Fixtures that build on them (``clock``, ``runtime``) are in :mod:`tests.conftest`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.crypto import TokenVault
from app.models import Post, PostStatus
from app.providers.base import Publisher, TokenSet
from app.providers.registry import Providers
from app.runtime import Runtime
from app.users import connect_account, create_user

#: Settings of the users :func:`make_users` creates: two posts a day on each of two platforms.
BUSY_USER = {
    "timezone": "America/New_York", "preferred_platforms": ["twitter", "linkedin"],
    "posting_times": {"twitter": ["09:00"], "linkedin": ["10:00", "17:00"]},
    "content_frequency": 14, "topics": ["python"], "enable_autonomous_mode": True,
}


def make_runtime(settings: Settings, sessions: sessionmaker[Session], vault: TokenVault, *,
                 clock: Callable[[], datetime], publishers: Mapping[str, Publisher] | None = None) -> Runtime:
    """A runtime on ``sessions`` with the given publishers and no research or generation."""
    providers = Providers(research=None, generation=None,  # type: ignore[arg-type]
                          publishers=dict(publishers or {}))
    return Runtime(settings=settings, session_factory=sessions, providers=providers, vault=vault, clock=clock)


def make_users(runtime: Runtime, count: int, **overrides: Any) -> list[int]:
    """``count`` opted-in users, ``user0@example.com``..., with :data:`BUSY_USER` settings."""
    ids = []
    with runtime.session_factory() as session, session.begin():
        for i in range(count):
            ids.append(create_user(session, f"user{i}@example.com", {**BUSY_USER, **overrides}).id)
    return ids


def make_user(sessions: sessionmaker[Session], vault: TokenVault, email: str = "ada@example.com", *,
              connect: Iterable[str] = ("twitter", "linkedin"),
              posting_times: Mapping[str, list[str]] | None = None,
              settings: Mapping[str, Any] | None = None) -> int:
    """One user with an account (tokens "tok"/"ref") on each ``connect`` platform.

    Unless ``settings`` are given: in Berlin, autonomous, posting on each connected platform at
    ``posting_times`` (09:00 on each by default), about postgres.
    """
    connect = tuple(connect)
    if settings is None:
        settings = {"timezone": "Europe/Berlin", "preferred_platforms": list(connect),
                    "posting_times": dict(posting_times or {p: ["09:00"] for p in connect}),
                    "topics": ["postgres"], "enable_autonomous_mode": True}
    with sessions() as session, session.begin():
        user = create_user(session, email, dict(settings))
        for platform in connect:
            connect_account(session, vault, email, platform, TokenSet("tok", "ref", None), external_id="123")
        return user.id


def add_post(sessions: sessionmaker[Session], user_id: int, at: datetime, *, platform: str = "twitter",
             status: PostStatus = PostStatus.SCHEDULED, text: str = "Shipping beats perfect.",
             **values: Any) -> int:
    """A post of ``user_id`` scheduled at ``at``; any other column through ``values``."""
    with sessions.begin() as session:
        post = Post(user_id=user_id, platform=platform, text=text, status=status, scheduled_at=at, **values)
        session.add(post)
        session.flush()
        return post.id
