"""Weekly report arithmetic: pure functions over plain records, no I/O, no clock.

:func:`build_report` turns one week of a user's posts and workflow executions (plus the
previous week's posts, for the trend) into a :class:`WeeklyReport`. The workflow in
:mod:`app.workflows.report` loads the records and stores the result; everything that can be
wrong about the numbers lives here, where it is tested exhaustively.

Definitions used throughout:

- A post is **measured** when it was published and its figures were fetched at least once
  (``metrics_updated_at`` is set): only measured posts count towards the figures. Its
  **interactions** are likes + shares (reposts, boosts) + comments (replies), on every platform;
  a group's **interactions per post** is their sum divided by its measured posts.
- A post is **rated** when it is measured, its platform reports impressions (the registry's
  ``reports_impressions``: X and LinkedIn do, Bluesky and Mastodon do not) and it was seen at
  least once. Its **engagement rate** is interactions per impression; the engagement rate of a
  group is the **mean of its rated posts' rates** (so one viral post does not hide nine ignored
  ones), and None, "not reported", when it has none: a Bluesky post's 0 impressions mean
  "not counted", never a 0 % rate.
- Rules that compare a platform's posts with each other use its **yardstick**: the engagement
  rate where the platform reports impressions, interactions per post where it does not (the
  same audience on both sides, so the ratio means the same).
- A published post is **on time** when it went out at most :data:`ON_TIME_TOLERANCE` after its
  scheduled time (early counts as on time), **late** otherwise.
- Weekday and hour are those of the user's local time zone when the post went out.

Recommendation rules, in the order the sentences appear:

1. **Reconnect**: one per platform whose account needs re-authorisation, or which had a post
   sent to review for ``needs_reauth``.
2. **Review**: when posts waited in the review queue, how many and why.
3. **Posting time**: per platform, among the local posting times ("HH:MM" as scheduled) with at
   least :data:`MIN_POSTS_FOR_RULE` posts its yardstick counts, move from the worst time to the
   best one when the best is at least :data:`HOUR_IMPROVEMENT` times as good.
4. **Frequency**: per platform with at least :data:`MIN_POSTS_FOR_RULE` such posts this week
   and the previous one: increase by :data:`FREQUENCY_STEP` when its yardstick held up (at least
   :data:`FREQUENCY_HOLD_RATIO` of last week's, and above zero); reduce by the same step when it
   fell below :data:`FREQUENCY_DROP_RATIO` of last week's. Bounded by 1 and 14 posts a week.
5. **Topics**: with at least two rated topics, the (up to :data:`MAX_TOPICS_LISTED`) topics
   whose engagement rate beat the week's average, best first; in a week without a rated post,
   by interactions per post instead.
6. **Empty week**: nothing was scheduled at all: check the accounts and autonomous mode.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from statistics import fmean
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from app.platforms import display_name, reports_impressions
from app.scheduling import MAX_FREQUENCY, MIN_FREQUENCY
from app.statuses import ExecutionStatus, PostStatus, ReviewReason

#: A post published at most this long after its scheduled time counts as on time.
ON_TIME_TOLERANCE = timedelta(seconds=60)
#: Posts listed among the best, and among the worst, of the week.
DEFAULT_TOP_N = 3
#: Fewest measured posts an hour (or a platform, for frequency) needs before a rule uses it.
MIN_POSTS_FOR_RULE = 2
#: Ratio by which the best hour must beat the worst to recommend a move (1.25: 25 % better).
HOUR_IMPROVEMENT = 1.25
#: Engagement at least this share of the previous week's "held up": post more.
FREQUENCY_HOLD_RATIO = 0.9
#: Engagement below this share of the previous week's "fell": post less.
FREQUENCY_DROP_RATIO = 0.75
#: Posts a week added or removed by a frequency recommendation.
FREQUENCY_STEP = 2
#: Topics named by the "Topics that worked" sentence.
MAX_TOPICS_LISTED = 3
#: Characters of a post's text kept in the top and bottom lists.
EXCERPT_LENGTH = 80

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
PUBLISHED, FAILED = PostStatus.PUBLISHED, PostStatus.FAILED
NEEDS_REVIEW, CANCELLED = PostStatus.NEEDS_REVIEW, PostStatus.CANCELLED


@dataclass(frozen=True)
class PostRecord:
    """What the report needs of one post. Times are aware UTC instants."""

    platform: str
    status: str
    scheduled_at: datetime
    published_at: datetime | None = None
    review_reason: str | None = None
    impressions: int = 0
    likes: int = 0
    shares: int = 0
    comments: int = 0
    topic: str | None = None
    #: The user's IANA time zone: weekday and hour are reported in it.
    timezone: str = "UTC"
    post_id: int | None = None
    text: str = ""
    #: The post's id on its platform (for a link to it), None before it is published.
    external_id: str | None = None
    #: When its figures were last fetched; None before the first fetch.
    metrics_updated_at: datetime | None = None

    #: Derived once, when the record is made (the fields are frozen): a dashboard asks each
    #: record for them many times, once per grouping it appears in.
    #: Likes + shares + comments.
    interactions: int = field(init=False, repr=False, compare=False)
    #: Published and its figures fetched at least once: the only posts the figures use. Not
    #: "seen at least once": Bluesky and Mastodon report no impressions, and a post of theirs
    #: with five likes is measured all the same.
    measured: bool = field(init=False, repr=False, compare=False)
    #: Measured, on a platform that reports impressions, and seen at least once: the posts that
    #: have an engagement rate (a rate over no impression would be 0/0).
    rated: bool = field(init=False, repr=False, compare=False)
    #: Interactions per impression; None for a post that is not rated.
    engagement_rate: float | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        interactions = self.likes + self.shares + self.comments
        measured = self.status == PUBLISHED and self.metrics_updated_at is not None
        rated = measured and self.impressions > 0 and reports_impressions(self.platform)
        object.__setattr__(self, "interactions", interactions)
        object.__setattr__(self, "measured", measured)
        object.__setattr__(self, "rated", rated)
        object.__setattr__(self, "engagement_rate", engagement_rate(interactions, self.impressions) if rated else None)

    @cached_property
    def local_time(self) -> datetime:
        """When the post went out (else was due), in the user's zone."""
        return (self.published_at or self.scheduled_at).astimezone(_zone(self.timezone))

    @cached_property
    def posting_time(self) -> str:
        """The local "HH:MM" it was scheduled for: the setting a recommendation can change."""
        return self.scheduled_at.astimezone(_zone(self.timezone)).strftime("%H:%M")


