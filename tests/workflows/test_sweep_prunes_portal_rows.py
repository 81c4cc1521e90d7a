"""The quarter-hour sweep deletes expired portal sessions and sign-in links, not only the next sign-in."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.jobs.spec import Tick
from app.models import SignInLink, UserSession
from app.runtime import Runtime
from app.signin import create_link, open_session
from app.users import create_user
from app.workflows import sweep


def _live_and_expired(sessions: sessionmaker[Session], runtime: Runtime, now: datetime) -> None:
    """For one user: a session and a link opened now, and one of each opened 30 days ago (expired)
    (after: opening a session prunes what expired before it)."""
    with sessions.begin() as session:
        user = create_user(session, "ada@example.com", {"timezone": "UTC"})
        for opened, label in ((now, "new"), (now - timedelta(days=30), "old")):
            open_session(session, user, now=opened, lifetime=timedelta(hours=24), user_agent=label)
            create_link(session, runtime.settings, user.email, now=opened, created_by=label)


def test_the_sweep_job_prunes_expired_sessions_and_links(sessions: sessionmaker[Session], runtime: Runtime,
                                                         now: datetime) -> None:
    _live_and_expired(sessions, runtime, now)
    with sessions() as session:
        assert sorted(session.scalars(select(UserSession.user_agent))) == ["new", "old"]
        assert sorted(session.scalars(select(SignInLink.created_by))) == ["new", "old"]
    assert sweep.PRUNE_PORTAL_SIGNINS in sweep.SWEEP_STUCK_POSTS.steps

    assert sweep.PRUNE_PORTAL_SIGNINS.run(Tick(runtime, sweep.SWEEP_STUCK_POSTS, now, now, {})) == []

    with sessions() as session:
        assert session.scalars(select(UserSession.user_agent)).all() == ["new"]
        assert session.scalars(select(SignInLink.created_by)).all() == ["new"]
