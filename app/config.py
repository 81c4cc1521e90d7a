"""One Settings object, read from the environment and validated at start-up.

Every malformed value raises :class:`ConfigError` naming the variable, so an
operator sees ``TOKEN_ENCRYPTION_KEYS: ...`` instead of a stack trace from deep
inside a provider an hour after deploy.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from urllib.parse import urlparse

from app.errors import ConfigError
from app.platforms import PLATFORMS
from app.redisconn import SENTINEL_SCHEME, is_sentinel_url, parse_sentinel_url

#: The database used when ``DATABASE_URL`` is unset: a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///autopilot.db"
#: OpenAI's public API root; point it at Ollama, vLLM or a test fake.
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_SERPER_BASE_URL = "https://google.serper.dev"
DEFAULT_X_API_BASE_URL = "https://api.x.com"
#: X's consent page for OAuth 2.0 (on x.com, not on the API's host).
DEFAULT_X_AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
DEFAULT_LINKEDIN_API_BASE_URL = "https://api.linkedin.com"
DEFAULT_LINKEDIN_OAUTH_BASE_URL = "https://www.linkedin.com"
#: LinkedIn sunsets API versions about a year after release: keep this configurable, and raise
#: the default every few months (``autopilot doctor`` warns past 10 months).
DEFAULT_LINKEDIN_VERSION = "202610"
# Kept equal to app.providers.linkedin.VERSION_RE (config must not import the providers).
_LINKEDIN_VERSION_RE = re.compile(r"20\d\d(?:0[1-9]|1[0-2])(?:\.\d\d)?")
#: The media library's directory when no bucket is configured.
DEFAULT_MEDIA_DIR = "media"
#: The largest image accepted into the library (bytes) and its most pixels (LinkedIn's ceiling).
DEFAULT_MEDIA_MAX_UPLOAD_BYTES = 15 * 1024 * 1024
DEFAULT_MEDIA_MAX_UPLOAD_PIXELS = 36_152_320
#: Bluesky's hosting service (PDS) for handles whose DID document names none.
DEFAULT_BLUESKY_PDS_URL = "https://bsky.social"
#: The name an autopilot registers under on each Mastodon instance (users see it on the consent page).
DEFAULT_MASTODON_CLIENT_NAME = "Content Autopilot"
#: Hours after a daily slot during which a missed run is still caught up.
DEFAULT_DAILY_CATCH_UP_HOURS = 6
#: Minutes past its scheduled time after which a post is not published stale but reviewed.
DEFAULT_STALE_GRACE_MINUTES = 60
#: Where the users' portal is reached when ``PORTAL_BASE_URL`` is unset (``flask run``'s default).
DEFAULT_PORTAL_BASE_URL = "http://localhost:5000"
#: Hours a portal sign-in lasts when ``PORTAL_SESSION_HOURS`` is unset (two weeks).
DEFAULT_PORTAL_SESSION_HOURS = 14 * 24
#: The shortest METRICS_BEARER_TOKEN accepted: a guessable token is no boundary.
MIN_METRICS_TOKEN_CHARS = 24
#: ``autopilot check`` fails when a queue holds at least this many messages (waiting + delayed).
DEFAULT_OPS_QUEUE_DEPTH_MAX = 100
#: ``autopilot check`` fails when a job's or queue's success rate over 24 h is below this (percent).
DEFAULT_OPS_MIN_SUCCESS_RATE = 95
#: ``autopilot check`` fails when the minute job has not run for this many seconds.
DEFAULT_OPS_SCHEDULER_SILENCE_SECONDS = 120


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
    #: An image model on the same server (e.g. a GPT image model); unset: generation attaches
    #: only the user's own images, never a generated one.
    openai_image_model: str | None = None
    serper_api_key: str | None = field(default=None, repr=False)
    serper_base_url: str = DEFAULT_SERPER_BASE_URL
    x_api_base_url: str = DEFAULT_X_API_BASE_URL
    x_client_id: str | None = None
    x_client_secret: str | None = field(default=None, repr=False)
    #: Where the portal sends a user to consent (the token endpoint is ``X_API_BASE_URL``'s).
    x_authorize_url: str = DEFAULT_X_AUTHORIZE_URL
    linkedin_api_base_url: str = DEFAULT_LINKEDIN_API_BASE_URL
    #: LinkedIn serves OAuth (token refresh) from a different host than its REST API.
    linkedin_oauth_base_url: str = DEFAULT_LINKEDIN_OAUTH_BASE_URL
    linkedin_version: str = DEFAULT_LINKEDIN_VERSION
    linkedin_client_id: str | None = None
    linkedin_client_secret: str | None = field(default=None, repr=False)
    #: Publish to Bluesky for real (accounts connect with a handle and an app password, so there
    #: is no app credential to switch it on); off: the sandbox simulates it.
    bluesky_enabled: bool = False
    bluesky_pds_url: str = DEFAULT_BLUESKY_PDS_URL
    #: Publish to Mastodon for real (the app registers itself on each instance as its first
    #: user connects); off: the sandbox simulates it.
    mastodon_enabled: bool = False
    mastodon_client_name: str = DEFAULT_MASTODON_CLIENT_NAME
    #: Where each instance sends a user back after consent (the portal's callback); unset: the
    #: out-of-band code page, for `autopilot accounts connect` from a terminal.
    mastodon_redirect_uri: str | None = None
    sentry_dsn: str | None = field(default=None, repr=False)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_sender: str = "autopilot@localhost"
    smtp_starttls: bool = True
    #: Where operator notifications (user_id NULL: provider billing, sunset API versions) go.
    operator_email: str | None = None
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
    #: Platform calls one posting worker process makes at once (a thread pool shared by its
    #: publish messages): a burst is bounded by processes x this x the platform's latency.
    publish_concurrency: int = 128
    x_posts_per_15_min: int = 100
    linkedin_posts_per_day: int = 150
    #: Bluesky counts 3 points per created record against 5,000 points an hour per account.
    bluesky_posts_per_hour: int = 100
    #: Mastodon limits new statuses to 300 per 3 hours per account (its rate_limiter.rb), on
    #: top of 300 calls per 5 minutes for any endpoint.
    mastodon_posts_per_3_hours: int = 150
    #: Send the admin's session cookie over HTTPS only. Unset: on, except in Flask's debug
    #: mode (``flask run --debug``, development on http://localhost).
    session_cookie_secure: bool | None = None
    #: Hours an admin login lasts, from the login (not from the last request).
    admin_session_hours: int = 8
    #: Reverse proxies in front of the admin whose X-Forwarded-For is trusted (0: none), so
    #: the login throttle counts the client's address rather than the proxy's.
    admin_proxy_count: int = 0
    #: The users' portal's public address (scheme, host, optional path; no trailing slash): sign-in
    #: links and the OAuth redirect URIs (``PORTAL_BASE_URL + /connect/<platform>/callback``) use it.
    portal_base_url: str = DEFAULT_PORTAL_BASE_URL
    #: Hours a portal sign-in lasts, from the sign-in (ended earlier by signing out).
    portal_session_hours: int = DEFAULT_PORTAL_SESSION_HOURS
    #: Let anyone with an email address sign up from the portal's sign-in page (off: operators invite).
    portal_open_signup: bool = False
    #: A streaming replica of DATABASE_URL for read-only reports and metrics queries.
    database_replica_url: str | None = None
    #: Operations thresholds (``autopilot check``, the admin's Operations page, alert rules).
    ops_queue_depth_max: int = DEFAULT_OPS_QUEUE_DEPTH_MAX
    ops_min_success_rate: int = DEFAULT_OPS_MIN_SUCCESS_RATE
    ops_scheduler_silence_seconds: int = DEFAULT_OPS_SCHEDULER_SILENCE_SECONDS
    #: Add Dramatiq's own Prometheus middleware to workers (per-actor figures on port 9191).
    dramatiq_prometheus: bool = False
    #: The S3-compatible bucket holding the media library; unset: the local directory MEDIA_DIR.
    media_bucket: str | None = None
    #: The S3 API endpoint (MinIO, R2, a test server); unset: AWS's own for the region.
    media_s3_endpoint_url: str | None = None
    #: Where images are kept without a bucket (the embedded setup and the demo).
    media_dir: str = DEFAULT_MEDIA_DIR
    #: The public root images are served from (a CDN in front of the bucket); required with a
    #: bucket. Unset without one: ``/media``, served by the portal from MEDIA_DIR.
    media_public_base_url: str | None = None
    #: The largest image accepted into the library, in bytes, and the most pixels it may have.
    media_max_upload_bytes: int = DEFAULT_MEDIA_MAX_UPLOAD_BYTES
    media_max_upload_pixels: int = DEFAULT_MEDIA_MAX_UPLOAD_PIXELS
    #: When set, ``/metrics`` answers only requests carrying ``Authorization: Bearer <this>``
    #: (Prometheus: ``authorization: {credentials_file: ...}``), so the admin's public port
    #: can serve it; unset, keep ``/metrics`` on the internal network.
    metrics_bearer_token: str | None = field(default=None, repr=False)

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
            if is_sentinel_url(self.redis_url):
                parse_sentinel_url(self.redis_url)
            else:
                _require_url("REDIS_URL", self.redis_url, {"redis", "rediss", "unix", SENTINEL_SCHEME})
        if self.database_replica_url is not None:
            _require_url("DATABASE_REPLICA_URL", self.database_replica_url,
                         {"postgres", "postgresql", "postgresql+psycopg2"})
            if not self.database_url.startswith("postgres"):
                raise ConfigError("DATABASE_REPLICA_URL", _redact_url(self.database_replica_url),
                                  "a replica needs a PostgreSQL DATABASE_URL")
        if not 0 <= self.ops_min_success_rate <= 100:
            raise ConfigError("OPS_MIN_SUCCESS_RATE", str(self.ops_min_success_rate),
                              "a percentage from 0 to 100")
        platform_urls = [name for platform in PLATFORMS.values() for name in platform.url_settings]
        for name in ("openai_base_url", "serper_base_url", "portal_base_url", *platform_urls):
            _require_url(name.upper(), getattr(self, name), {"http", "https"})
        if self.mastodon_redirect_uri is not None:
            _require_url("MASTODON_REDIRECT_URI", self.mastodon_redirect_uri, {"http", "https"})
        if self.media_s3_endpoint_url is not None:
            _require_url("MEDIA_S3_ENDPOINT_URL", self.media_s3_endpoint_url, {"http", "https"})
        if self.media_bucket and not self.media_public_base_url:
            raise ConfigError("MEDIA_PUBLIC_BASE_URL", "", "required with MEDIA_BUCKET: the public "
                              "(CDN) root images are served from, never a signed link")
        if self.media_public_base_url and self.media_bucket:
            _require_url("MEDIA_PUBLIC_BASE_URL", self.media_public_base_url, {"http", "https"})
        if self.sentry_dsn is not None:
            _require_url("SENTRY_DSN", self.sentry_dsn, {"http", "https"})
        if self.metrics_bearer_token is not None and len(self.metrics_bearer_token) < MIN_METRICS_TOKEN_CHARS:
            raise ConfigError("METRICS_BEARER_TOKEN", "(hidden)",
                              f"at least {MIN_METRICS_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`)")
        for key in self.token_encryption_keys:
            _require_fernet_key(key)
        if self.database_url.startswith("postgres") and not self.token_encryption_keys:
            # The embedded default key is public: fine for a laptop demo, a leak in production.
            raise ConfigError("TOKEN_ENCRYPTION_KEYS", "", "required with a PostgreSQL DATABASE_URL "
                              "(generate one with `autopilot keys generate`)")
        if self.openai_image_model and not self.openai_api_key:
            raise ConfigError("OPENAI_IMAGE_MODEL", self.openai_image_model,
                              "needs OPENAI_API_KEY: the image model is asked on the OPENAI_BASE_URL server")
        if self.operator_email is not None and "@" not in self.operator_email:
            raise ConfigError("OPERATOR_EMAIL", self.operator_email, "expected an email address")
        if not _LINKEDIN_VERSION_RE.fullmatch(self.linkedin_version):
            raise ConfigError("LINKEDIN_VERSION", self.linkedin_version,
                              "expected YYYYMM or YYYYMM.RR, e.g. 202610 or 202610.01")
        posting_limits = [platform.posting_limit_setting for platform in PLATFORMS.values()]
        for name in ("smtp_port", "daily_catch_up_hours", "weekly_catch_up_hours", "stale_grace_minutes",
                     "redis_heartbeat_timeout_ms", "provider_timeout_seconds", "admin_session_hours",
                     "ops_queue_depth_max", "ops_scheduler_silence_seconds", "message_grace_seconds",
                     "worker_silence_seconds", "redis_maintenance_chance", "publish_concurrency",
                     "portal_session_hours", "media_max_upload_bytes", "media_max_upload_pixels",
                     *posting_limits):
            if getattr(self, name) <= 0:
                raise ConfigError(name.upper(), str(getattr(self, name)), "must be a positive integer")
        if self.portal_base_url.endswith("/"):
            raise ConfigError("PORTAL_BASE_URL", self.portal_base_url,
                              "no trailing slash: paths such as /connect/<platform>/callback are appended")
        if self.admin_proxy_count < 0:
            raise ConfigError("ADMIN_PROXY_COUNT", str(self.admin_proxy_count), "must be 0 or more")


def _parse(name: str, raw: str, type_: object) -> object:
    kind = str(type_)
    if "tuple" in kind:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind == "bool | None":
        kind = "bool"
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
