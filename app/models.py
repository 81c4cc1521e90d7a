"""SQLAlchemy 2.0 typed models: the database is the source of truth for everything scheduled.

Column types, the base class and the repeated column shapes are in :mod:`app.orm`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    case,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import utcnow
from app.orm import Base, CreatedAt, IntPK, UpdatedAt, UserFK, enum_column
from app.statuses import AccountStatus, ExecutionStatus, LateReason, PostStatus, ReviewReason


class User(Base):
    __tablename__ = "users"

    id: Mapped[IntPK]
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[CreatedAt]
    #: A disabled user cannot sign in to the portal, and their open portal sessions are ended.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    settings: Mapped[UserSettings] = relationship(
        back_populates="user", uselist=False, cascade="all, delete-orphan", lazy="joined"
    )
    accounts: Mapped[list[PlatformAccount]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"

    def __str__(self) -> str:
        return self.email


class UserSettings(Base):
    """What a user opted into; validated by :func:`app.validation.validate_settings`."""

    __tablename__ = "user_settings"

    id: Mapped[IntPK]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    enable_autonomous_mode: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    preferred_platforms: Mapped[list[Any]] = mapped_column(default=list)
    #: Posts per week on each preferred platform (1-14).
    content_frequency: Mapped[int] = mapped_column(Integer, default=3)
    #: Local "HH:MM" times per platform key (app.platforms), e.g. {"<key>": ["10:00", "17:00"]}.
    posting_times: Mapped[dict[str, Any]] = mapped_column(default=dict)
    brand_voice: Mapped[str] = mapped_column(String(500), default="professional")
    creativity_level: Mapped[float] = mapped_column(Float, default=0.7)
    topics: Mapped[list[Any]] = mapped_column(default=list)
    language: Mapped[str] = mapped_column(String(8), default="en")
    country: Mapped[str] = mapped_column(String(8), default="us")
    require_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Who sees the posts where a platform lets the author choose (app.validation.POST_VISIBILITIES).
    post_visibility: Mapped[str] = mapped_column(String(20), default="public", server_default="public")
    updated_at: Mapped[UpdatedAt]

    user: Mapped[User] = relationship(back_populates="settings")

    def __repr__(self) -> str:
        return f"<UserSettings user={self.user_id} autonomous={self.enable_autonomous_mode}>"


class PlatformAccount(Base):
    """A user's connected account on one platform (app.platforms). Tokens are only ever stored encrypted."""

    __tablename__ = "platform_accounts"
    __table_args__ = (UniqueConstraint("user_id", "platform"),)

    id: Mapped[IntPK]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(20))
    handle: Mapped[str | None] = mapped_column(String(200))
    #: The account's id there (each registry entry's ``external_id_help`` says what it is).
    external_id: Mapped[str | None] = mapped_column(String(200))
    #: The server the account lives on, where that differs per account (a Bluesky PDS, a
    #: Mastodon instance); None: the platform's one API.
    service_url: Mapped[str | None] = mapped_column(String(300))
    access_token_encrypted: Mapped[str] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    refresh_expires_at: Mapped[datetime | None]
    status: Mapped[AccountStatus] = mapped_column(enum_column(AccountStatus, 20), default=AccountStatus.ACTIVE)
    reauth_notified_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    user: Mapped[User] = relationship(back_populates="accounts")

    def __repr__(self) -> str:
        # Never the token columns, not even encrypted: they are nobody's business in a log.
        return f"<PlatformAccount {self.id} {self.platform} user={self.user_id} {self.status}>"


