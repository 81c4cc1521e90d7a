"""A user's performance figures, read from the database: the weekly report's and the dashboard's.

The arithmetic (what "measured", "rated", "on time", "interactions" and "engagement rate" mean,
and how a platform without impressions is ranked) is :mod:`app.report_math`'s alone; this module loads a user's posts as its records and asks it.
The weekly report (:mod:`app.workflows.report`) and the portal's dashboard both read through
:func:`post_records`, so a figure on the dashboard is the figure the report would give for the
same posts. Callers pass a session on the replica when ``DATABASE_REPLICA_URL`` is set
(:attr:`app.runtime.Runtime.read_session_factory`): every query here is read-only and
tolerates the replication delay.

Periods are windows of ``scheduled_at`` ending at ``now`` (a post belongs to the period it was
due in, as in the weekly report). Every query is scoped to one ``user_id`` and runs on the
``(user_id, scheduled_at)`` index: a user's two years of history cost what a period holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidValue
from app.models import PlatformAccount, Post, ProviderHold, User
from app.platforms import PLATFORMS, display_name, published_post_url, publisher_provider
from app.report_math import (
    EngagementStats,
    PostRecord,
    by_weekday_and_hour,
    engagement_stats,
    group_measured,
    is_on_time,
    not_reported,
    percent_change,
    post_counts,
    ranked,
    ranked_by_interactions,
    unrated_platforms,
)
from app.statuses import AccountStatus, PostStatus

#: The periods the dashboard offers, in days.
PERIODS_DAYS = (7, 30, 90)
#: The default period, in days.
DEFAULT_PERIOD_DAYS = 30
#: Weeks shown by the per-week charts (the current, partial, week included).
DEFAULT_CHART_WEEKS = 12
#: Upcoming scheduled posts listed under "what is next".
DEFAULT_NEXT_POSTS = 5
#: Posts listed among the best and among the worst of the period.
DEFAULT_RANKED = 3
#: An account whose token expires within this is shown as "expires on ...".
EXPIRY_WARNING = timedelta(days=14)


def post_records(session: Session, user_id: int, since: datetime, until: datetime,
                 timezone: str) -> list[PostRecord]:
    """The user's posts scheduled in [since, until), oldest first, as the report's records."""
    rows = session.execute(
        select(Post.id, Post.platform, Post.status, Post.scheduled_at, Post.published_at,
               Post.review_reason, Post.impressions, Post.likes, Post.shares, Post.comments,
               Post.topic, Post.text, Post.external_id, Post.metrics_updated_at)
        .where(Post.user_id == user_id, Post.scheduled_at >= since, Post.scheduled_at < until)
        .order_by(Post.scheduled_at, Post.id)
    ).all()
    return [
        PostRecord(
            platform=r.platform, status=r.status, scheduled_at=r.scheduled_at, published_at=r.published_at,
            review_reason=r.review_reason, impressions=r.impressions or 0, likes=r.likes or 0,
            shares=r.shares or 0, comments=r.comments or 0, topic=r.topic, timezone=timezone,
            post_id=r.id, text=r.text, external_id=r.external_id, metrics_updated_at=r.metrics_updated_at,
        )
        for r in rows
    ]


def user_timezone(session: Session, user_id: int) -> str:
    """The user's IANA zone ("UTC" without settings)."""
    user = session.get(User, user_id)
    return user.settings.timezone if user is not None and user.settings is not None else "UTC"


# -- the dashboard's records ---------------------------------------------------------------


@dataclass(frozen=True)
class PostFilter:
    """Which posts a figure counts, as the posts list's filter: every figure links to them."""

    since: datetime
    until: datetime
    status: str | None = None
    platform: str | None = None
    #: "on_time", "measured" or "rated" (see :class:`app.report_math.PostRecord`): a narrowing
    #: the status alone cannot say.
    only: str | None = None

    def as_query(self) -> dict[str, str]:
        query = {"since": self.since.isoformat(), "until": self.until.isoformat()}
        for name in ("status", "platform", "only"):
            if getattr(self, name) is not None:
                query[name] = str(getattr(self, name))
        return query


