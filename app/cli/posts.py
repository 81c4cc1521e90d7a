"""``autopilot posts``: list, show, schedule one-off posts, approve, cancel, and recover now."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click
import dramatiq
from rich.table import Table
from sqlalchemy import select

import actors
from actors.liveness import probe_for
from actors.messages import send
from app import posts as post_service
from app.broker import drain
from app.cli.common import (
    PlatformChoice,
    console,
    emit,
    json_option,
    parse_instant,
    session,
    settings,
)
from app.cli.schedule import IN_PROCESS_POLL_MS
from app.clock import utcnow
from app.errors import FieldError, ValidationError
from app.models import Post, PostStatus, User
from app.providers.sandbox import is_sandbox_id
from app.runtime import get_runtime
from app.users import get_user
from app.workflows.recovery import recover_posts


def describe(post: Post, user: User, now: datetime | None = None) -> dict[str, Any]:
    """A post as plain data, with its time in UTC and in the user's own zone, and why it is late."""
    zone = user.settings.timezone if user.settings else "UTC"
    late = post_service.why_late(post, now or utcnow())
    local = post.scheduled_at.astimezone(ZoneInfo(zone))
    external = post.external_id
    return {
        "id": post.id,
        "user": user.email,
        "platform": post.platform,
        "status": post.status,
        "origin": post.origin,
        "topic": post.topic,
        "text": post.text,
        "scheduled_at": post.scheduled_at,
        "scheduled_local": local.isoformat(),
        "timezone": zone,
        "review_reason": post.review_reason,
        "last_error": post.last_error,
        "attempts": post.attempts,
        "published_at": post.published_at,
        "external_id": external,
        "simulated": is_sandbox_id(external),
        "late": {"why": late[0], "since": late[1]} if late else None,
    }


def _external(data: dict[str, Any]) -> str:
    if not data["external_id"]:
        return ""
    return f"{data['external_id']} (sandbox (simulated))" if data["simulated"] else data["external_id"]


def _late(data: dict[str, Any]) -> str:
    late = data["late"]
    return f"{late['why']}, since {late['since']:%H:%M:%S} UTC" if late else ""


def _when(data: dict[str, Any]) -> str:
    local = data["scheduled_local"][:16].replace("T", " ")
    return f"{data['scheduled_at']:%Y-%m-%d %H:%M} UTC ({local} {data['timezone']})"


def _print_post(data: dict[str, Any]) -> None:
    table = Table(title=f"post {data['id']}", show_header=False)
    table.add_row("user", data["user"])
    table.add_row("platform", data["platform"])
    table.add_row("status", data["status"])
    table.add_row("scheduled", _when(data))
    table.add_row("origin", data["origin"])
    if data["topic"]:
        table.add_row("topic", data["topic"])
    if data["late"]:
        table.add_row("late", _late(data))
    if data["review_reason"]:
        table.add_row("review reason", data["review_reason"])
    if data["last_error"]:
        table.add_row("last error", data["last_error"])
    if data["attempts"]:
        table.add_row("attempts", str(data["attempts"]))
    if data["published_at"]:
        table.add_row("published", f"{data['published_at']:%Y-%m-%d %H:%M:%S} UTC")
    if data["external_id"]:
        table.add_row("external id", _external(data))
    table.add_row("text", data["text"])
    console().print(table)


@click.group()
def posts() -> None:
    """Inspect posts, schedule one-off posts, approve reviewed ones, cancel."""


