"""One Settings object, read from the environment and validated at start-up.

Every malformed value raises :class:`ConfigError` naming the variable, so an
operator sees ``TOKEN_ENCRYPTION_KEYS: ...`` instead of a stack trace from deep
inside a provider an hour after deploy.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from urllib.parse import urlparse

from app.errors import ConfigError

#: The database used when ``DATABASE_URL`` is unset: a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///autopilot.db"
#: OpenAI's public API root; point it at Ollama, vLLM or a test fake.
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_SERPER_BASE_URL = "https://google.serper.dev"
DEFAULT_X_API_BASE_URL = "https://api.x.com"
DEFAULT_LINKEDIN_API_BASE_URL = "https://api.linkedin.com"
DEFAULT_LINKEDIN_OAUTH_BASE_URL = "https://www.linkedin.com"
#: LinkedIn sunsets API versions about a year after release: keep this configurable.
DEFAULT_LINKEDIN_VERSION = "202510"
#: Hours after a daily slot during which a missed run is still caught up.
DEFAULT_DAILY_CATCH_UP_HOURS = 6
#: Minutes past its scheduled time after which a post is not published stale but reviewed.
DEFAULT_STALE_GRACE_MINUTES = 60


@dataclass(frozen=True)
class Settings:
    """Everything the process can be configured with. Build it with :meth:`from_env`."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    secret_key: str = field(default="dev-insecure-secret", repr=False)
    token_encryption_keys: tuple[str, ...] = field(default=(), repr=False)
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    openai_model: str = DEFAULT_OPENAI_MODEL
    serper_api_key: str | None = field(default=None, repr=False)
    serper_base_url: str = DEFAULT_SERPER_BASE_URL
    x_api_base_url: str = DEFAULT_X_API_BASE_URL
    x_client_id: str | None = None
    x_client_secret: str | None = field(default=None, repr=False)
    linkedin_api_base_url: str = DEFAULT_LINKEDIN_API_BASE_URL
    #: LinkedIn serves OAuth (token refresh) from a different host than its REST API.
    linkedin_oauth_base_url: str = DEFAULT_LINKEDIN_OAUTH_BASE_URL
    linkedin_version: str = DEFAULT_LINKEDIN_VERSION
    linkedin_client_id: str | None = None
    linkedin_client_secret: str | None = field(default=None, repr=False)
    sentry_dsn: str | None = field(default=None, repr=False)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_sender: str = "autopilot@localhost"
    smtp_starttls: bool = True
    daily_catch_up_hours: int = DEFAULT_DAILY_CATCH_UP_HOURS
    weekly_catch_up_hours: int = 24
    stale_grace_minutes: int = DEFAULT_STALE_GRACE_MINUTES
    #: Dramatiq's Redis heartbeat: a dead worker's messages return after this many ms.
    redis_heartbeat_timeout_ms: int = 60_000
    #: Of every million Redis commands, how many also run Dramatiq's maintenance (requeueing a
    #: dead worker's messages once its heartbeat is older than the timeout).
    redis_maintenance_chance: int = 1000
    #: Read timeout of provider HTTP calls, in seconds. A publish that times out after its
    #: request was sent has an unknown outcome and is reconciled, never retried blindly.
    provider_timeout_seconds: int = 30
    #: Seconds after its instant (or its sending) before a queued post whose message is nowhere
    #: in the broker is re-sent, and before a publish whose message is gone is reconciled.
    message_grace_seconds: int = 10
    #: Seconds without a Dramatiq heartbeat after which a worker counts as dead: the messages it
    #: holds are lost to us (Dramatiq itself returns them only after its heartbeat timeout).
    worker_silence_seconds: int = 15
    x_posts_per_15_min: int = 100
    linkedin_posts_per_day: int = 150

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate settings; raise :class:`ConfigError` naming the bad variable."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        values: dict[str, object] = {}
        for f in fields(cls):
            raw = get(f.name.upper())
            if raw is None:
                continue
            values[f.name] = _parse(f.name.upper(), raw, f.type)
        settings = cls(**values)  # type: ignore[arg-type]
        settings._check()
        return settings

    def _check(self) -> None:
        _require_url("DATABASE_URL", self.database_url, {"sqlite", "postgres", "postgresql", "postgresql+psycopg2"})
        if self.redis_url is not None:
            _require_url("REDIS_URL", self.redis_url, {"redis", "rediss", "unix"})
        for name in ("OPENAI_BASE_URL", "SERPER_BASE_URL", "X_API_BASE_URL",
                     "LINKEDIN_API_BASE_URL", "LINKEDIN_OAUTH_BASE_URL"):
            _require_url(name, getattr(self, name.lower()), {"http", "https"})
        if self.sentry_dsn is not None:
            _require_url("SENTRY_DSN", self.sentry_dsn, {"http", "https"})
        for key in self.token_encryption_keys:
            _require_fernet_key(key)
        if self.database_url.startswith("postgres") and not self.token_encryption_keys:
            # The embedded default key is public: fine for a laptop demo, a leak in production.
            raise ConfigError("TOKEN_ENCRYPTION_KEYS", "", "required with a PostgreSQL DATABASE_URL "
                              "(generate one with `autopilot keys generate`)")
        if not (len(self.linkedin_version) == 6 and self.linkedin_version.isdigit()):
            raise ConfigError("LINKEDIN_VERSION", self.linkedin_version, "expected YYYYMM, e.g. 202510")
        for name in ("SMTP_PORT", "DAILY_CATCH_UP_HOURS", "WEEKLY_CATCH_UP_HOURS", "STALE_GRACE_MINUTES",
                     "X_POSTS_PER_15_MIN", "LINKEDIN_POSTS_PER_DAY", "REDIS_HEARTBEAT_TIMEOUT_MS",
                     "PROVIDER_TIMEOUT_SECONDS", "MESSAGE_GRACE_SECONDS", "WORKER_SILENCE_SECONDS",
                     "REDIS_MAINTENANCE_CHANCE"):
            if getattr(self, name.lower()) <= 0:
                raise ConfigError(name, str(getattr(self, name.lower())), "must be a positive integer")


def _parse(name: str, raw: str, type_: object) -> object:
    kind = str(type_)
    if "tuple" in kind:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(name, raw, "expected an integer") from None
    if kind == "bool":
        lowered = raw.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(name, raw, "expected true or false")
    return raw


def _require_url(name: str, value: str, schemes: set[str]) -> None:
    parsed = urlparse(value)
    if parsed.scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise ConfigError(name, _redact_url(value), f"expected a URL with scheme {allowed}")
    if parsed.scheme in {"http", "https", "redis", "rediss"} and not parsed.hostname:
        raise ConfigError(name, _redact_url(value), "the URL has no host")


def _redact_url(value: str) -> str:
    """Hide a password embedded in a URL so the error message can be logged."""
    parsed = urlparse(value)
    if parsed.password:
        return value.replace(parsed.password, "***")
    return value


def _require_fernet_key(key: str) -> None:
    try:
        raw = base64.urlsafe_b64decode(key.encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            "TOKEN_ENCRYPTION_KEYS",
            key[:4] + "...",
            "each key must be 32 url-safe base64-encoded bytes "
            "(generate one with `autopilot keys generate`)",
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests build their own with ``Settings(...)``."""
    return Settings.from_env()