class ConnectFlow(Base):
    """One OAuth consent under way: the portal sent a user to a platform and awaits the answer.

    Kept server-side so that the PKCE verifier never reaches the browser, and so that the
    ``state`` the platform hands back can be checked once: it must name a row of the same user,
    platform and browser session (``session_hash``), not used yet (``used_at`` is set by a
    conditional UPDATE) and not expired. Only SHA-256 digests of the state and of the session's
    key are stored; the verifier is encrypted with the token vault.
    """

    __tablename__ = "connect_flows"
    __table_args__ = (
        Index("ix_connect_flows_user_id", "user_id"),
        # The sweep's prune deletes by expiry (migration 0014).
        Index("ix_connect_flows_expires_at", "expires_at"),
    )

    id: Mapped[IntPK]
    user_id: Mapped[UserFK]
    platform: Mapped[str] = mapped_column(String(20))
    #: SHA-256 (hex) of the ``state`` sent to the platform.
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: SHA-256 (hex) of the browser session's key: a state from another browser is refused.
    session_hash: Mapped[str] = mapped_column(String(64))
    #: The PKCE code verifier, encrypted (None for a platform without PKCE, e.g. LinkedIn).
    code_verifier_encrypted: Mapped[str | None] = mapped_column(Text)
    #: The redirect URI the authorisation request named: the code exchange must repeat it.
    redirect_uri: Mapped[str] = mapped_column(String(500))
    #: The server the consent runs on where each user has their own (a Mastodon instance's
    #: https origin), so the code is exchanged there; None for X and LinkedIn.
    service_url: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<ConnectFlow {self.id} {self.platform} user={self.user_id}>"


class OAuthClient(Base):
    """Our app as registered on one server of a platform where every server registers apps
    itself (a Mastodon instance: ``POST /api/v1/apps``), remembered so it registers once."""

    __tablename__ = "oauth_clients"
    __table_args__ = (UniqueConstraint("platform", "host", "redirect_uri", name="uq_oauth_clients_server"),)

    id: Mapped[IntPK]
    platform: Mapped[str] = mapped_column(String(20))
    #: The server's https origin, e.g. https://example.social.
    host: Mapped[str] = mapped_column(String(300))
    redirect_uri: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(300))
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(String(200))
    #: Whether the server accepts PKCE (S256), as its authorization server metadata says.
    pkce: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[CreatedAt]

    def __repr__(self) -> str:
        return f"<OAuthClient {self.id} {self.platform} {self.host}>"


#: :data:`SCHEDULED_DUE_AT` as DDL, written as PostgreSQL prints it back (its line breaks and
#: ``ELSE NULL``) so that Alembic's comparison finds no drift; both databases parse it to the
#: expression the queries build from :data:`SCHEDULED_DUE_AT`, which the planner matches.
SCHEDULED_DUE_AT_DDL = "(\nCASE\n    WHEN status = 'scheduled' THEN scheduled_at\n    ELSE NULL\nEND)"
#: :data:`MEASURABLE_AT` as DDL, written the same way.
MEASURABLE_AT_DDL = ("(\nCASE\n    WHEN status = 'published' AND external_id IS NOT NULL THEN published_at\n"
                     "    ELSE NULL\nEND)")


#: The statuses of a post still on its way out, as the portal's "coming up" list selects them.
UPCOMING_DDL = "status IN ('scheduled', 'queued', 'publishing')"