@dataclass(frozen=True)
class ExecutionRecord:
    """What the report needs of one workflow run."""

    status: str
    workflow: str = ""


K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class EngagementStats:
    """Engagement of a group of posts: its measured posts and their interactions (every
    platform), and its rated posts, their impressions and the mean of their rates (None when
    none is rated: not reported, or nothing measured yet)."""

    posts: int = 0
    impressions: int = 0
    interactions: int = 0
    engagement_rate: float | None = None
    #: Measured posts that have an engagement rate (on platforms that report impressions).
    rated_posts: int = 0

    @property
    def interactions_per_post(self) -> float | None:
        """Interactions per measured post, every platform counted; None without one."""
        return self.interactions / self.posts if self.posts else None

    def as_dict(self) -> dict[str, Any]:
        return {"posts": self.posts, "impressions": self.impressions, "interactions": self.interactions,
                "interactions_per_post": self.interactions_per_post, "rated_posts": self.rated_posts,
                "engagement_rate": self.engagement_rate}


@dataclass(frozen=True)
class PostCounts:
    """How a period's posts ended. ``scheduled`` counts them all; ``pending`` are not out yet."""

    scheduled: int = 0
    published: int = 0
    on_time: int = 0
    late: int = 0
    failed: int = 0
    reviewed: int = 0
    cancelled: int = 0
    pending: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class ExecutionStats:
    """Workflow runs; ``success_rate`` over finished runs, None when none finished."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    unfinished: int = 0
    success_rate: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Trend:
    """This period against the one before."""

    current: EngagementStats
    previous: EngagementStats

    @property
    def engagement_rate_change_pct(self) -> float | None:
        return percent_change(self.current.engagement_rate, self.previous.engagement_rate)

    @property
    def impressions_change_pct(self) -> float | None:
        return percent_change(self.current.impressions, self.previous.impressions)

    @property
    def interactions_change_pct(self) -> float | None:
        return percent_change(self.current.interactions, self.previous.interactions)

    @property
    def interactions_per_post_change_pct(self) -> float | None:
        return percent_change(self.current.interactions_per_post, self.previous.interactions_per_post)

    def as_dict(self) -> dict[str, Any]:
        return {"engagement_rate_change_pct": self.engagement_rate_change_pct,
                "impressions_change_pct": self.impressions_change_pct,
                "interactions_change_pct": self.interactions_change_pct,
                "interactions_per_post_change_pct": self.interactions_per_post_change_pct,
                "previous": self.previous.as_dict(), "current": self.current.as_dict()}


@dataclass(frozen=True)
class SettingChange:
    """A recommendation a user can apply with one button: a setting of theirs, from and to.

    ``setting`` is ``"posting_time"`` (``current`` and ``proposed`` are local "HH:MM" times of
    ``platform``) or ``"content_frequency"`` (posts a week, shared by every platform).
    ``sentence`` is the recommendation it comes from, word for word.
    """

    setting: str
    platform: str
    current: str | int
    proposed: str | int
    sentence: str

    def as_dict(self) -> dict[str, Any]:
        return {"setting": self.setting, "platform": self.platform, "current": self.current,
                "proposed": self.proposed, "sentence": self.sentence}


@dataclass(frozen=True)
class AppliedAdvice:
    """A change the user applied from an earlier report, and when (to judge it in the next one)."""

    setting: str
    platform: str
    current: str | int
    proposed: str | int
    applied_at: datetime


@dataclass
class WeeklyReport:
    """One week's figures and recommendations; :meth:`as_content` is what gets stored."""

    period_start: datetime
    period_end: datetime
    summary: str
    posts: PostCounts
    executions: ExecutionStats
    top: list[dict[str, Any]]
    bottom: list[dict[str, Any]]
    #: The posts of platforms without impressions, ranked by interactions (see :func:`ranked_by_interactions`).
    top_by_interactions: list[dict[str, Any]]
    bottom_by_interactions: list[dict[str, Any]]
    by_platform: dict[str, EngagementStats]
    by_weekday: dict[str, EngagementStats]
    by_hour: dict[str, EngagementStats]
    trend: Trend
    recommendations: list[str] = field(default_factory=list)
    #: The recommendations that change a setting, for an "apply" button.
    changes: list[SettingChange] = field(default_factory=list)
    #: Whether the advice applied since the previous report helped, one sentence each.
    applied_advice: list[str] = field(default_factory=list)

    def as_content(self) -> dict[str, Any]:
        """A JSON-ready dict (the MemoryEntry content of the weekly insight)."""
        return {
            "summary": self.summary,
            "period": {"start": self.period_start.isoformat(), "end": self.period_end.isoformat()},
            "posts": self.posts.as_dict(),
            "executions": self.executions.as_dict(),
            "top": list(self.top),
            "bottom": list(self.bottom),
            "top_by_interactions": list(self.top_by_interactions),
            "bottom_by_interactions": list(self.bottom_by_interactions),
            "by_platform": _stats_dicts(self.by_platform),
            "by_weekday": _stats_dicts(self.by_weekday),
            "by_hour": _stats_dicts(self.by_hour),
            "trend": self.trend.as_dict(),
            "recommendations": list(self.recommendations),
            "changes": [change.as_dict() for change in self.changes],
            "applied_advice": list(self.applied_advice),
        }