@dataclass(frozen=True)
class Figure:
    """One headline figure of a period, the previous period's, and the change in percent."""

    name: str
    label: str
    value: float | int | None
    previous: float | int | None
    counts: PostFilter
    #: "count" (of the posts it links to), "rate" (a fraction shown as a percentage), "number"
    #: (a sum over those posts) or "average" (a number per post, shown with its decimals).
    kind: str = "count"
    #: A fall is good news (posts sent to review).
    lower_is_better: bool = False
    #: Said instead of the value when the period's posts cannot have it: "not reported by
    #: Bluesky" for a rate over impressions no measured post's platform reports.
    unreported: str = ""

    @property
    def change_pct(self) -> float | None:
        return percent_change(self.value, self.previous)

    @property
    def unit(self) -> str:
        """How :func:`app.charts.format_value` writes it."""
        return {"rate": "rate", "average": "average"}.get(self.kind, "count")


@dataclass(frozen=True)
class WeekPoint:
    """One platform's engagement in one local week (Monday first)."""

    week_start: date
    platform: str
    stats: EngagementStats


@dataclass(frozen=True)
class RankedPost:
    post_id: int
    platform: str
    published_at: datetime
    impressions: int
    interactions: int
    #: None on a platform without impressions (ranked by interactions instead).
    engagement_rate: float | None
    excerpt: str
    #: The post on its platform, None when it has no id there.
    url: str | None


@dataclass(frozen=True)
class NextPost:
    post_id: int
    platform: str
    scheduled_at: datetime
    excerpt: str


@dataclass(frozen=True)
class AccountState:
    platform: str
    handle: str | None
    #: "connected", "expires" (within :data:`EXPIRY_WARNING`) or "needs_reauth".
    state: str
    expires_at: datetime | None
    #: The account's own server where it has one (a Mastodon instance): its posts' links need it.
    service_url: str | None = None


@dataclass(frozen=True)
class Pause:
    provider: str
    kind: str
    until: datetime
    #: What the user calls it: the platform's display name for a publisher ("X"), else the provider.
    label: str = ""


@dataclass
class Dashboard:
    """Everything the dashboard shows for one user, one period, at one instant."""

    now: datetime
    days: int
    timezone: str
    figures: list[Figure]
    weeks: list[WeekPoint]
    week_starts: list[date]
    #: (local weekday 0-6 from Monday, local hour) -> engagement of the period's measured posts.
    heatmap: dict[tuple[int, int], EngagementStats]
    top: list[RankedPost]
    bottom: list[RankedPost]
    #: The posts of platforms without impressions, ranked by interactions
    #: (:func:`app.report_math.ranked_by_interactions` says why apart).
    top_by_interactions: list[RankedPost]
    bottom_by_interactions: list[RankedPost]
    #: The platforms of the period's measured posts that report no impressions.
    unrated: list[str]
    next_posts: list[NextPost]
    accounts: list[AccountState]
    pauses: list[Pause]
    period: PostFilter = field(init=False)

    def __post_init__(self) -> None:
        self.period = PostFilter(since=self.now - timedelta(days=self.days), until=self.now)