class Post(Base):
    """One piece of content for one platform, from generation to publication."""

    __tablename__ = "posts"
    __table_args__ = (
        # A generated post is unique per user, platform and slot: re-running a day is a no-op.
        UniqueConstraint("user_id", "platform", "slot_at", name="uq_posts_user_platform_slot"),
        Index("ix_posts_status_scheduled_at", "status", "scheduled_at"),
        Index("ix_posts_status_published_at", "status", "published_at"),
        Index("ix_posts_user_id_scheduled_at", "user_id", "scheduled_at"),
        # The dispatch's key: see SCHEDULED_DUE_AT below.
        Index("ix_posts_scheduled_due_at", text(SCHEDULED_DUE_AT_DDL)),
        # The metrics' key: see MEASURABLE_AT below.
        Index("ix_posts_measurable_at", text(MEASURABLE_AT_DDL)),
        # Partial indexes on live statuses (migration 0005): they hold the rows in that status
        # only, whatever the history holds: the sweep's lost (queued) and abandoned (publishing)
        # posts, and one user's review queue (the portal's and the admin's review lists).
        Index("ix_posts_queued_scheduled_at", "scheduled_at",
              postgresql_where=text("status = 'queued'"), sqlite_where=text("status = 'queued'")),
        Index("ix_posts_publishing_started_at", "publish_started_at",
              postgresql_where=text("status = 'publishing'"), sqlite_where=text("status = 'publishing'")),
        Index("ix_posts_needs_review_user_id", "user_id", "scheduled_at",
              postgresql_where=text("status = 'needs_review'"),
              sqlite_where=text("status = 'needs_review'")),
        # The portal's lists of one user's posts (migration 0008): what is coming up, in time
        # order, and what was published, newest first, each read from its own rows only, not
        # from the user's whole history or from everyone's published posts.
        Index("ix_posts_upcoming_user_id", "user_id", "scheduled_at",
              postgresql_where=text(UPCOMING_DDL), sqlite_where=text(UPCOMING_DDL)),
        Index("ix_posts_published_user_id", "user_id", "published_at",
              postgresql_where=text("status = 'published'"), sqlite_where=text("status = 'published'")),
    )

    id: Mapped[IntPK]
    user_id: Mapped[UserFK]
    platform: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    topic: Mapped[str | None] = mapped_column(String(300))
    #: "autonomous" (daily generation) or "manual" (one-off from the CLI or admin).
    origin: Mapped[str] = mapped_column(String(20), default="autonomous")
    status: Mapped[PostStatus] = mapped_column(enum_column(PostStatus, 20), default=PostStatus.SCHEDULED)
    scheduled_at: Mapped[datetime]
    #: The generation slot this post fills; NULL for one-off posts (NULLs never collide).
    slot_at: Mapped[datetime | None]
    queued_at: Mapped[datetime | None]
    publish_started_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    external_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    review_reason: Mapped[ReviewReason | None] = mapped_column(enum_column(ReviewReason, 40))
    #: Identifies one claim of the post by a worker, so a stale worker cannot overwrite it.
    claim_token: Mapped[str | None] = mapped_column(String(64))
    #: Why the post is late, as recovery last acted on it (re-sent, reconciling), and since when;
    #: cleared when it is claimed or leaves the publishing path (see app.lifecycle).
    late_reason: Mapped[LateReason | None] = mapped_column(enum_column(LateReason, 20))
    late_since: Mapped[datetime | None]
    execution_id: Mapped[int | None] = mapped_column(
        ForeignKey("workflow_executions.id", ondelete="SET NULL")
    )
    #: The image published with the post, from its owner's library (None: text only). An image
    #: still attached to a post that has yet to go out cannot be deleted; deleting one detaches
    #: it from finished posts in the same transaction (app.media.library). No ON DELETE: SQLite
    #: cannot add a column's foreign key with one in a form it reflects back.
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media_items.id"))
    impressions: Mapped[int | None] = mapped_column(Integer)
    likes: Mapped[int | None] = mapped_column(Integer)
    shares: Mapped[int | None] = mapped_column(Integer)
    comments: Mapped[int | None] = mapped_column(Integer)
    engagement_rate: Mapped[float | None] = mapped_column(Float)
    metrics_updated_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<Post {self.id} {self.platform} {self.status} at={self.scheduled_at:%Y-%m-%dT%H:%M:%SZ}>"


#: A scheduled post's ``scheduled_at``, NULL for a post in any other status: the dispatch's key.
#:
#: ``status = 'scheduled' AND scheduled_at <= :due`` is estimated by PostgreSQL as if the two
#: columns were independent: with a million posts scheduled for tomorrow and a million past
#: ones published, cancelled or reviewed, it expects half a million rows where there are none,
#: and plans (and JIT-compiles) for them. This one expression, indexed by
#: ``ix_posts_scheduled_due_at`` (ANALYZE keeps statistics on an expression index), is
#: estimated from the scheduled posts alone. A partial index cannot do that: PostgreSQL ignores
#: a partial index's statistics. Compare it with ``<=``: NULL never matches.
SCHEDULED_DUE_AT = case((Post.status == PostStatus.SCHEDULED, Post.scheduled_at))

#: A published post's ``published_at`` when it has an id on the platform (so its figures can be
#: fetched), NULL otherwise: the metrics' key, indexed by ``ix_posts_measurable_at`` for the same
#: reason as :data:`SCHEDULED_DUE_AT` (``published_at`` is set exactly when the status is
#: ``published``: estimated apart, the two conditions are counted twice).
MEASURABLE_AT = case((and_(Post.status == PostStatus.PUBLISHED, Post.external_id.is_not(None)),
                      Post.published_at))



