"""``autopilot posts``: list, show, schedule one-off posts, approve and cancel."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.table import Table
from sqlalchemy import select

from app import posts as post_service
from app.cli.common import console, emit, json_option, parse_instant, session
from app.clock import utcnow
from app.errors import FieldError, ValidationError
from app.models import Post, PostStatus, User
from app.providers.sandbox import is_sandbox_id
from app.users import get_user


def describe(post: Post, user: User) -> dict[str, Any]:
    """A post as plain data, with its time in UTC and in the user's own zone."""
    zone = user.settings.timezone if user.settings else "UTC"
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
    }


def _external(data: dict[str, Any]) -> str:
    if not data["external_id"]:
        return ""
    return f"{data['external_id']} (sandbox (simulated))" if data["simulated"] else data["external_id"]


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
        data = [describe(post, user) for post, user in rows]

    def render(items: list[dict[str, Any]]) -> None:
        table = Table("id", "user", "platform", "status", "scheduled (UTC)", "local", "reason / error",
                      "external id", "text")
        for d in items:
            problem = " / ".join(x for x in (d["review_reason"], d["last_error"]) if x)
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
@click.option("--platform", required=True, help="twitter or linkedin.")
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