# -- building blocks -----------------------------------------------------------------------


def engagement_rate(interactions: int, impressions: int) -> float:
    """Interactions per impression; 0.0 before anyone saw the post (the one definition)."""
    return interactions / impressions if impressions > 0 else 0.0


def published_on_time(scheduled_at: datetime, published_at: datetime) -> bool:
    """Out no later than :data:`ON_TIME_TOLERANCE` after it was due (early counts as on time)."""
    return published_at - scheduled_at <= ON_TIME_TOLERANCE


def is_on_time(post: PostRecord) -> bool:
    """Published no later than :data:`ON_TIME_TOLERANCE` after it was due."""
    return (post.status == PUBLISHED and post.published_at is not None
            and published_on_time(post.scheduled_at, post.published_at))


def group_measured(posts: Iterable[PostRecord], key: Callable[[PostRecord], K]) -> dict[K, list[PostRecord]]:
    """The measured posts grouped by ``key``, in key order (the one grouping every breakdown uses)."""
    groups: dict[K, list[PostRecord]] = defaultdict(list)
    for post in posts:
        if post.measured:
            groups[key(post)].append(post)
    return {k: groups[k] for k in sorted(groups)}  # type: ignore[type-var]


def post_counts(posts: Iterable[PostRecord]) -> PostCounts:
    """How the period's posts ended: scheduled (all), published, on time, late, failed, ..."""
    counts: Counter[str] = Counter()
    for post in posts:
        counts["scheduled"] += 1
        if post.status == PUBLISHED:
            counts["published"] += 1
            counts["on_time" if is_on_time(post) else "late"] += 1
        elif post.status == FAILED:
            counts["failed"] += 1
        elif post.status == NEEDS_REVIEW:
            counts["reviewed"] += 1
        elif post.status == CANCELLED:
            counts["cancelled"] += 1
        else:  # scheduled, queued or publishing: not out yet
            counts["pending"] += 1
    return PostCounts(**counts)