@posts.command(name="list")
@click.option("--user", "email", help="Only this user's posts.")
@click.option("--status", help=f"Only posts in this status ({', '.join(s.value for s in PostStatus)}).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most this many.")
@json_option
def list_posts(email: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """Posts by scheduled time, newest first."""
    if status is not None and status not in {s.value for s in PostStatus}:
        raise ValidationError([FieldError("status", status, f"known: {', '.join(s.value for s in PostStatus)}")])
    with session() as s:
        query = select(Post, User).join(User, Post.user_id == User.id)
        if email:
            query = query.where(Post.user_id == get_user(s, email).id)
        if status:
            query = query.where(Post.status == status)
        rows = s.execute(query.order_by(Post.scheduled_at.desc(), Post.id.desc()).limit(limit)).all()
        now = utcnow()
        data = [describe(post, user, now) for post, user in rows]

    def render(items: list[dict[str, Any]]) -> None:
        table = Table("id", "user", "platform", "status", "scheduled (UTC)", "local", "late / reason / error",
                      "external id", "text")
        for d in items:
            problem = " / ".join(x for x in (_late(d), d["review_reason"], d["last_error"]) if x)
            text = d["text"] if len(d["text"]) <= 50 else d["text"][:47] + "..."
            table.add_row(str(d["id"]), d["user"], d["platform"], d["status"], f"{d['scheduled_at']:%Y-%m-%d %H:%M}",
                          f"{d['scheduled_local'][:16].replace('T', ' ')} {d['timezone']}", problem,
                          _external(d), text)
        console(piped_width=180).print(table)

    emit(data, as_json, render)


@posts.command()
@click.argument("post_id", type=int)
@json_option
def show(post_id: int, as_json: bool) -> None:
    """Everything about one post: status, why it waits, its last error, when it goes out."""
    with session() as s:
        post = post_service.get_post(s, post_id)
        data = describe(post, post.user)
    emit(data, as_json, _print_post)


@posts.command(name="schedule")
@click.option("--user", "email", required=True, help="The user's email.")
@click.option("--platform", required=True, type=PlatformChoice(), help="The platform's key.")
@click.option("--at", "at", required=True, help="When, ISO 8601 with offset, e.g. 2026-12-01T09:00:00+01:00.")
@click.option("--text", required=True, help="The post's text (checked against the platform's limit).")
@json_option
def schedule_post(email: str, platform: str, at: str, text: str, as_json: bool) -> None:
    """Schedule a one-off post. Bad input exits 2 naming the field; nothing is written."""
    when = parse_instant("at", at)
    with session() as s:
        user = get_user(s, email)
        post = post_service.create_one_off(s, user, platform.strip().lower(), when, text, now=utcnow())
        data = describe(post, user)
    emit(data, as_json, lambda d: click.echo(f"scheduled post {d['id']} on {d['platform']} for {_when(d)}"))


@posts.command()
@click.argument("post_id", type=int)
@click.option("--at", "at", help="A new time, ISO 8601 with offset (default: keep it, or now if past).")
@click.option("--text", help="Replace the text before it goes out.")
@json_option
def approve(post_id: int, at: str | None, text: str | None, as_json: bool) -> None:
    """Send a reviewed (or failed) post back to the schedule, optionally edited or moved."""
    when = parse_instant("at", at) if at else None
    with session() as s:
        post = post_service.approve(s, post_id, now=utcnow(), at=when, text=text)
        data = describe(post, post.user)
    emit(data, as_json, lambda d: click.echo(f"approved post {d['id']}: scheduled for {_when(d)}"))


@posts.command()
@click.argument("post_id", type=int)
@json_option
def cancel(post_id: int, as_json: bool) -> None:
    """Cancel a post that has not started publishing."""
    with session() as s:
        post = post_service.cancel(s, post_id)
        data = describe(post, post.user)
    emit(data, as_json, lambda d: click.echo(f"cancelled post {d['id']}"))


@posts.command()
@json_option
def recover(as_json: bool) -> None:
    """Recover now: re-send posts whose message was lost, reconcile interrupted publishes.

    What the minute job's ``recover_lost_posts`` step does, run at once whatever the slot. With
    Redis, the broker is asked which messages are alive; with the in-process broker nothing can
    be asked, so only posts 3 minutes past their time are presumed lost, and they are published
    here, in this process.
    """
    runtime = get_runtime()
    broker = actors.setup(settings())
    probe = probe_for(broker, runtime.settings.worker_silence_seconds) if settings().redis_url else None
    now = runtime.now()
    recovery = recover_posts(runtime, now, probe)
    if settings().redis_url:
        send(recovery.resent, runtime.now())
    elif recovery.resent:
        _publish_in_process(broker, recovery.resent)
    data = {"at": now, **recovery.counts(), "broker": "redis" if probe is not None else "in-process",
            "resent_posts": [{"id": post_id, "due_at": batch.due_at}
                             for batch in recovery.resent for post_id in batch.post_ids]}

    def render(d: dict[str, Any]) -> None:
        click.echo(f"recovered at {d['at']:%Y-%m-%d %H:%M:%S} UTC: {d['resent']} lost message(s) re-sent, "
                   f"{d['reconciled']} interrupted publish(es) found on the platform and recorded, "
                   f"{d['reviewed']} sent to review, {d['alive']} still held by a live worker (left alone)")
        for post in d["resent_posts"]:
            click.echo(f"  post {post['id']}: re-sent, due {post['due_at']:%Y-%m-%d %H:%M:%S} UTC")

    emit(data, as_json, render)


def _publish_in_process(broker: Any, intents: list[Any]) -> None:
    """The in-process broker: work the re-sent messages here until every queue is empty."""
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=IN_PROCESS_POLL_MS)
    worker.start()
    try:
        send(intents, utcnow(), broker=broker)
        drain(broker)
    finally:
        worker.stop()