def period_figures(records: Sequence[PostRecord], previous: Sequence[PostRecord],
                   since: datetime, until: datetime) -> list[Figure]:
    """Posts published, on time, sent to review; impressions and engagement rate (platforms that
    report impressions); interactions and interactions per post (every platform); each against
    the period before (``previous``: the posts of the same length of time just before ``since``).

    Impressions and the rate are None, "not reported by Bluesky", when the period's measured
    posts are all on platforms without impressions: never a 0 that reads as "nobody saw them".
    """
    counts, before = post_counts(records), post_counts(previous)
    stats, stats_before = engagement_stats(records), engagement_stats(previous)
    on_time = sum(1 for p in records if is_on_time(p))
    on_time_before = sum(1 for p in previous if is_on_time(p))
    unrated = unrated_platforms(records)
    # Impressions are not reported when only platforms without them were measured.
    unreported = not_reported(unrated) if unrated and not stats.rated_posts else ""
    impressions = None if unreported else stats.impressions
    impressions_before = stats_before.impressions if stats_before.rated_posts or not stats_before.posts else None
    measured = PostFilter(since, until, status=PostStatus.PUBLISHED, only="measured")
    rated = PostFilter(since, until, status=PostStatus.PUBLISHED, only="rated")
    return [
        Figure("published", "Posts published", counts.published, before.published,
               PostFilter(since, until, status=PostStatus.PUBLISHED)),
        Figure("on_time", "Published on time", on_time, on_time_before,
               PostFilter(since, until, status=PostStatus.PUBLISHED, only="on_time")),
        Figure("reviewed", "Sent to review", counts.reviewed, before.reviewed,
               PostFilter(since, until, status=PostStatus.NEEDS_REVIEW), lower_is_better=True),
        Figure("impressions", "Impressions", impressions, impressions_before, rated, kind="number",
               unreported=unreported),
        Figure("engagement_rate", "Engagement rate", stats.engagement_rate, stats_before.engagement_rate,
               rated, kind="rate", unreported=not_reported(unrated) if stats.engagement_rate is None and unrated
               else ""),
        Figure("interactions", "Interactions", stats.interactions, stats_before.interactions, measured,
               kind="number"),
        Figure("interactions_per_post", "Interactions per post", stats.interactions_per_post,
               stats_before.interactions_per_post, measured, kind="average"),
    ]


def local_week_start(instant: datetime, zone: ZoneInfo) -> date:
    """The Monday of the local week ``instant`` falls in."""
    day = instant.astimezone(zone).date()
    return day - timedelta(days=day.weekday())


def weekly_by_platform(records: Sequence[PostRecord], week_starts: Sequence[date],
                       zone: ZoneInfo) -> list[WeekPoint]:
    """Per local week (of the post's scheduled time) and platform: impressions, engagement rate,
    interactions and interactions per post (the rate None on a platform without impressions).

    Every (week, platform) pair of ``week_starts`` and the platforms seen appears, empty weeks
    with zero posts and no rate, so a chart's axis does not skip a week.
    """
    groups = group_measured(records, lambda p: (local_week_start(p.scheduled_at, zone), p.platform))
    platforms = sorted({p.platform for p in records})
    return [WeekPoint(week, platform, engagement_stats(groups.get((week, platform), [])))
            for platform in platforms for week in week_starts]


