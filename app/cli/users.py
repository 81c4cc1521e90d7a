"""``autopilot users``, ``autopilot accounts`` and ``autopilot keys``."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app import users as user_service
from app.cli.common import (
    PlatformChoice,
    console,
    emit,
    json_option,
    parse_instant,
    session,
    settings,
)
from app.clock import utcnow
from app.crypto import TokenVault, generate_key
from app.errors import FieldError, NotFound, ValidationError
from app.models import OAuthClient, PlatformAccount, User
from app.platforms import PLATFORMS
from app.providers.base import TokenSet
from app.signin import create_link, disable_user, link_url


def settings_options(command: Any) -> Any:
    """Every user setting as an option; an option left out is left unchanged."""
    options = [
        click.option("--name", help="Display name."),
        click.option("--timezone", help="IANA time zone, e.g. America/New_York."),
        click.option("--platform", "platforms", multiple=True, metavar="PLATFORM=HH:MM[,HH:MM]",
                     help="A preferred platform and its local posting times; repeat per platform."),
        click.option("--frequency", help="Posts per week per platform (1-14)."),
        click.option("--voice", help="Brand voice, e.g. professional."),
        click.option("--creativity", help="Creativity level from 0.0 to 1.0."),
        click.option("--topic", "topics", multiple=True, help="A topic to research; repeat for several."),
        click.option("--language", help="Two-letter language code (en)."),
        click.option("--country", help="Two-letter country code for research (us)."),
        click.option("--autonomous/--no-autonomous", default=None, help="Opt in to daily autopilot."),
        click.option("--approval/--no-approval", default=None,
                     help="Generated posts wait for approval instead of publishing."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _changes(opts: dict[str, Any]) -> dict[str, Any]:
    """Turn the given options into raw settings for validation (absent ones are left out)."""
    changes: dict[str, Any] = {}
    simple = {"timezone": "timezone", "frequency": "content_frequency", "voice": "brand_voice",
              "creativity": "creativity_level", "language": "language", "country": "country",
              "autonomous": "enable_autonomous_mode", "approval": "require_approval"}
    for option, field in simple.items():
        if opts.get(option) is not None:
            changes[field] = opts[option]
    if opts.get("topics"):
        changes["topics"] = list(opts["topics"])
    if opts.get("platforms"):
        times: dict[str, str] = {}
        for item in opts["platforms"]:
            platform, sep, value = item.partition("=")
            if not sep:
                raise ValidationError([FieldError("platform", item, "expected PLATFORM=HH:MM[,HH:MM]")])
            times[platform.strip().lower()] = value
        changes["preferred_platforms"] = list(times)
        changes["posting_times"] = times
    return changes


def describe(user: User) -> dict[str, Any]:
    """A user as plain data. Tokens are never part of it."""
    s = user.settings
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "settings": {
            "enable_autonomous_mode": s.enable_autonomous_mode,
            "timezone": s.timezone,
            "preferred_platforms": s.preferred_platforms,
            "content_frequency": s.content_frequency,
            "posting_times": s.posting_times,
            "brand_voice": s.brand_voice,
            "creativity_level": s.creativity_level,
            "topics": s.topics,
            "language": s.language,
            "country": s.country,
            "require_approval": s.require_approval,
        },
        "accounts": [
            {"platform": a.platform, "handle": a.handle, "status": a.status,
             "expires_at": a.expires_at}
            for a in user.accounts
        ],
    }


def _print_user(data: dict[str, Any]) -> None:
    table = Table(title=data["email"], show_header=False)
    table.add_row("id", str(data["id"]))
    table.add_row("name", data["name"] or "")
    for key, value in data["settings"].items():
        table.add_row(key, str(value))
    for account in data["accounts"]:
        table.add_row(f"account {account['platform']}", f"{account['handle'] or ''} ({account['status']})")
    console().print(table)


@click.group()
def users() -> None:
    """Create, change and inspect users and their autopilot settings."""


@users.command()
@click.argument("email")
@settings_options
@json_option
def create(email: str, as_json: bool, name: str | None, **opts: Any) -> None:
    """Create a user. Bad settings exit non-zero naming the field; nothing is written."""
    with session() as s:
        user = user_service.create_user(s, email, _changes(opts), name=name)
        data = describe(user)
    emit(data, as_json, _print_user)


@users.command()
@click.argument("email")
@settings_options
@json_option
def update(email: str, as_json: bool, name: str | None, **opts: Any) -> None:
    """Change some settings of a user; the result is validated as a whole."""
    with session() as s:
        user = user_service.update_user(s, email, _changes(opts), name=user_service.KEEP_NAME if name is None else name)
        data = describe(user)
    emit(data, as_json, _print_user)


@users.command()
@click.argument("email")
@json_option
def show(email: str, as_json: bool) -> None:
    """Show a user's settings and connected accounts."""
    with session() as s:
        data = describe(user_service.get_user(s, email))
    emit(data, as_json, _print_user)


@users.command()
@click.argument("email")
def invite(email: str) -> None:
    """Print a one-time portal sign-in link for EMAIL (valid 15 minutes; nothing is emailed).

    For deployments without SMTP and for onboarding: send the link to the user yourself.
    """
    config = settings()
    with session() as s:
        token = create_link(s, config, email, now=utcnow(), created_by="cli")
        if token is None:
            raise NotFound(f"no active user with email {email.strip()!r} (create it with `autopilot users create`)")
    click.echo(link_url(config, token))


@users.command()
@click.argument("email")
@click.option("--enable", is_flag=True, help="Let a disabled user sign in again.")
def disable(email: str, enable: bool) -> None:
    """Disable a user: no portal sign-in, and every open portal session ends at once."""
    with session() as s:
        disable_user(s, email, disabled=not enable, actor="cli")
    click.echo(f"user {email.strip().lower()} {'enabled' if enable else 'disabled'}")