def execution_stats(executions: Iterable[ExecutionRecord]) -> ExecutionStats:
    """Succeeded and failed runs; ``success_rate`` over finished runs, None when there were none."""
    statuses = Counter(e.status for e in executions)
    succeeded, failed = statuses[ExecutionStatus.SUCCEEDED], statuses[ExecutionStatus.FAILED]
    total = sum(statuses.values())
    finished = succeeded + failed
    return ExecutionStats(total=total, succeeded=succeeded, failed=failed, unfinished=total - finished,
                          success_rate=succeeded / finished if finished else None)


def engagement_stats(posts: Iterable[PostRecord]) -> EngagementStats:
    """Measured posts and their interactions; rated posts, their impressions and their mean
    engagement rate (None when none is rated)."""
    measured = [p for p in posts if p.measured]
    rates = [p.engagement_rate for p in measured if p.engagement_rate is not None]
    return EngagementStats(
        posts=len(measured),
        impressions=sum(p.impressions for p in measured if p.rated),
        interactions=sum(p.interactions for p in measured),
        engagement_rate=fmean(rates) if rates else None,
        rated_posts=len(rates),
    )


def unrated_platforms(posts: Iterable[PostRecord]) -> list[str]:
    """The platforms of the measured posts that report no impressions, in name order: those a
    missing engagement rate is "not reported by"."""
    return sorted({p.platform for p in posts if p.measured and not reports_impressions(p.platform)})


def platform_names(platforms: Iterable[str]) -> str:
    """Display names in key order, as a sentence lists them: "Bluesky and Mastodon"."""
    names = [_platform_name(p) for p in sorted(set(platforms))]
    return _and_list(names) if names else ""


def not_reported(platforms: Iterable[str]) -> str:
    """What a missing rate says instead of 0 %: "not reported by Bluesky and Mastodon"."""
    names = platform_names(platforms)
    return f"not reported by {names}" if names else "not reported"


def yardstick(platform: str, stats: EngagementStats) -> float | None:
    """What the rules compare a platform's groups of posts by: the mean engagement rate where the
    platform reports impressions, interactions per post where it does not. Within one platform
    both compare like with like (the same audience), and neither is ever a 0 % that only means
    "not reported"."""
    return stats.engagement_rate if reports_impressions(platform) else stats.interactions_per_post


def yardstick_posts(platform: str, stats: EngagementStats) -> int:
    """How many posts :func:`yardstick` rests on (rated ones, or measured ones)."""
    return stats.rated_posts if reports_impressions(platform) else stats.posts


def yardstick_text(platform: str, value: float, *, named: bool = False) -> str:
    """A yardstick's value as a sentence writes it: "4.0%" or "6.5"; ``named`` adds what it is
    ("4.0% engagement", "6.5 interactions per post")."""
    text = _pct(value) if reports_impressions(platform) else f"{value:.1f}"
    return f"{text} {_yardstick_name(platform)}" if named else text


def _yardstick_name(platform: str) -> str:
    return "engagement" if reports_impressions(platform) else "interactions per post"


