"""The weekly report: last week's figures and recommendations, remembered as an insight.

The Sunday 08:00 UTC job (:data:`WEEKLY_REPORT`) fans out one execution per opted-in user; each run
(:func:`weekly_report_for_user`) loads the user's posts and workflow runs of the week and the
one before, computes the report with :mod:`app.report_math`, and stores it as a
``MemoryEntry(kind="insight", key="weekly:<date>")``. Re-running the week rewrites that entry
instead of adding another, and emails it at most once. The next daily generation reads the
recommendations back with :func:`latest_insights`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.advice import applied_since
from app.audit import record
from app.errors import NotFound
from app.jobs.spec import PeriodicJob
from app.models import (
    AccountStatus,
    AuditLog,
    MemoryEntry,
    PlatformAccount,
    User,
    WorkflowExecution,
)
from app.notifications import send_email, weekly_report_by_email
from app.performance import post_records
from app.platforms import display_name
from app.queues import Queue
from app.report_math import ExecutionRecord, WeeklyReport, build_report
from app.runtime import Runtime
from app.users import opted_in_user_ids
from app.workflows.executions import fan_out_step, run_execution

WORKFLOW = "weekly_report"
#: The MemoryEntry kind of weekly reports.
INSIGHT_KIND = "insight"
#: The length of a report's period, ending at the slot it runs for.
REPORT_PERIOD = timedelta(days=7)
#: Weekly reports whose recommendations go into the daily generation prompt.
DEFAULT_INSIGHT_WEEKS = 2


def report_key(week_end: datetime) -> str:
    """The MemoryEntry key of the report for the week ending at ``week_end``."""
    return f"weekly:{week_end.date().isoformat()}"


def weekly_report_for_user(runtime: Runtime, user_id: int, week_end: datetime) -> MemoryEntry:
    """Build and store the report of [week_end - 7 days, week_end); email it if SMTP is set up.

    Idempotent: the entry with the same key is updated, and the email is sent once per key
    (a failed send raises after the report is stored, so a retry sends it again).
    """
    start = week_end - REPORT_PERIOD
    previous_start = start - REPORT_PERIOD
    key = report_key(week_end)
    # The figures are read-only scans: they go to the replica when one is configured (a week
    # closed hours ago is long replicated); the entry is written on the primary under the lock.
    with runtime.read_session_factory() as reads:
        user = reads.get(User, user_id)
        if user is None:
            raise NotFound(f"no user with id {user_id}")
        timezone = user.settings.timezone if user.settings else "UTC"
        frequency = user.settings.content_frequency if user.settings else 3
        posts = post_records(reads, user_id, previous_start, week_end, timezone)
        runs = reads.execute(
            select(WorkflowExecution.status, WorkflowExecution.workflow)
            .where(WorkflowExecution.user_id == user_id, WorkflowExecution.created_at >= start,
                   WorkflowExecution.created_at < week_end)
            .order_by(WorkflowExecution.id)
        ).all()
        applied = applied_since(reads, user_id, start, week_end)
        reauth = reads.scalars(
            select(PlatformAccount.platform)
            .where(PlatformAccount.user_id == user_id, PlatformAccount.status != AccountStatus.ACTIVE)
        ).all()

    with runtime.session_factory() as session, session.begin():
        # Serialises two runs for the same user (a manual trigger racing the tick), which
        # could otherwise both find no entry and insert one each. NO KEY UPDATE leaves
        # inserts of the user's posts and executions (KEY SHARE on the user) unblocked.
        email = session.scalar(select(User.email).where(User.id == user_id).with_for_update(key_share=True))
        if email is None:
            raise NotFound(f"no user with id {user_id}")
        report = build_report(
            [p for p in posts if p.scheduled_at >= start],
            [ExecutionRecord(status=status, workflow=workflow) for status, workflow in runs],
            period_start=start,
            period_end=week_end,
            previous_posts=[p for p in posts if p.scheduled_at < start],
            frequency=frequency,
            reauth_platforms=reauth,
            applied=applied,
        )
        entry = _store(session, user_id, key, report.as_content(), now=runtime.now())
        send = (runtime.settings.smtp_host is not None and weekly_report_by_email(session, user_id)
                and not _already_sent(session, user_id, key))

    if send:
        _email(runtime, user_id, email, key, report)
    return entry


def latest_insights(session: Session, user_id: int, limit: int = DEFAULT_INSIGHT_WEEKS) -> list[str]:
    """Recommendation sentences of the user's ``limit`` latest weekly reports, newest first.

    A sentence repeated by several reports appears once.
    """
    contents = session.scalars(
        select(MemoryEntry.content)
        .where(MemoryEntry.user_id == user_id, MemoryEntry.kind == INSIGHT_KIND,
               MemoryEntry.key.like("weekly:%"))
        .order_by(MemoryEntry.key.desc())
        .limit(limit)
    ).all()
    sentences: dict[str, None] = {}
    for content in contents:
        for sentence in (content or {}).get("recommendations") or []:
            sentences.setdefault(str(sentence), None)
    return list(sentences)


def _store(session: Session, user_id: int, key: str, content: dict[str, Any], *, now: datetime) -> MemoryEntry:
    entry = session.scalar(
        select(MemoryEntry).where(MemoryEntry.user_id == user_id, MemoryEntry.kind == INSIGHT_KIND,
                                  MemoryEntry.key == key)
    )
    details = {"key": key, "recommendations": len(content["recommendations"])}
    if entry is None:
        entry = MemoryEntry(user_id=user_id, kind=INSIGHT_KIND, key=key, content=content, created_at=now)
        session.add(entry)
        record(session, "report.created", user_id=user_id, details=details)
    else:
        entry.content = content
        record(session, "report.updated", user_id=user_id, details=details)
    session.flush()
    return entry


def _already_sent(session: Session, user_id: int, key: str) -> bool:
    sent = session.scalars(
        select(AuditLog.details)
        .where(AuditLog.user_id == user_id, AuditLog.action == "report.sent")
    ).all()
    return any((details or {}).get("key") == key for details in sent)


def _email(runtime: Runtime, user_id: int, to: str, key: str, report: WeeklyReport) -> None:
    subject = (f"Your weekly content report: {report.period_start:%d %b} - "
               f"{report.period_end - timedelta(days=1):%d %b %Y}")
    send_email(runtime.settings, to, subject, render_email(report))
    with runtime.session_factory() as session, session.begin():
        record(session, "report.sent", user_id=user_id, details={"key": key})


def render_email(report: WeeklyReport) -> str:
    """The plain-text email body: summary, recommendations, best posts by engagement rate and,
    for the platforms without impressions, by interactions (platforms by their display name:
    the stored report keeps the registry's keys, the user reads "X")."""
    lines = [report.summary, ""]
    if report.recommendations:
        lines.append("Recommendations:")
        lines += [f"- {sentence}" for sentence in report.recommendations]
        lines.append("")
    if report.applied_advice:
        lines.append("Advice you applied:")
        lines += [f"- {sentence}" for sentence in report.applied_advice]
        lines.append("")
    if report.top:
        lines.append("Best posts by engagement rate:")
        lines += [f"- {display_name(p['platform'])} {p['published_at'][:10]}: {p['engagement_rate']:.1%} "
                  f"of {p['impressions']:,} impressions. {p['excerpt']}" for p in report.top]
        lines.append("")
    if report.top_by_interactions:
        # Platforms without impressions (Bluesky, Mastodon): ranked by interactions, never by a rate.
        lines.append("Most interactions where no impressions are reported:")
        lines += [f"- {display_name(p['platform'])} {p['published_at'][:10]}: {p['interactions']:,} "
                  f"interactions (likes, reposts, replies). {p['excerpt']}" for p in report.top_by_interactions]
    return "\n".join(lines).rstrip() + "\n"


def weekly_report(runtime: Runtime, execution_id: int, message_id: str | None = None) -> WorkflowExecution | None:
    """The per-user step: one user's report for the week ending at the execution's slot, once."""
    def body(session: Session, execution: WorkflowExecution) -> dict[str, Any]:
        assert execution.user_id is not None and execution.slot is not None
        entry = weekly_report_for_user(runtime, execution.user_id, execution.slot)
        return {"report": entry.key, "recommendations": len(entry.content.get("recommendations", []))}

    return run_execution(runtime.session_factory, execution_id, message_id=message_id, clock=runtime.now,
                         body=body)


WEEKLY_REPORT = PeriodicJob(
    # Sunday is written "0,7": Periodiq's validate() compares isoweekday() (Sunday = 7)
    # while next_valid_date() uses Sunday = 0, so a plain "0" would never fire.
    WORKFLOW, "0 8 * * 0,7", Queue.REPORTS,
    "Write each user's weekly performance report with recommendations",
    steps=(fan_out_step("One report per opted-in user", lambda session, now: opted_in_user_ids(session)),),
    catch_up_setting="weekly_catch_up_hours",
    per_user=weekly_report,
)