def dashboard(session: Session, user_id: int, now: datetime, days: int = DEFAULT_PERIOD_DAYS, *,
              weeks: int = DEFAULT_CHART_WEEKS, timezone: str | None = None) -> Dashboard:
    """The dashboard of ``user_id`` for the ``days`` before ``now`` (one of :data:`PERIODS_DAYS`).

    Four queries, each on an index of the user's rows: the posts of the longest window needed
    (two periods, or the chart's weeks), the next scheduled posts, the accounts and the pauses
    in force; a fifth for the user's zone unless ``timezone`` is given (the portal has it).
    """
    if days not in PERIODS_DAYS:
        raise InvalidValue(f"period must be one of {', '.join(map(str, PERIODS_DAYS))} days, not {days}")
    timezone = timezone or user_timezone(session, user_id)
    zone = ZoneInfo(timezone)
    since, previous_since = now - timedelta(days=days), now - timedelta(days=2 * days)
    this_week = local_week_start(now, zone)
    week_starts = [this_week - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    first_week = datetime.combine(week_starts[0], time(0), zone)
    records = post_records(session, user_id, min(previous_since, first_week), now, timezone)
    current = [p for p in records if p.scheduled_at >= since]
    previous = [p for p in records if previous_since <= p.scheduled_at < since]
    top, bottom = ranked(current, DEFAULT_RANKED)
    top_count, bottom_count = ranked_by_interactions(current, DEFAULT_RANKED)
    accounts = account_states(session, user_id, now)
    by_platform = {a.platform: a for a in accounts}  # one account per platform and user

    def listed(posts: list[PostRecord]) -> list[RankedPost]:
        return [_ranked(p, by_platform.get(p.platform)) for p in posts]

    return Dashboard(
        now=now, days=days, timezone=timezone,
        figures=period_figures(current, previous, since, now),
        weeks=weekly_by_platform([p for p in records if p.scheduled_at >= first_week], week_starts, zone),
        week_starts=week_starts,
        heatmap=by_weekday_and_hour(current),
        top=listed(top), bottom=listed(bottom),
        top_by_interactions=listed(top_count), bottom_by_interactions=listed(bottom_count),
        unrated=unrated_platforms(current),
        next_posts=next_posts(session, user_id, now),
        accounts=accounts,
        pauses=pauses_affecting(session, user_id, now, platforms={a.platform for a in accounts}),
    )


def next_posts(session: Session, user_id: int, now: datetime, limit: int = DEFAULT_NEXT_POSTS) -> list[NextPost]:
    """The user's next scheduled posts, soonest first."""
    rows = session.execute(
        select(Post.id, Post.platform, Post.scheduled_at, Post.text)
        .where(Post.user_id == user_id, Post.scheduled_at >= now, Post.status == PostStatus.SCHEDULED)
        .order_by(Post.scheduled_at, Post.id)
        .limit(limit)
    ).all()
    return [NextPost(r.id, r.platform, r.scheduled_at, r.text[:80]) for r in rows]


def account_states(session: Session, user_id: int, now: datetime) -> list[AccountState]:
    """Each connected account: connected, expiring soon, or needing re-authorisation."""
    accounts = session.execute(
        select(PlatformAccount.platform, PlatformAccount.handle, PlatformAccount.status,
               PlatformAccount.expires_at, PlatformAccount.refresh_expires_at, PlatformAccount.service_url,
               PlatformAccount.refresh_token_encrypted.is_not(None).label("renewable"))
        .where(PlatformAccount.user_id == user_id)
        .order_by(PlatformAccount.platform)
    ).all()
    states = []
    for a in accounts:
        # A refresh token renews the access token by itself: only its own expiry needs the user.
        expires = a.refresh_expires_at if a.renewable else a.expires_at
        if a.status != AccountStatus.ACTIVE or (expires is not None and expires <= now):
            state = "needs_reauth"
        elif expires is not None and expires - now <= EXPIRY_WARNING:
            state = "expires"
        else:
            state = "connected"
        states.append(AccountState(a.platform, a.handle, state, expires, a.service_url))
    return states


def pauses_affecting(session: Session, user_id: int, now: datetime, *, platforms: set[str] | None = None
                     ) -> list[Pause]:
    """Provider pauses in force that hold the user's work: their platforms' publishers, and the
    providers every user depends on (research, generation). Other platforms' pauses are not theirs.
    ``platforms``: the user's connected platforms when the caller has them already."""
    theirs = platforms if platforms is not None else set(
        session.scalars(select(PlatformAccount.platform).where(PlatformAccount.user_id == user_id)))
    not_theirs = {publisher_provider(key) for key in PLATFORMS if key not in theirs}
    holds = session.execute(
        select(ProviderHold.provider, ProviderHold.kind, ProviderHold.until)
        .where(ProviderHold.until > now).order_by(ProviderHold.provider)
    ).all()
    names = {publisher_provider(key): display_name(key) for key in PLATFORMS}
    return [Pause(h.provider, h.kind, h.until, names.get(h.provider, h.provider)) for h in holds
            if h.provider not in not_theirs]


def _ranked(post: PostRecord, account: AccountState | None) -> RankedPost:
    assert post.post_id is not None and post.published_at is not None
    return RankedPost(post.post_id, post.platform, post.published_at, post.impressions, post.interactions,
                      post.engagement_rate, post.text[:80],
                      published_post_url(post.platform, post.external_id, account))


def describe_account(state: AccountState) -> dict[str, Any]:
    """Display words for an account state (the dashboard's and the notifications' wording)."""
    name = display_name(state.platform)
    if state.state == "needs_reauth":
        return {"name": name, "text": "needs re-authorisation", "reconnect": True}
    if state.state == "expires" and state.expires_at is not None:
        return {"name": name, "text": f"connected, expires on {state.expires_at:%d %b %Y}", "reconnect": True}
    return {"name": name, "text": "connected", "reconnect": False}