@users.command(name="list")
@json_option
def list_users(as_json: bool) -> None:
    """List every user with their main settings."""
    with session() as s:
        found = s.scalars(select(User).options(selectinload(User.accounts)).order_by(User.email)).unique()
        data = [describe(u) for u in found]

    def render(rows: list[dict[str, Any]]) -> None:
        table = Table("email", "autonomous", "timezone", "platforms", "frequency", "accounts")
        for row in rows:
            st = row["settings"]
            table.add_row(row["email"], "yes" if st["enable_autonomous_mode"] else "no", st["timezone"],
                          " ".join(f"{p}@{','.join(st['posting_times'].get(p, []))}" for p in st["preferred_platforms"]),
                          str(st["content_frequency"]), " ".join(a["platform"] for a in row["accounts"]))
        console().print(table)

    emit(data, as_json, render)


@click.group()
def accounts() -> None:
    """Connect platform accounts (tokens are encrypted before they are stored)."""


@accounts.command()
@click.option("--user", "email", required=True, help="The user's email.")
@click.option("--platform", required=True, type=PlatformChoice(), help="The platform's key.")
@click.option("--access-token", required=True, envvar="AUTOPILOT_ACCESS_TOKEN",
              help="OAuth access token (or set AUTOPILOT_ACCESS_TOKEN to keep it out of shell history).")
@click.option("--refresh-token", envvar="AUTOPILOT_REFRESH_TOKEN", help="OAuth refresh token.")
@click.option("--expires-at", help="Access token expiry, ISO 8601 with offset.")
@click.option("--handle", help="The account's handle, for display.")
@click.option("--external-id", help="The account's id on the platform: "
              + "; ".join(f"{p.display_name}: {p.external_id_help}" for p in PLATFORMS.values()) + ".")
@json_option
def connect(email: str, platform: str, access_token: str, refresh_token: str | None,
            expires_at: str | None, handle: str | None, external_id: str | None, as_json: bool) -> None:
    """Store a user's platform account; replaces the tokens of an existing one."""
    expiry = parse_instant("expires_at", expires_at) if expires_at else None
    tokens = TokenSet(access_token=access_token, refresh_token=refresh_token, expires_at=expiry)
    vault = TokenVault.from_settings(settings())
    with session() as s:
        account = user_service.connect_account(s, vault, email, platform.strip().lower(), tokens,
                                               handle=handle, external_id=external_id, now=utcnow())
        data = {"user": email, "platform": account.platform, "handle": account.handle,
                "status": account.status, "expires_at": account.expires_at}
    emit(data, as_json, lambda d: click.echo(f"connected {d['platform']} for {d['user']} ({d['status']})"))


def _connected(account: PlatformAccount, email: str, as_json: bool) -> None:
    data = {"user": email, "platform": account.platform, "handle": account.handle, "status": account.status,
            "server": account.service_url}
    emit(data, as_json, lambda d: click.echo(f"connected {d['platform']} {d['handle']} for {d['user']} ({d['status']})"))


@accounts.command(name="connect-app-password")
@click.option("--user", "email", required=True, help="The user's email.")
@click.option("--handle", required=True, help="The account's handle, e.g. alice.bsky.social.")
@click.option("--app-password", required=True, envvar="AUTOPILOT_APP_PASSWORD", prompt=True, hide_input=True,
              help="An app password made in the account's settings (prompted, or AUTOPILOT_APP_PASSWORD).")
@json_option
def connect_app_password(email: str, handle: str, app_password: str, as_json: bool) -> None:
    """Connect a Bluesky account with its handle and an app password (only the session is stored)."""
    from app.runtime import get_runtime
    from app.workflows.connect import connect_with_app_password

    _connected(connect_with_app_password(get_runtime(), email, handle, app_password), email, as_json)


@accounts.command(name="connect-instance")
@click.option("--user", "email", required=True, help="The user's email.")
@click.option("--instance", required=True, help="The Mastodon instance's domain, e.g. mastodon.social.")
@json_option
def connect_instance(email: str, instance: str, as_json: bool) -> None:
    """Connect a Mastodon account: open the printed address, approve, paste the code shown."""
    from app.runtime import get_runtime
    from app.workflows.connect import finish_instance_oauth, start_instance_oauth

    runtime = get_runtime()
    authorization = start_instance_oauth(runtime, instance)
    click.echo(f"Open this address, sign in and approve:\n{authorization.authorize_url}", err=True)
    code = click.prompt("Code shown by the instance", hide_input=True, err=True)
    _connected(finish_instance_oauth(runtime, email, authorization, code), email, as_json)


@click.group()
def keys() -> None:
    """Token encryption keys."""


@keys.command()
def generate() -> None:
    """Print a new key for TOKEN_ENCRYPTION_KEYS (put it first; keep old keys after it)."""
    click.echo(generate_key())


@keys.command()
def rotate() -> None:
    """Re-encrypt every stored token with the newest key in TOKEN_ENCRYPTION_KEYS."""
    vault = TokenVault.from_settings(settings())
    count = 0
    with session() as s:
        for account in s.scalars(select(PlatformAccount)):
            account.access_token_encrypted = vault.rotate(account.access_token_encrypted)
            if account.refresh_token_encrypted:
                account.refresh_token_encrypted = vault.rotate(account.refresh_token_encrypted)
            count += 1
        for client in s.scalars(select(OAuthClient)):
            client.client_secret_encrypted = vault.rotate(client.client_secret_encrypted)
    click.echo(f"re-encrypted the tokens of {count} account(s)")