def percent_change(current: float | None, previous: float | None) -> float | None:
    """Change from ``previous`` to ``current`` in percent; None without a non-zero previous value."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / previous * 100


def ranked(posts: Iterable[PostRecord], n: int = DEFAULT_TOP_N) -> tuple[list[PostRecord], list[PostRecord]]:
    """The ``n`` most and ``n`` least engaging rated posts, by engagement rate; a post is never
    in both lists. Posts of platforms without impressions are ranked apart, by
    :func:`ranked_by_interactions`.

    Ties go to the earlier post (then the lower id), so the order never depends on input order.
    """
    return _best_and_worst([p for p in posts if p.rated], lambda p: p.engagement_rate or 0.0, n)


def ranked_by_interactions(posts: Iterable[PostRecord], n: int = DEFAULT_TOP_N
                           ) -> tuple[list[PostRecord], list[PostRecord]]:
    """The ``n`` measured posts with the most and the ``n`` with the fewest interactions, among
    the platforms that report no impressions (Bluesky, Mastodon); never in both lists.

    A list of their own rather than one list for every platform: a rate and a count cannot be
    ranked against each other without an exchange rate we would have to make up, ranking every
    platform by interactions would reward X's and LinkedIn's reach rather than the post, and
    ranking these posts by a rate they cannot have would put them all last at 0 %.
    """
    unrated = [p for p in posts if p.measured and not reports_impressions(p.platform)]
    return _best_and_worst(unrated, lambda p: float(p.interactions), n)


def _best_and_worst(posts: list[PostRecord], score: Callable[[PostRecord], float], n: int
                    ) -> tuple[list[PostRecord], list[PostRecord]]:
    def key(p: PostRecord) -> tuple[datetime, int, str]:
        return (p.published_at or p.scheduled_at, p.post_id or 0, p.platform)

    best = sorted(posts, key=lambda p: (-score(p), key(p)))
    top = best[:n]
    rest = best[n:]
    bottom = sorted(rest, key=lambda p: (score(p), key(p)))[:n]
    return top, bottom


def by_local_weekday(posts: Iterable[PostRecord]) -> dict[str, EngagementStats]:
    """Engagement per local weekday, Monday first, weekdays without measured posts left out."""
    groups = group_measured(posts, lambda p: p.local_time.weekday())
    return {WEEKDAYS[day]: engagement_stats(group) for day, group in groups.items()}


def by_local_hour(posts: Iterable[PostRecord]) -> dict[str, EngagementStats]:
    """Engagement per local hour ("09:00"), in hour order, hours without measured posts left out."""
    groups = group_measured(posts, lambda p: p.local_time.hour)
    return {_hour_label(hour): engagement_stats(group) for hour, group in groups.items()}


def by_weekday_and_hour(posts: Iterable[PostRecord]) -> dict[tuple[int, int], EngagementStats]:
    """Engagement per (local weekday 0-6 from Monday, local hour 0-23): the dashboard's heatmap.
    Cells without measured posts are left out; a cell whose posts are all on platforms without
    impressions has no rate (the heatmap draws rates only, and says which platforms it leaves out)."""
    groups = group_measured(posts, lambda p: (p.local_time.weekday(), p.local_time.hour))
    return {cell: engagement_stats(group) for cell, group in groups.items()}


def by_platform(posts: Iterable[PostRecord]) -> dict[str, EngagementStats]:
    """Engagement per platform, platforms in name order."""
    return {platform: engagement_stats(group)
            for platform, group in group_measured(posts, lambda p: p.platform).items()}


# -- recommendations -----------------------------------------------------------------------


def reconnect_recommendations(posts: Iterable[PostRecord], reauth_platforms: Iterable[str]) -> list[str]:
    """Rule 1: one sentence per platform whose account was refused."""
    platforms = set(reauth_platforms)
    platforms.update(p.platform for p in posts if p.status == NEEDS_REVIEW and p.review_reason == ReviewReason.NEEDS_REAUTH)
    return [f"Reconnect your {_platform_name(platform)} account: the platform refused its access, "
            f"so posts to it cannot go out until you do." for platform in sorted(platforms)]


def review_recommendation(posts: Iterable[PostRecord]) -> list[str]:
    """Rule 2: how many posts waited for review, by reason (most frequent first)."""
    reasons = Counter((p.review_reason or "unspecified") for p in posts if p.status == NEEDS_REVIEW)
    if not reasons:
        return []
    total = sum(reasons.values())
    detail = ", ".join(f"{count} {reason.replace('_', ' ')}"
                       for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
    return [f"{_plural(total, 'post')} waited for review: {detail}. "
            f"Approve, edit or cancel {'it' if total == 1 else 'them'} in the review queue."]


def posting_time_changes(posts: Iterable[PostRecord]) -> list[SettingChange]:
    """Rule 3: per platform, move from the worst local posting time to the best one when clearly better.

    Grouped by the local time each post was scheduled for (a user's "HH:MM" setting), so the
    sentence names times the user can actually change; compared by the platform's
    :func:`yardstick` (interactions per post on Bluesky and Mastodon, never their missing rate).
    """
    changes = []
    for platform, measured in group_measured(posts, lambda p: p.platform).items():
        groups = {at: engagement_stats(g) for at, g in group_measured(measured, lambda p: p.posting_time).items()}
        scores = {at: yardstick(platform, stats) for at, stats in groups.items()
                  if yardstick_posts(platform, stats) >= MIN_POSTS_FOR_RULE}
        rates = {at: score for at, score in scores.items() if score is not None}
        if len(rates) < 2:
            continue
        # Ties go to the earlier time, for both ends, so the choice is deterministic.
        best = min(rates, key=lambda at: (-rates[at], at))
        worst = min(rates, key=lambda at: (rates[at], at))
        if rates[best] > rates[worst] and _at_least(rates[best], rates[worst] * HOUR_IMPROVEMENT):
            sentence = (f"Move your {_platform_name(platform)} posting time from {worst} to {best}: "
                        f"posts at {best} had {yardstick_text(platform, rates[best], named=True)} "
                        f"vs {yardstick_text(platform, rates[worst])}")
            changes.append(SettingChange("posting_time", platform, worst, best, sentence))
    return changes


def posting_time_recommendations(posts: Iterable[PostRecord]) -> list[str]:
    """Rule 3's sentences (see :func:`posting_time_changes`)."""
    return [change.sentence for change in posting_time_changes(posts)]


def frequency_changes(
    posts: Sequence[PostRecord], previous_posts: Sequence[PostRecord], frequency: int
) -> list[SettingChange]:
    """Rule 4: per platform, post more while its :func:`yardstick` holds up, less when it falls
    (interactions per post on a platform without impressions: a rate it cannot have never
    counts as a fall to 0 %)."""
    current, previous = by_platform(posts), by_platform(previous_posts)
    changes = []
    for platform, now_stats in current.items():
        before = previous.get(platform)
        if (before is None or yardstick_posts(platform, now_stats) < MIN_POSTS_FOR_RULE
                or yardstick_posts(platform, before) < MIN_POSTS_FOR_RULE):
            continue
        rate, previous_rate = yardstick(platform, now_stats) or 0.0, yardstick(platform, before) or 0.0
        name, now_text, before_text = (_yardstick_name(platform), yardstick_text(platform, rate),
                                       yardstick_text(platform, previous_rate))
        if rate > 0 and _at_least(rate, previous_rate * FREQUENCY_HOLD_RATIO) and frequency < MAX_FREQUENCY:
            target = min(MAX_FREQUENCY, frequency + FREQUENCY_STEP)
            sentence = (f"Increase frequency on {_platform_name(platform)} from {frequency} to {target} posts a week: "
                        f"{name} held up at {now_text} (previous week {before_text})")
        elif not _at_least(rate, previous_rate * FREQUENCY_DROP_RATIO) and frequency > MIN_FREQUENCY:
            target = max(MIN_FREQUENCY, frequency - FREQUENCY_STEP)
            sentence = (f"Reduce frequency on {_platform_name(platform)} from {frequency} to {target} posts a week: "
                        f"{name} fell from {before_text} to {now_text}")
        else:
            continue
        changes.append(SettingChange("content_frequency", platform, frequency, target, sentence))
    return changes


def frequency_recommendations(
    posts: Sequence[PostRecord], previous_posts: Sequence[PostRecord], frequency: int
) -> list[str]:
    """Rule 4's sentences (see :func:`frequency_changes`)."""
    return [change.sentence for change in frequency_changes(posts, previous_posts, frequency)]


def topic_recommendation(posts: Iterable[PostRecord]) -> list[str]:
    """Rule 5: the topics whose engagement rate beat the week's average, best first, over the
    rated posts. A week without one (only Bluesky and Mastodon) compares interactions per post
    instead; the two are never mixed, since a rate and a count have no common average."""
    posts = list(posts)
    rated = [p for p in posts if p.rated]
    pool = rated or [p for p in posts if p.measured]

    def score(group: Sequence[PostRecord]) -> float:
        return fmean(p.engagement_rate or 0.0 for p in group) if rated else fmean(p.interactions for p in group)

    groups = group_measured((p for p in pool if p.topic), lambda p: p.topic or "")
    if len(groups) < 2:
        return []
    average = score(pool)
    rates = {topic: score(group) for topic, group in groups.items()}
    winners = sorted((t for t in rates if rates[t] > average), key=lambda t: (-rates[t], t))
    if not winners:
        return []
    shown = _pct if rated else (lambda v: f"{v:.1f} interactions per post")
    listed = ", ".join(f"{topic} ({shown(rates[topic])})" for topic in winners[:MAX_TOPICS_LISTED])
    return [f"Topics that worked: {listed}"]


def applied_advice_outcomes(applied: Iterable[AppliedAdvice], posts: Sequence[PostRecord],
                            previous_posts: Sequence[PostRecord]) -> list[str]:
    """Whether each change applied from an earlier report helped: the platform's :func:`yardstick`
    this week against the week before (only posts scheduled after the change count as "after")."""
    sentences = []
    for advice in applied:
        platform = advice.platform
        after = yardstick(platform, engagement_stats(p for p in posts if p.platform == platform
                                                     and p.scheduled_at >= advice.applied_at))
        before = yardstick(platform, engagement_stats(p for p in [*previous_posts, *posts]
                                                      if p.platform == platform and p.scheduled_at < advice.applied_at))
        what = (f"moving your {_platform_name(platform)} posting time from {advice.current} to "
                f"{advice.proposed}" if advice.setting == "posting_time"
                else f"changing your frequency from {advice.current} to {advice.proposed} posts a week")
        name = _yardstick_name(platform)
        if after is None or before is None:
            verdict = "it is too early to tell: no measured posts on both sides of the change yet"
        elif after > before:
            verdict = (f"it helped: {name} rose from {yardstick_text(platform, before)} to "
                       f"{yardstick_text(platform, after)}")
        else:
            verdict = (f"it did not help: {name} went from {yardstick_text(platform, before)} to "
                       f"{yardstick_text(platform, after)}")
        sentences.append(f"You applied the advice of {advice.applied_at:%d %b} ({what}); {verdict}.")
    return sentences


EMPTY_WEEK_RECOMMENDATION = (
    "No posts were scheduled this week: check that your accounts are connected and that "
    "autonomous mode is enabled in your settings."
)


# -- the report ----------------------------------------------------------------------------


def build_report(
    posts: Sequence[PostRecord],
    executions: Sequence[ExecutionRecord],
    *,
    period_start: datetime,
    period_end: datetime,
    previous_posts: Sequence[PostRecord] = (),
    frequency: int = 3,
    reauth_platforms: Iterable[str] = (),
    applied: Iterable[AppliedAdvice] = (),
) -> WeeklyReport:
    """The week's report: counts, rankings, breakdowns, trend and recommendations.

    ``posts`` are the posts scheduled in [period_start, period_end), ``previous_posts`` those of
    the week before (for the trend and the frequency rule), ``frequency`` the user's posts a week
    per platform, ``reauth_platforms`` the platforms whose account needs re-authorisation and
    ``applied`` the advice the user applied since the previous report.
    """
    counts = post_counts(posts)
    runs = execution_stats(executions)
    trend = Trend(current=engagement_stats(posts), previous=engagement_stats(previous_posts))
    top, bottom = ranked(posts)
    top_count, bottom_count = ranked_by_interactions(posts)

    recommendations = reconnect_recommendations(posts, reauth_platforms)
    changes: list[SettingChange] = []
    if not posts:
        recommendations.append(EMPTY_WEEK_RECOMMENDATION)
    else:
        recommendations += review_recommendation(posts)
        changes = posting_time_changes(posts) + frequency_changes(posts, previous_posts, frequency)
        recommendations += [change.sentence for change in changes]
        recommendations += topic_recommendation(posts)

    return WeeklyReport(
        period_start=period_start,
        period_end=period_end,
        summary=_summary(period_start, period_end, counts, trend, runs, unrated_platforms(posts)),
        posts=counts,
        executions=runs,
        top=[_ranked_entry(p) for p in top],
        bottom=[_ranked_entry(p) for p in bottom],
        top_by_interactions=[_ranked_entry(p) for p in top_count],
        bottom_by_interactions=[_ranked_entry(p) for p in bottom_count],
        by_platform=by_platform(posts),
        by_weekday=by_local_weekday(posts),
        by_hour=by_local_hour(posts),
        trend=trend,
        recommendations=recommendations,
        changes=changes,
        applied_advice=applied_advice_outcomes(applied, posts, previous_posts),
    )


def _summary(start: datetime, end: datetime, counts: PostCounts, trend: Trend, runs: ExecutionStats,
             unrated: Sequence[str] = ()) -> str:
    period = f"Week {start:%Y-%m-%d} to {end:%Y-%m-%d}"
    if counts.scheduled == 0:
        return f"{period}: no posts were scheduled."
    parts = [
        f"{period}: {_plural(counts.scheduled, 'post')} scheduled; {counts.published} published "
        f"({counts.on_time} on time, {counts.late} late), {counts.failed} failed, "
        f"{counts.reviewed} waited for review, {counts.cancelled} cancelled."
    ]
    overall = trend.current
    if overall.posts == 0:
        parts.append("No engagement figures yet.")
    else:
        change = trend.engagement_rate_change_pct
        versus = "" if change is None else f" ({change:+.1f}% vs the previous week)"
        if overall.engagement_rate is not None:
            parts.append(f"Average engagement {_pct(overall.engagement_rate)}{versus} "
                         f"over {overall.impressions:,} impressions.")
        per_post = overall.interactions_per_post or 0.0
        change = trend.interactions_per_post_change_pct
        versus = "" if change is None else f", {change:+.1f}% vs the previous week"
        parts.append(f"{overall.interactions:,} interactions (likes, shares, comments) on "
                     f"{_plural(overall.posts, 'measured post')}: {per_post:.1f} per post{versus}.")
        if unrated:
            names = platform_names(unrated)
            one = len(unrated) == 1
            parts.append(f"{names} {'reports' if one else 'report'} no impressions: "
                         f"{'its' if one else 'their'} posts count by interactions, without an engagement rate.")
    if runs.success_rate is not None:
        finished = runs.succeeded + runs.failed
        parts.append(f"Workflow runs: {runs.succeeded} of {finished} succeeded "
                     f"({runs.success_rate:.0%}).")
    return " ".join(parts)


def _ranked_entry(post: PostRecord) -> dict[str, Any]:
    return {
        "post_id": post.post_id,
        "platform": post.platform,
        "topic": post.topic,
        "published_at": (post.published_at or post.scheduled_at).isoformat(),
        "impressions": post.impressions,
        "interactions": post.interactions,
        "engagement_rate": post.engagement_rate,
        "excerpt": post.text[:EXCERPT_LENGTH],
    }


def _stats_dicts(groups: dict[str, EngagementStats]) -> dict[str, dict[str, Any]]:
    return {key: stats.as_dict() for key, stats in groups.items()}


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _at_least(value: float, threshold: float) -> bool:
    """``value >= threshold``, where a rate exactly on a rule's boundary counts as reaching it
    (0.04 * 0.9 is 0.036000000000000004 in floating point, not 0.036)."""
    return value >= threshold or math.isclose(value, threshold, rel_tol=1e-9, abs_tol=1e-12)


def _and_list(names: Sequence[str]) -> str:
    """"A", "A and B", "A, B and C"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _hour_label(hour: int) -> str:
    return f"{hour:02d}:00"


def _pct(rate: float) -> str:
    return f"{rate:.1%}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _platform_name(platform: str) -> str:
    return display_name(platform)
