"""``autopilot doctor``: is every configured provider, the database and Redis healthy?"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
from rich.table import Table
from sqlalchemy import select, text

from app.cli.common import console, emit, json_option, settings
from app.clock import utcnow
from app.config import Settings
from app.models import AccountStatus, PlatformAccount, User
from app.platforms import get_platform
from app.providers.errors import AuthError, ModelNotServed, ProviderError, RateLimited

OK, OFFLINE, WARNING, ERROR = "ok", "offline", "warning", "error"

#: Per provider role that is not a platform: the variables that switch the real provider on.
CREDENTIALS = {
    "research": ("SERPER_API_KEY",),
    "generation": ("OPENAI_API_KEY",),
    "images": ("OPENAI_API_KEY", "OPENAI_IMAGE_MODEL"),
}
#: Per provider role that is not a platform: the base URL variable, named when unreachable.
BASE_URLS = {
    "research": "SERPER_BASE_URL",
    "generation": "OPENAI_BASE_URL",
    "images": "OPENAI_BASE_URL",
}
#: Per role served by a named model: the variable naming it, when the server does not offer it.
MODELS = {
    "generation": "OPENAI_MODEL",
    "images": "OPENAI_IMAGE_MODEL",
}
#: A publishing role's name: ``publish:<platform key>``.
PUBLISH_ROLE = "publish:"


def credentials_of(role: str) -> tuple[str, ...]:
    """The variables that switch ``role``'s real provider on (a platform's from its registry entry)."""
    if role.startswith(PUBLISH_ROLE):
        return tuple(name.upper() for name in get_platform(role.removeprefix(PUBLISH_ROLE)).switch_settings)
    return CREDENTIALS[role]


def base_url_of(role: str) -> str:
    """The variable to check when ``role``'s service is unreachable."""
    if role.startswith(PUBLISH_ROLE):
        urls = get_platform(role.removeprefix(PUBLISH_ROLE)).url_settings
        return urls[0].upper() if urls else "the account's own server address"
    return BASE_URLS[role]


def _result(check: str, status: str, detail: str) -> dict[str, str]:
    return {"check": check, "status": status, "detail": detail}


def _advice(role: str, exc: Exception, *, account: bool = False) -> str:
    """What went wrong, and what to do about it."""
    message = str(exc)
    if isinstance(exc, AuthError):
        if account:
            return (f"token rejected: {message}; its owner reconnects it on the portal's Accounts page "
                    "(or an operator with `autopilot accounts connect`)")
        variable = credentials_of(role)[0]
        return f"{variable} rejected ({message}): check the key"
    if isinstance(exc, RateLimited):
        return f"rate limited ({message}): the credentials work, try again later"
    if isinstance(exc, ModelNotServed) and role in MODELS:
        return f"{message}: check {MODELS[role]}"
    if isinstance(exc, ProviderError):
        return f"{message} (check {base_url_of(role)} and the service's status)"
    return f"{type(exc).__name__}: {message}"


def _check_provider(role: str, check: Callable[[], str]) -> dict[str, str]:
    try:
        return _result(role, OK, check())
    except Exception as exc:  # a doctor reports every failure, whatever its class
        return _result(role, ERROR, _advice(role, exc))


