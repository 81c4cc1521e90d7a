"""SQLAlchemy 2.0 typed models: the database is the source of truth for everything scheduled.

Every timestamp is timezone-aware UTC on both PostgreSQL and SQLite (see :class:`UTCDateTime`).
Statuses and review reasons are StrEnums stored as their values in plain VARCHAR columns
(:func:`enum_column`: non-native, no CHECK), which keeps the schema portable between the two
databases; Python code compares enum members, never bare strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from app.clock import utcnow
from app.statuses import AccountStatus, ExecutionStatus, LateReason, PostStatus, ReviewReason


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored and returned as aware UTC.

    SQLite has no time zone type and hands back naive values; PostgreSQL hands back the
    session's zone. Both come back as UTC here, and a naive value is refused on the way in
    so a local wall-clock time can never be mistaken for an instant.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} refused: pass an aware UTC instant")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def enum_column(enum: type[StrEnum], length: int) -> Enum:
    """A StrEnum stored as its values in a plain VARCHAR: no native type, no CHECK constraint,
    so the schema stays the same on PostgreSQL and SQLite and adding a member needs no migration."""
    return Enum(enum, native_enum=False, create_constraint=False, length=length,
                values_callable=lambda members: [m.value for m in members], validate_strings=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

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

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    enable_autonomous_mode: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    preferred_platforms: Mapped[list[Any]] = mapped_column(default=list)
    #: Posts per week on each preferred platform (1-14).
    content_frequency: Mapped[int] = mapped_column(Integer, default=3)
    #: Local "HH:MM" times per platform, e.g. {"twitter": ["09:00"], "linkedin": ["10:00", "17:00"]}.
    posting_times: Mapped[dict[str, Any]] = mapped_column(default=dict)
    brand_voice: Mapped[str] = mapped_column(String(500), default="professional")
    creativity_level: Mapped[float] = mapped_column(Float, default=0.7)
    topics: Mapped[list[Any]] = mapped_column(default=list)
    language: Mapped[str] = mapped_column(String(8), default="en")
    country: Mapped[str] = mapped_column(String(8), default="us")
    require_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(back_populates="settings")

    def __repr__(self) -> str:
        return f"<UserSettings user={self.user_id} autonomous={self.enable_autonomous_mode}>"


class PlatformAccount(Base):
    """A user's connected X or LinkedIn account. Tokens are only ever stored encrypted."""

    __tablename__ = "platform_accounts"
    __table_args__ = (UniqueConstraint("user_id", "platform"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(20))
    handle: Mapped[str | None] = mapped_column(String(200))
    #: X user id or LinkedIn author URN (urn:li:person:...).
    external_id: Mapped[str | None] = mapped_column(String(200))
    access_token_encrypted: Mapped[str] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    refresh_expires_at: Mapped[datetime | None]
    status: Mapped[AccountStatus] = mapped_column(enum_column(AccountStatus, 20), default=AccountStatus.ACTIVE)
    reauth_notified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(back_populates="accounts")

    def __repr__(self) -> str:
        # Never the token columns, not even encrypted: they are nobody's business in a log.
        return f"<PlatformAccount {self.id} {self.platform} user={self.user_id} {self.status}>"


class Post(Base):
    """One piece of content for one platform, from generation to publication."""

    __tablename__ = "posts"
    __table_args__ = (
        # A generated post is unique per user, platform and slot: re-running a day is a no-op.
        UniqueConstraint("user_id", "platform", "slot_at", name="uq_posts_user_platform_slot"),
        Index("ix_posts_status_scheduled_at", "status", "scheduled_at"),
        Index("ix_posts_status_published_at", "status", "published_at"),
        Index("ix_posts_user_id_scheduled_at", "user_id", "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
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
    impressions: Mapped[int | None] = mapped_column(Integer)
    likes: Mapped[int | None] = mapped_column(Integer)
    shares: Mapped[int | None] = mapped_column(Integer)
    comments: Mapped[int | None] = mapped_column(Integer)
    engagement_rate: Mapped[float | None] = mapped_column(Float)
    metrics_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<Post {self.id} {self.platform} {self.status} at={self.scheduled_at:%Y-%m-%dT%H:%M:%SZ}>"


class MetricSnapshot(Base):
    """Engagement figures of one post at one age (24 hours, 7 days)."""

    __tablename__ = "metric_snapshots"
    __table_args__ = (UniqueConstraint("post_id", "age"),)

    id: Mapped[int] = mapped_column(primary_key=True)
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

    id: Mapped[int] = mapped_column(primary_key=True)
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

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow: Mapped[str] = mapped_column(String(60))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    slot: Mapped[datetime | None]
    status: Mapped[ExecutionStatus] = mapped_column(enum_column(ExecutionStatus, 20),
                                                    default=ExecutionStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
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

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: "research", "idea" or "insight".
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str | None] = mapped_column(String(300))
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    """One row per autonomous or operator action: who did what to which post, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    #: "autopilot", "cli", or "operator:<username>".
    actor: Mapped[str] = mapped_column(String(100), default="autopilot")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """A message for a user about something that needs them (re-authorise, failures)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10), default="warning")
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    emailed_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]


class Operator(Base):
    """An admin panel login. Only a salted hash of the password is stored."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Operator {self.username}>"


class ResearchCache(Base):
    """Search results per query and day, shared by every user researching the same topic."""

    __tablename__ = "research_cache"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Provider, endpoint, query, locale and recency window, joined; see app.providers.serper.
    cache_key: Mapped[str] = mapped_column(String(500), unique=True)
    day: Mapped[str] = mapped_column(String(10), index=True)
    payload: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