class MediaItem(Base):
    """One image in a user's library. The bytes are in object storage under ``storage_key``
    (and the thumbnail under ``thumbnail_key``); see :mod:`app.media`."""

    __tablename__ = "media_items"
    __table_args__ = (Index("ix_media_items_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[IntPK]
    user_id: Mapped[UserFK]
    storage_key: Mapped[str] = mapped_column(String(300), unique=True)
    thumbnail_key: Mapped[str] = mapped_column(String(300))
    #: What the image shows, for people who cannot see it: required, sent to every platform.
    alt_text: Mapped[str] = mapped_column(Text)
    #: Lower-case words matched against a post's topic when generation picks an image.
    tags: Mapped[list[Any]] = mapped_column(default=list)
    #: Made by an image model rather than uploaded by the user (none is wired yet: always False
    #: for now; the column is kept so a generated image is marked from its first day).
    generated: Mapped[bool] = mapped_column(Boolean, default=False)
    content_type: Mapped[str] = mapped_column(String(40))
    width_px: Mapped[int] = mapped_column(Integer)
    height_px: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[CreatedAt]

    user: Mapped[User] = relationship(viewonly=True)

    def __repr__(self) -> str:
        return f"<MediaItem {self.id} user={self.user_id} {self.content_type} {self.width_px}x{self.height_px}>"


class MediaUpload(Base):
    """An image as uploaded to one platform account: the platform's media id and until when it
    may be used. A retried or reconciled publish reuses it instead of uploading again; the
    unique key records each (image, account, post key) upload once."""

    __tablename__ = "media_uploads"
    __table_args__ = (UniqueConstraint("media_id", "account_id", "post_key",
                                       name="uq_media_uploads_media_id_account_id_post_key"),
                      # The sweep deletes expired uploads by it (migration 0014).
                      Index("ix_media_uploads_expires_at", "expires_at"))

    id: Mapped[IntPK]
    media_id: Mapped[int] = mapped_column(ForeignKey("media_items.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("platform_accounts.id", ondelete="CASCADE"), index=True)
    #: 0: the upload serves every post of the account; else the id of the one post it was made
    #: for, where the platform ties an upload to one post (``ImageLimits.upload_per_post``).
    post_key: Mapped[int] = mapped_column(Integer, default=0)
    platform: Mapped[str] = mapped_column(String(20))
    #: X's media id, LinkedIn's image URN, Bluesky's blob (as JSON), Mastodon's attachment id.
    platform_media_id: Mapped[str] = mapped_column(Text)
    #: When the platform stops accepting the id (X: ``expires_after_secs``); None: not known to.
    expires_at: Mapped[datetime | None]
    #: The bytes sent (after fitting the image to the platform's limits).
    size_bytes: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class MetricSnapshot(Base):
    """Engagement figures of one post at one age (24 hours, 7 days)."""

    __tablename__ = "metric_snapshots"
    __table_args__ = (UniqueConstraint("post_id", "age"),)

    id: Mapped[IntPK]
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    #: "24h" or "7d".
    age: Mapped[str] = mapped_column(String(8))
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)
    impressions: Mapped[int] = mapped_column(Integer, default=0)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    shares: Mapped[int] = mapped_column(Integer, default=0)
    comments: Mapped[int] = mapped_column(Integer, default=0)
    engagement_rate: Mapped[float] = mapped_column(Float, default=0.0)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)


class JobRun(Base):
    """A claim on one slot of one periodic job: the unique key makes every slot run once."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "slot", name="uq_job_runs_job_slot"),)

    id: Mapped[IntPK]
    job: Mapped[str] = mapped_column(String(60))
    slot: Mapped[datetime]
    #: "periodic", "catch_up" or "manual".
    trigger: Mapped[str] = mapped_column(String(20), default="periodic")
    status: Mapped[ExecutionStatus] = mapped_column(enum_column(ExecutionStatus, 20),
                                                    default=ExecutionStatus.RUNNING)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    fanned_out: Mapped[int] = mapped_column(Integer, default=0)
    #: The id of the message that claimed the slot: its redelivery may resume the run, nobody
    #: else may. (The column keeps its first name, ``claimed_by``.)
    claimed_by_message: Mapped[str | None] = mapped_column("claimed_by", String(64))
    error: Mapped[str | None] = mapped_column(Text)


class CatchUpSend(Base):
    """A missed slot's catch-up message, sent: the minute tick sends each once, not every minute.

    While no worker consumes a job's queue, the slot stays unclaimed, so without this row every
    tick would send its catch-up again and the queue would grow by one message a minute. The
    row is deleted once the slot's catch-up window is over (:mod:`app.jobs.upkeep`).
    """

    __tablename__ = "catch_up_sends"

    job: Mapped[str] = mapped_column(String(60), primary_key=True)
    slot: Mapped[datetime] = mapped_column(primary_key=True)
    sent_at: Mapped[datetime]


class WorkflowExecution(Base):
    """One run of one workflow for one user (or for everyone, user_id NULL)."""

    __tablename__ = "workflow_executions"
    __table_args__ = (
        # The fan-out creates one execution per (workflow, user, slot): a redelivered
        # per-user message finds it and does nothing.
        UniqueConstraint("workflow", "user_id", "slot", name="uq_workflow_executions_workflow_user_slot"),
        Index("ix_workflow_executions_user_id_created_at", "user_id", "created_at"),
        Index("ix_workflow_executions_status_created_at", "status", "created_at"),
    )

    id: Mapped[IntPK]
    workflow: Mapped[str] = mapped_column(String(60))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    slot: Mapped[datetime | None]
    status: Mapped[ExecutionStatus] = mapped_column(enum_column(ExecutionStatus, 20),
                                                    default=ExecutionStatus.PENDING)
    created_at: Mapped[CreatedAt]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The id of the message running this execution; its redelivery (after a crash) may resume
    #: it. (The column keeps its first name, ``claimed_by``.)
    claimed_by_message: Mapped[str | None] = mapped_column("claimed_by", String(64))
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User | None] = relationship()


class MemoryEntry(Base):
    """What the autopilot remembers per user: research, ideas used, weekly insights."""

    __tablename__ = "memory_entries"
    __table_args__ = (Index("ix_memory_entries_user_id_kind_created_at", "user_id", "kind", "created_at"),)

    id: Mapped[IntPK]
    user_id: Mapped[UserFK]
    #: "research", "idea" or "insight".
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str | None] = mapped_column(String(300))
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[CreatedAt]

    user: Mapped[User] = relationship(viewonly=True)


class AuditLog(Base):
    """One row per autonomous or operator action: who did what to which post, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[IntPK]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    #: "autopilot", "cli", or "operator:<username>".
    actor: Mapped[str] = mapped_column(String(100), default="autopilot")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[CreatedAt]

    # Read-only conveniences for the admin (the audit log links the user and post it is about).
    user: Mapped[User | None] = relationship(viewonly=True)
    post: Mapped[Post | None] = relationship(viewonly=True)


class Notification(Base):
    """A message for a user about something that needs them (re-authorise, failures), or for
    the operator (``user_id`` NULL) about the deployment (a provider's billing, a sunset API)."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_id_created_at", "user_id", "created_at"),
        # The rows not emailed yet, oldest first (migration 0014): what the sweep's emails and
        # digests read every quarter hour, without scanning every notification ever sent.
        Index("ix_notifications_unsent_created_at", "created_at", "id",
              postgresql_where=text("emailed_at IS NULL"), sqlite_where=text("emailed_at IS NULL")),
    )

    id: Mapped[IntPK]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10), default="warning")
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    emailed_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    #: How it is emailed, decided from the user's preference when it is created: "now",
    #: "digest" (in the next daily digest) or "off" (never; it stays in the portal).
    email_delivery: Mapped[str] = mapped_column(String(10), default="now", server_default="now")

    user: Mapped[User] = relationship(viewonly=True)


class NotificationPreferences(Base):
    """How a user wants to hear about each kind of notification, and the weekly report.

    No row means the defaults: every kind emailed at once, the weekly report emailed.
    """

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    #: kind -> "now", "digest" or "off"; a kind not listed is emailed at once.
    email_by_kind: Mapped[dict[str, Any]] = mapped_column(default=dict)
    weekly_report_email: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    #: When the last daily digest went out: the next waits a day after it.
    digest_sent_at: Mapped[datetime | None]
    updated_at: Mapped[UpdatedAt]


class Operator(Base):
    """An admin panel login. Only a salted hash of the password is stored."""

    __tablename__ = "operators"

    id: Mapped[IntPK]
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[CreatedAt]
    #: A disabled operator cannot log in, and their open sessions stop working.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    #: Bumped on logout, password change and disable: a session cookie carries the generation
    #: it was issued under, so every older cookie (a copied one too) is refused server-side.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def __repr__(self) -> str:
        return f"<Operator {self.username}>"


class UserSession(Base):
    """One signed-in browser of a user in the portal (server-side: deleting the row signs it out).

    The browser's cookie holds a random token; only its SHA-256 is stored, so a database dump
    signs nobody in. Rows are deleted on sign-out, "sign out everywhere" and when the user is
    disabled; a row past ``expires_at`` is refused and pruned.
    """

    __tablename__ = "user_sessions"
    __table_args__ = (
        Index("ix_user_sessions_user_id", "user_id"),
        # The sweep's prune deletes by expiry (migration 0014).
        Index("ix_user_sessions_expires_at", "expires_at"),
    )

    id: Mapped[IntPK]
    user_id: Mapped[UserFK]
    #: SHA-256 (hex) of the token in the browser's cookie.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime]
    #: The browser's User-Agent at sign-in, truncated: lets the user tell their sessions apart.
    user_agent: Mapped[str | None] = mapped_column(String(200))

    user: Mapped[User] = relationship(viewonly=True)


class SignInLink(Base):
    """A one-time portal sign-in link, emailed or printed by ``autopilot users invite``.

    The link carries a random token signed with ``SECRET_KEY`` (a forged or altered link is
    refused before any lookup); only the token's SHA-256 is stored. ``used_at`` is set by a
    conditional UPDATE, so a link signs in once even when clicked twice at the same instant.
    ``user_id`` is NULL for an open sign-up link: the user is created when it is used.
    """

    __tablename__ = "sign_in_links"
    # The sweep's prune deletes by expiry (migration 0014).
    __table_args__ = (Index("ix_sign_in_links_expires_at", "expires_at"),)

    id: Mapped[IntPK]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    #: Who made it: "portal" (asked for on the sign-in page), "cli", "operator:<name>".
    created_by: Mapped[str] = mapped_column(String(100), default="portal")


class LoginThrottle(Base):
    """Failed admin logins of one account or one client address, counted over a window.

    Kept in the database (not Redis) because the admin runs without Redis on a laptop and
    behind several gunicorn workers in production: the count must be shared and survive a
    restart, and it is one row per key, updated under a row lock.
    """

    __tablename__ = "login_throttle"

    id: Mapped[IntPK]
    #: "account:<username>" or "address:<ip>".
    key: Mapped[str] = mapped_column(String(200), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class ResearchCache(Base):
    """Search results per query and day, shared by every user researching the same topic."""

    __tablename__ = "research_cache"

    id: Mapped[IntPK]
    #: Provider, endpoint, query, locale and recency window, joined; see app.providers.serper.
    cache_key: Mapped[str] = mapped_column(String(500), unique=True)
    day: Mapped[str] = mapped_column(String(10), index=True)
    payload: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[CreatedAt]


class ProviderHold(Base):
    """A provider the autopilot stops calling until ``until``: an operator problem (a monthly
    usage cap, exhausted credits or quota) makes every call fail the same way until fixed.

    One row per provider; a new problem replaces the row. Workers in every process read it
    before calling the provider, so one failure, not one per post or user, reaches it.
    """

    __tablename__ = "provider_holds"

    provider: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    detail: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(default=utcnow)
    until: Mapped[datetime]


class QueueSample(Base):
    """One queue's depth at one minute: the history behind the Operations page's depth chart.

    Written by any worker process once a minute (a Redis ``SET NX`` per minute elects one) and
    by the Operations page while it is open; see :mod:`app.ops.sampling`.
    """

    __tablename__ = "queue_samples"
    __table_args__ = (UniqueConstraint("queue", "sampled_at", name="uq_queue_samples_queue_sampled_at"),
                      Index("ix_queue_samples_sampled_at", "sampled_at"))

    id: Mapped[IntPK]
    queue: Mapped[str] = mapped_column(String(60))
    #: The minute sampled (seconds zeroed), UTC.
    sampled_at: Mapped[datetime]
    waiting: Mapped[int] = mapped_column(Integer, default=0)
    in_flight: Mapped[int] = mapped_column(Integer, default=0)
    delayed: Mapped[int] = mapped_column(Integer, default=0)
    dead: Mapped[int] = mapped_column(Integer, default=0)
    #: Live worker processes consuming this queue at that minute.
    workers: Mapped[int] = mapped_column(Integer, default=0)