def _check_database(config: Settings) -> tuple[list[dict[str, str]], bool]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from app.db import get_engine
    from app.migrate import alembic_config

    results: list[dict[str, str]] = []
    try:
        with get_engine(config.database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
            current = MigrationContext.configure(conn).get_current_revision()
    except Exception as exc:
        return [_result("database", ERROR, f"cannot query the database ({type(exc).__name__}: {exc}); "
                                           "check DATABASE_URL and that the server is up")], False
    results.append(_result("database", OK, f"SELECT 1 answered ({config.database_url.split(':', 1)[0]})"))
    head = ScriptDirectory.from_config(alembic_config(config.database_url)).get_current_head()
    if current == head:
        results.append(_result("migrations", OK, f"at head ({head})"))
    else:
        results.append(_result("migrations", ERROR,
                               f"database at {current or 'no revision'}, code expects {head}: "
                               "run `autopilot db upgrade`"))
    return results, True


def _check_redis(url: str) -> dict[str, str]:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        client.ping()
        return _result("redis", OK, "PING answered")
    except Exception as exc:
        return _result("redis", ERROR, f"cannot reach Redis ({type(exc).__name__}: {exc}); "
                                       "check REDIS_URL and that the server is up")


def _check_accounts(role: str, publisher: Any, accounts: list[tuple[PlatformAccount, str]],
                    credentials: Callable[[PlatformAccount], Any]) -> list[dict[str, str]]:
    if not accounts:
        return [_result(role, OK, f"{publisher.name} configured; no active accounts to check")]
    results = []
    for account, email in accounts:
        label = f"{role} {account.handle or email}"
        try:
            who = publisher.check_account(credentials(account))
            results.append(_result(label, OK, f"token works for {who} ({email})"))
        except Exception as exc:
            results.append(_result(label, ERROR, f"{email}: {_advice(role, exc, account=True)}"))
    return results


def _platform_checks(target: str, config: Settings, now: datetime) -> list[dict[str, str]]:
    """A platform's own extra checks (its registry entry's ``doctor_checks``)."""
    module, name = target.split(":")
    return [_result(check, status, detail)
            for check, status, detail in getattr(importlib.import_module(module), name)(config, now)]


def _check_holds(factory: Any, now: datetime) -> list[dict[str, str]]:
    """Providers paused for an operator problem (a usage cap, exhausted credits or quota)."""
    from app.models import ProviderHold

    try:
        with factory() as s:
            holds = s.scalars(select(ProviderHold).where(ProviderHold.until > now)
                              .order_by(ProviderHold.provider)).all()
    except Exception:  # noqa: BLE001 - an unmigrated database: the migrations check says so
        return []
    return [_result(f"paused:{h.provider}", ERROR,
                    f"{h.kind} since {h.since:%Y-%m-%d %H:%M}Z, next try after {h.until:%H:%M}Z: {h.detail}")
            for h in holds]


def diagnose(config: Settings, now: datetime | None = None) -> list[dict[str, str]]:
    """Every check, in order: database, Redis, then each provider."""
    from app.crypto import TokenVault
    from app.db import get_engine, make_session_factory
    from app.providers.registry import build_providers

    now = now or utcnow()

    results, db_ok = _check_database(config)
    if config.redis_url:
        results.append(_check_redis(config.redis_url))
    else:
        results.append(_result("redis", OFFLINE, "REDIS_URL not set: in-process broker (set REDIS_URL for workers)"))

    factory = make_session_factory(get_engine(config.database_url))
    providers = build_providers(config, factory)
    roles: tuple[tuple[str, Any], ...] = (("research", providers.research), ("generation", providers.generation))
    for role, provider in roles:
        if provider.offline:
            results.append(_result(role, OFFLINE, f"simulated; set {credentials_of(role)[0]} to use the real service"))
        else:
            results.append(_check_provider(role, provider.check))
    if providers.images is None:
        results.append(_result("images", OFFLINE, "off: posts carry only their owners' library images; "
                                                  "set OPENAI_IMAGE_MODEL (with OPENAI_API_KEY) to illustrate the others"))
    else:
        results.append(_check_provider("images", providers.images.check))

    if db_ok:
        results.extend(_check_holds(factory, now))
    vault: TokenVault | None = None
    for platform, publisher in providers.publishers.items():
        role = f"publish:{platform}"
        if publisher.offline:  # type: ignore[attr-defined]
            results.append(_result(role, OFFLINE, f"sandbox (simulated); set {' and '.join(credentials_of(role))} "
                                                  "to publish for real"))
            continue
        extra = get_platform(platform).doctor_checks
        if extra is not None:
            results.extend(_platform_checks(extra, config, now))
        if not db_ok:
            results.append(_result(role, ERROR, "cannot list accounts: the database is unreachable"))
            continue
        if vault is None:
            try:
                vault = TokenVault.from_settings(config)
            except Exception as exc:
                results.append(_result(role, ERROR, f"cannot decrypt tokens ({exc}): check TOKEN_ENCRYPTION_KEYS"))
                continue
        with factory() as s:
            rows = s.execute(
                select(PlatformAccount, User.email).join(User, PlatformAccount.user_id == User.id)
                .where(PlatformAccount.platform == platform, PlatformAccount.status == AccountStatus.ACTIVE)
                .order_by(User.email)).all()
            results.extend(_check_accounts(role, publisher, list(rows), vault.credentials))
    return results


@click.command()
@json_option
def doctor(as_json: bool) -> None:
    """Check the database, Redis and every configured provider; exit 1 if anything is unhealthy."""
    results = diagnose(settings())
    healthy = all(r["status"] != ERROR for r in results)

    def render(rows: list[dict[str, str]]) -> None:
        table = Table("check", "status", "detail", title="autopilot doctor")
        colour = {OK: "green", OFFLINE: "yellow", WARNING: "yellow", ERROR: "red"}
        for r in rows:
            table.add_row(r["check"], f"[{colour[r['status']]}]{r['status']}[/]", r["detail"])
        console(piped_width=200).print(table)
        click.echo("healthy" if healthy else "unhealthy: see the errors above")

    emit({"healthy": healthy, "checks": results} if as_json else results, as_json, render)
    if not healthy:
        sys.exit(1)
