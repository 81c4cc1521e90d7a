"""Weekly report arithmetic over hand-built records: every figure and every rule, both ways."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from app.report_math import (
    EMPTY_WEEK_RECOMMENDATION,
    AppliedAdvice,
    ExecutionRecord,
    PostRecord,
    build_report,
    by_local_hour,
    by_local_weekday,
    by_platform,
    by_weekday_and_hour,
    engagement_stats,
    execution_stats,
    frequency_recommendations,
    group_measured,
    is_on_time,
    not_reported,
    percent_change,
    post_counts,
    posting_time_recommendations,
    ranked,
    ranked_by_interactions,
    reconnect_recommendations,
    review_recommendation,
    topic_recommendation,
    unrated_platforms,
)

#: Monday 16 November 2026, 09:00 UTC: the first day of the reported week.
MONDAY = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
WEEK_START, WEEK_END = datetime(2026, 11, 15, 8, 0, tzinfo=UTC), datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def post(rate: float | None = 0.02, *, at: datetime = MONDAY, platform: str = "twitter",
         status: str = "published", delay: timedelta = timedelta(seconds=5), impressions: int = 1000,
         **fields: object) -> PostRecord:
    """A post due at ``at``; published ``delay`` later with ``rate`` engagement (likes only), its
    figures fetched a day later (``rate=None``: never fetched)."""
    values: dict[str, object] = {
        "platform": platform, "status": status, "scheduled_at": at,
        "published_at": at + delay if status == "published" else None,
        "impressions": impressions if rate is not None else 0,
        "likes": round((rate or 0) * impressions),
        "metrics_updated_at": at + timedelta(days=1) if status == "published" and rate is not None else None,
    }
    values.update(fields)
    return PostRecord(**values)  # type: ignore[arg-type]


def at_hour(day: int, hour: int) -> datetime:
    """``day`` days after Monday 16 November 2026, at ``hour``:00 UTC."""
    return datetime(2026, 11, 16 + day, hour, 0, tzinfo=UTC)


def report(posts: list[PostRecord], **kwargs: object):  # type: ignore[no-untyped-def]
    kwargs.setdefault("executions", [])
    executions = kwargs.pop("executions")
    return build_report(posts, executions, period_start=WEEK_START, period_end=WEEK_END, **kwargs)  # type: ignore[arg-type]


# -- single posts --------------------------------------------------------------------------


def test_engagement_rate_is_interactions_per_impression() -> None:
    record = post(None, impressions=0, likes=30, shares=12, comments=8)
    assert record.engagement_rate is None and not record.measured and not record.rated
    record = PostRecord("twitter", "published", MONDAY, MONDAY, impressions=2000, likes=30, shares=12, comments=8,
                        metrics_updated_at=MONDAY + timedelta(hours=6))
    assert record.interactions == 50
    assert record.engagement_rate == pytest.approx(0.025)
    assert record.measured and record.rated


def test_a_post_is_measured_once_its_figures_were_fetched_even_without_impressions() -> None:
    fetched = MONDAY + timedelta(days=1)
    bluesky = PostRecord("bluesky", "published", MONDAY, MONDAY, impressions=0, likes=5, shares=2, comments=1,
                         metrics_updated_at=fetched)
    assert bluesky.measured and not bluesky.rated
    assert bluesky.interactions == 8 and bluesky.engagement_rate is None  # not reported, never 0.0
    # An X post fetched before anyone saw it is measured too, but has no rate (0/0).
    unseen = PostRecord("twitter", "published", MONDAY, MONDAY, metrics_updated_at=fetched)
    assert unseen.measured and not unseen.rated and unseen.engagement_rate is None
    # Published but never fetched: not measured, whatever it holds.
    assert not PostRecord("twitter", "published", MONDAY, MONDAY, impressions=100, likes=3).measured
    # On a platform without impressions, stray impressions still make no rate.
    odd = PostRecord("mastodon", "published", MONDAY, MONDAY, impressions=100, likes=3, metrics_updated_at=fetched)
    assert odd.measured and not odd.rated and odd.engagement_rate is None


def test_unpublished_post_with_impressions_is_not_measured() -> None:
    assert not post(0.05, status="failed").measured


@pytest.mark.parametrize(("delay_s", "on_time"), [
    (0, True), (1, True), (59, True), (60, True), (61, False), (3600, False), (-30, True),
])
def test_on_time_means_published_at_most_60_seconds_after_schedule(delay_s: int, on_time: bool) -> None:
    record = post(delay=timedelta(seconds=delay_s))
    assert is_on_time(record) is on_time
    counts = post_counts([record])
    assert (counts.on_time, counts.late) == ((1, 0) if on_time else (0, 1))


def test_post_counts_sort_every_status_into_one_bucket() -> None:
    posts = [
        post(delay=timedelta(seconds=10)), post(delay=timedelta(minutes=5)),
        post(status="failed"), post(status="failed"), post(status="needs_review", review_reason="stale"),
        post(status="cancelled"), post(status="scheduled"), post(status="queued"), post(status="publishing"),
    ]
    assert post_counts(posts).as_dict() == {"scheduled": 9, "published": 2, "on_time": 1, "late": 1, "failed": 2,
                                  "reviewed": 1, "cancelled": 1, "pending": 3}


# -- executions ----------------------------------------------------------------------------


def test_success_rate_counts_finished_runs_only() -> None:
    runs = [ExecutionRecord("succeeded")] * 3 + [ExecutionRecord("failed"), ExecutionRecord("running"),
                                                 ExecutionRecord("pending")]
    assert execution_stats(runs).as_dict() == {"total": 6, "succeeded": 3, "failed": 1, "unfinished": 2,
                                     "success_rate": 0.75}


@pytest.mark.parametrize("runs", [[], [ExecutionRecord("running")]])
def test_success_rate_is_none_without_finished_runs(runs: list[ExecutionRecord]) -> None:
    assert execution_stats(runs).success_rate is None


# -- local weekday and hour ------------------------------------------------------------------


def test_hour_and_weekday_are_local_across_the_end_of_summer_time() -> None:
    # Europe/Berlin leaves summer time on Sunday 25 October 2026: 09:00 local is 07:00 UTC
    # on the Saturday before and 08:00 UTC on the Monday after.
    saturday = post(0.02, at=datetime(2026, 10, 24, 7, 0, tzinfo=UTC), timezone="Europe/Berlin",
                    delay=timedelta(0))
    monday = post(0.04, at=datetime(2026, 10, 26, 8, 0, tzinfo=UTC), timezone="Europe/Berlin",
                  delay=timedelta(0))
    hours = by_local_hour([saturday, monday])
    assert list(hours) == ["09:00"]
    assert hours["09:00"].posts == 2
    assert hours["09:00"].engagement_rate == pytest.approx(0.03)
    assert list(by_local_weekday([monday, saturday])) == ["Monday", "Saturday"]


def test_hour_and_weekday_are_local_across_the_start_of_summer_time() -> None:
    # America/New_York starts summer time on Sunday 8 March 2026: 17:00 local is 22:00 UTC
    # on the Saturday and 21:00 UTC on the Sunday.
    before = post(at=datetime(2026, 3, 7, 22, 0, tzinfo=UTC), timezone="America/New_York", delay=timedelta(0))
    after = post(at=datetime(2026, 3, 8, 21, 0, tzinfo=UTC), timezone="America/New_York", delay=timedelta(0))
    assert list(by_local_hour([before, after])) == ["17:00"]
    assert list(by_local_weekday([before, after])) == ["Saturday", "Sunday"]


def test_local_weekday_can_differ_from_the_utc_one() -> None:
    # Saturday 23:30 UTC is already Sunday 00:30 in Berlin.
    late = post(at=datetime(2026, 11, 21, 23, 30, tzinfo=UTC), timezone="Europe/Berlin", delay=timedelta(0))
    assert list(by_local_weekday([late])) == ["Sunday"]
    assert list(by_local_hour([late])) == ["00:00"]
    assert list(by_local_weekday([post(at=datetime(2026, 11, 21, 23, 30, tzinfo=UTC))])) == ["Saturday"]


def test_breakdowns_are_ordered_and_skip_unmeasured_posts() -> None:
    posts = [post(0.03, at=at_hour(4, 17)), post(0.01, at=at_hour(0, 9)), post(0.05, at=at_hour(2, 12)),
             post(None, at=at_hour(1, 6)), post(0.05, at=at_hour(3, 8), status="failed"),
             post(0.02, at=at_hour(0, 9), platform="linkedin")]
    assert list(by_local_hour(posts)) == ["09:00", "12:00", "17:00"]
    assert list(by_local_weekday(posts)) == ["Monday", "Wednesday", "Friday"]
    platforms = by_platform(posts)
    assert list(platforms) == ["linkedin", "twitter"]
    assert platforms["twitter"].as_dict() == {"posts": 3, "impressions": 3000, "interactions": 90,
                                              "interactions_per_post": 30.0, "rated_posts": 3,
                                              "engagement_rate": pytest.approx(0.03)}


# -- rankings ------------------------------------------------------------------------------


def test_top_and_bottom_three_by_engagement_rate_ignore_unseen_posts() -> None:
    rates = [0.01, 0.07, 0.03, 0.05, 0.02, 0.06, 0.04]
    posts = [post(r, at=at_hour(i % 7, 9), post_id=i + 1) for i, r in enumerate(rates)]
    posts.append(post(None, post_id=99))
    top, bottom = ranked(posts)
    assert [p.engagement_rate for p in top] == pytest.approx([0.07, 0.06, 0.05])
    assert [p.engagement_rate for p in bottom] == pytest.approx([0.01, 0.02, 0.03])
    assert 99 not in {p.post_id for p in top + bottom}


def test_a_post_is_never_both_top_and_bottom() -> None:
    posts = [post(r, post_id=i) for i, r in enumerate([0.05, 0.04, 0.03, 0.02])]
    top, bottom = ranked(posts)
    assert [p.post_id for p in top] == [0, 1, 2]
    assert [p.post_id for p in bottom] == [3]


def test_ranking_ties_go_to_the_earlier_post_whatever_the_input_order() -> None:
    posts = [post(0.03, at=at_hour(d, 9), post_id=10 + d) for d in range(6)]
    expected = ranked(posts)
    for seed in range(5):
        shuffled = posts[:]
        random.Random(seed).shuffle(shuffled)
        assert ranked(shuffled) == expected
    top, bottom = expected
    assert [p.post_id for p in top] == [10, 11, 12]
    assert [p.post_id for p in bottom] == [13, 14, 15]


# -- trend ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "previous", "expected"), [
    (3.0, 2.0, 50.0), (1.0, 4.0, -75.0), (2.0, 2.0, 0.0), (1.0, None, None), (1.0, 0, None), (None, 2.0, None),
])
def test_percent_change(current: float | None, previous: float | None, expected: float | None) -> None:
    assert percent_change(current, previous) == (pytest.approx(expected) if expected is not None else None)


def test_trend_is_none_without_a_previous_week() -> None:
    trend = report([post(0.03)]).trend
    assert trend.engagement_rate_change_pct is None
    assert trend.impressions_change_pct is None


def test_trend_is_none_when_the_previous_week_has_no_figures() -> None:
    trend = report([post(0.03)], previous_posts=[post(None, at=MONDAY - timedelta(days=7))]).trend
    assert trend.engagement_rate_change_pct is None
    assert trend.impressions_change_pct is None


def test_trend_compares_average_engagement_and_total_impressions() -> None:
    previous = [post(0.02, at=MONDAY - timedelta(days=7), impressions=1000),
                post(0.02, at=MONDAY - timedelta(days=6), impressions=1000)]
    current = [post(0.03, impressions=1000), post(0.03, at=at_hour(1, 9), impressions=2000),
               post(0.03, at=at_hour(2, 9), impressions=2000)]
    trend = report(current, previous_posts=previous).trend
    assert trend.engagement_rate_change_pct == pytest.approx(50.0)
    assert trend.impressions_change_pct == pytest.approx(150.0)
    assert trend.previous.impressions == 2000


# -- rule 1: reconnect ---------------------------------------------------------------------


def test_reconnect_for_an_account_needing_reauthorisation() -> None:
    assert reconnect_recommendations([], ["linkedin"]) == [
        "Reconnect your LinkedIn account: the platform refused its access, "
        "so posts to it cannot go out until you do."]


def test_reconnect_for_a_post_reviewed_for_reauthorisation_names_x_for_twitter() -> None:
    posts = [post(status="needs_review", review_reason="needs_reauth"),
             post(status="needs_review", review_reason="needs_reauth", platform="linkedin")]
    sentences = reconnect_recommendations(posts, ["linkedin"])
    assert [s.split(":")[0] for s in sentences] == ["Reconnect your LinkedIn account", "Reconnect your X account"]


def test_no_reconnect_when_every_account_works() -> None:
    assert reconnect_recommendations([post(), post(status="needs_review", review_reason="stale")], []) == []


# -- rule 2: review ------------------------------------------------------------------------


def test_review_sentence_counts_posts_by_reason() -> None:
    posts = [post(status="needs_review", review_reason="outcome_unknown"),
             post(status="needs_review", review_reason="approval"),
             post(status="needs_review", review_reason="approval"), post()]
    assert review_recommendation(posts) == [
        "3 posts waited for review: 2 approval, 1 outcome unknown. "
        "Approve, edit or cancel them in the review queue."]


def test_review_sentence_for_a_single_post() -> None:
    assert review_recommendation([post(status="needs_review")]) == [
        "1 post waited for review: 1 unspecified. Approve, edit or cancel it in the review queue."]


def test_no_review_sentence_when_nothing_waited() -> None:
    assert review_recommendation([post(), post(status="failed")]) == []


# -- rule 3: posting time ------------------------------------------------------------------


def test_move_posting_time_to_a_clearly_better_hour() -> None:
    posts = [post(0.02, at=at_hour(0, 9)), post(0.02, at=at_hour(1, 9)),
             post(0.041, at=at_hour(0, 17)), post(0.041, at=at_hour(1, 17))]
    assert posting_time_recommendations(posts) == [
        "Move your X posting time from 09:00 to 17:00: posts at 17:00 had 4.1% engagement vs 2.0%"]


def test_posting_time_hours_are_the_users_local_ones() -> None:
    zone = {"timezone": "America/New_York"}  # UTC-5 in November
    posts = [post(0.02, at=at_hour(0, 14), **zone), post(0.02, at=at_hour(1, 14), **zone),
             post(0.05, at=at_hour(0, 22), **zone), post(0.05, at=at_hour(1, 22), **zone)]
    assert posting_time_recommendations(posts) == [
        "Move your X posting time from 09:00 to 17:00: posts at 17:00 had 5.0% engagement vs 2.0%"]


def test_exactly_25_percent_better_is_enough() -> None:
    posts = [post(0.02, at=at_hour(0, 9)), post(0.02, at=at_hour(1, 9)),
             post(0.025, at=at_hour(0, 17)), post(0.025, at=at_hour(1, 17))]
    assert len(posting_time_recommendations(posts)) == 1


@pytest.mark.parametrize("posts", [
    pytest.param([post(0.02, at=at_hour(0, 9)), post(0.02, at=at_hour(1, 9)),
                  post(0.024, at=at_hour(0, 17)), post(0.024, at=at_hour(1, 17))], id="only 20% better"),
    pytest.param([post(0.02, at=at_hour(0, 9)), post(0.02, at=at_hour(1, 9)),
                  post(0.08, at=at_hour(0, 17))], id="better hour has one post"),
    pytest.param([post(0.02, at=at_hour(0, 9)), post(0.08, at=at_hour(0, 17)),
                  post(0.08, at=at_hour(1, 17))], id="worse hour has one post"),
    pytest.param([post(0.02, at=at_hour(0, 9)), post(0.02, at=at_hour(1, 9)),
                  post(0.08, at=at_hour(0, 17), platform="linkedin"),
                  post(0.08, at=at_hour(1, 17), platform="linkedin")], id="hours on different platforms"),
    pytest.param([post(0.0, at=at_hour(0, 9)), post(0.0, at=at_hour(1, 9)),
                  post(0.0, at=at_hour(0, 17)), post(0.0, at=at_hour(1, 17))], id="nothing engaged"),
    pytest.param([post(0.02, at=at_hour(d, 9)) for d in range(5)], id="a single hour"),
])
def test_no_posting_time_move_without_enough_evidence(posts: list[PostRecord]) -> None:
    assert posting_time_recommendations(posts) == []


def test_posting_time_is_recommended_per_platform_in_name_order() -> None:
    posts = [post(r, at=at_hour(d, h), platform=p) for p in ("twitter", "linkedin")
             for d in range(2) for h, r in ((8, 0.01), (12, 0.03))]
    assert [s.split(" posting")[0] for s in posting_time_recommendations(posts)] == [
        "Move your LinkedIn", "Move your X"]


# -- rule 4: frequency ---------------------------------------------------------------------


def week(rate: float, n: int = 2, platform: str = "linkedin", weeks_ago: int = 0) -> list[PostRecord]:
    return [post(rate, at=at_hour(d, 10) - timedelta(days=7 * weeks_ago), platform=platform) for d in range(n)]


def test_increase_frequency_when_engagement_held_up() -> None:
    assert frequency_recommendations(week(0.042), week(0.040, weeks_ago=1), 3) == [
        "Increase frequency on LinkedIn from 3 to 5 posts a week: engagement held up at 4.2% "
        "(previous week 4.0%)"]


def test_increase_frequency_when_engagement_dipped_by_at_most_10_percent() -> None:
    assert frequency_recommendations(week(0.036), week(0.040, weeks_ago=1), 3)[0].startswith(
        "Increase frequency on LinkedIn from 3 to 5")


def test_reduce_frequency_when_engagement_fell_by_more_than_25_percent() -> None:
    assert frequency_recommendations(week(0.02), week(0.04, weeks_ago=1), 7) == [
        "Reduce frequency on LinkedIn from 7 to 5 posts a week: engagement fell from 4.0% to 2.0%"]


@pytest.mark.parametrize(("frequency", "current", "expected"), [
    (13, 0.04, "Increase frequency on LinkedIn from 13 to 14 "),
    (2, 0.01, "Reduce frequency on LinkedIn from 2 to 1 "),
])
def test_frequency_stays_between_1_and_14(frequency: int, current: float, expected: str) -> None:
    assert frequency_recommendations(week(current), week(0.04, weeks_ago=1), frequency)[0].startswith(expected)


@pytest.mark.parametrize(("current", "previous", "frequency"), [
    pytest.param(week(0.032), week(0.04, weeks_ago=1), 3, id="fell 20%: neither rule"),
    pytest.param(week(0.03), week(0.04, weeks_ago=1), 3, id="fell exactly 25%: neither rule"),
    pytest.param(week(0.05), week(0.04, weeks_ago=1), 14, id="already at the maximum"),
    pytest.param(week(0.01), week(0.04, weeks_ago=1), 1, id="already at the minimum"),
    pytest.param(week(0.05), [], 3, id="no previous week"),
    pytest.param(week(0.05, n=1), week(0.04, weeks_ago=1), 3, id="one post this week"),
    pytest.param(week(0.05), week(0.04, n=1, weeks_ago=1), 3, id="one post last week"),
    pytest.param(week(0.05), week(0.04, platform="twitter", weeks_ago=1), 3, id="other platform last week"),
    pytest.param(week(0.0), week(0.0, weeks_ago=1), 3, id="no engagement either week"),
])
def test_no_frequency_change_without_a_clear_signal(
    current: list[PostRecord], previous: list[PostRecord], frequency: int
) -> None:
    assert frequency_recommendations(current, previous, frequency) == []


# -- rule 5: topics ------------------------------------------------------------------------


def test_topics_that_beat_the_average_are_listed_best_first() -> None:
    posts = [post(0.051, topic="AI agents"), post(0.040, topic="Postgres"), post(0.040, topic="Postgres"),
             post(0.01, topic="Crypto"), post(0.012, topic="Crypto"), post(0.02)]
    assert topic_recommendation(posts) == ["Topics that worked: AI agents (5.1%), Postgres (4.0%)"]


def test_at_most_three_topics_are_listed_ties_by_name() -> None:
    posts = [post(0.05, topic=t) for t in ("d", "c", "b", "a")] + [post(0.0, topic="z")] * 4
    assert topic_recommendation(posts) == ["Topics that worked: a (5.0%), b (5.0%), c (5.0%)"]


@pytest.mark.parametrize("posts", [
    pytest.param([post(0.05, topic="AI"), post(0.01, topic="AI"), post(0.02)], id="one topic"),
    pytest.param([post(0.03, topic="AI"), post(0.03, topic="Rust")], id="no topic above average"),
    pytest.param([post(None, topic="AI"), post(0.03, topic="Rust")], id="one measured topic"),
    pytest.param([], id="no posts"),
])
def test_no_topic_sentence_without_a_comparison(posts: list[PostRecord]) -> None:
    assert topic_recommendation(posts) == []


# -- the whole report ----------------------------------------------------------------------


def test_empty_week_says_so_and_asks_to_check_the_setup() -> None:
    result = report([], executions=[ExecutionRecord("succeeded")])
    assert result.summary == "Week 2026-11-15 to 2026-11-22: no posts were scheduled."
    assert result.recommendations == [EMPTY_WEEK_RECOMMENDATION]
    assert "accounts are connected" in EMPTY_WEEK_RECOMMENDATION and "autonomous mode" in EMPTY_WEEK_RECOMMENDATION
    assert result.top == [] and result.bottom == [] and result.by_platform == {}
    assert result.trend.engagement_rate_change_pct is None
    assert result.posts.scheduled == 0


def test_empty_week_with_a_refused_account_asks_to_reconnect_first() -> None:
    assert report([], reauth_platforms=["twitter"]).recommendations == [
        reconnect_recommendations([], ["twitter"])[0], EMPTY_WEEK_RECOMMENDATION]


def test_recommendations_come_in_rule_order() -> None:
    previous = week(0.02, n=4, platform="twitter", weeks_ago=1)
    posts = [post(0.02, at=at_hour(0, 9), topic="A"), post(0.02, at=at_hour(1, 9), topic="A"),
             post(0.05, at=at_hour(0, 17), topic="B"), post(0.05, at=at_hour(1, 17), topic="B"),
             post(status="needs_review", review_reason="approval")]
    result = report(posts, previous_posts=previous, reauth_platforms=["linkedin"], frequency=3)
    assert [s.split(" ")[0] for s in result.recommendations] == ["Reconnect", "1", "Move", "Increase", "Topics"]


def test_summary_states_the_figures() -> None:
    posts = [post(0.03, impressions=12000, post_id=1), post(0.01, delay=timedelta(minutes=3), post_id=2),
             post(status="failed"), post(status="needs_review", review_reason="stale")]
    previous = [post(0.01, at=MONDAY - timedelta(days=7))]
    runs = [ExecutionRecord("succeeded")] * 3 + [ExecutionRecord("failed")]
    result = report(posts, previous_posts=previous, executions=runs)
    assert result.summary == (
        "Week 2026-11-15 to 2026-11-22: 4 posts scheduled; 2 published (1 on time, 1 late), 1 failed, "
        "1 waited for review, 0 cancelled. Average engagement 2.0% (+100.0% vs the previous week) "
        "over 13,000 impressions. 370 interactions (likes, shares, comments) on 2 measured posts: "
        "185.0 per post, +1750.0% vs the previous week. Workflow runs: 3 of 4 succeeded (75%).")
    assert result.executions.success_rate == 0.75


def test_summary_without_figures_yet() -> None:
    assert "No engagement figures yet." in report([post(None)]).summary


def test_content_is_json_ready_and_independent_of_input_order() -> None:
    posts = [post(r, at=at_hour(d % 7, h), platform=p, topic=t, post_id=i, text=f"post {i}")
             for i, (r, d, h, p, t) in enumerate([
                 (0.01, 0, 9, "twitter", "A"), (0.03, 1, 17, "twitter", "B"), (0.05, 2, 9, "linkedin", "A"),
                 (0.02, 3, 17, "linkedin", "C"), (0.04, 4, 9, "twitter", "B"), (0.06, 5, 12, "linkedin", "C"),
                 (0.03, 6, 12, "twitter", "A"), (0.02, 7, 9, "twitter", "B")])]
    previous = [post(0.02, at=at_hour(d, 9) - timedelta(days=7), platform=p) for d in range(3)
                for p in ("twitter", "linkedin")]
    content = report(posts, previous_posts=previous).as_content()
    assert set(content) == {"summary", "period", "posts", "executions", "top", "bottom", "by_platform",
                            "top_by_interactions", "bottom_by_interactions",
                            "by_weekday", "by_hour", "trend", "recommendations", "changes",
                            "applied_advice"}
    assert json.loads(json.dumps(content)) == content
    assert content["period"] == {"start": WEEK_START.isoformat(), "end": WEEK_END.isoformat()}
    assert [e["post_id"] for e in content["top"]] == [5, 2, 4]
    assert [e["post_id"] for e in content["bottom"]] == [0, 7, 3]  # 7 ties with 3 but went out first
    assert content["top"][0]["excerpt"] == "post 5"
    for seed in range(5):
        shuffled = posts[:]
        random.Random(seed).shuffle(shuffled)
        assert report(shuffled, previous_posts=previous[::-1]).as_content() == content


# -- grouping, setting changes and applied advice ------------------------------------------


def test_group_measured_keeps_measured_posts_only_in_key_order() -> None:
    posts = [post(0.03, platform="twitter"), post(None, platform="bluesky"), post(0.01, platform="linkedin"),
             post(0.02, platform="twitter", status="failed")]
    groups = group_measured(posts, lambda p: p.platform)
    assert list(groups) == ["linkedin", "twitter"]
    assert [len(g) for g in groups.values()] == [1, 1]


def test_weekday_hour_grid_is_in_local_time() -> None:
    # 23:30 UTC on Saturday is 00:30 on Sunday in Berlin (winter).
    late = post(0.04, at=datetime(2026, 11, 21, 23, 30, tzinfo=UTC), timezone="Europe/Berlin", delay=timedelta(0))
    grid = by_weekday_and_hour([late, post(None)])
    assert list(grid) == [(6, 0)]
    assert grid[(6, 0)].engagement_rate == pytest.approx(0.04)


def test_setting_changes_carry_their_sentence_and_values() -> None:
    posts = [post(0.02, at=at_hour(0, 9)), post(0.02, at=at_hour(1, 9)),
             post(0.05, at=at_hour(0, 17)), post(0.05, at=at_hour(1, 17))]
    result = report(posts, previous_posts=week(0.02, n=4, platform="twitter", weeks_ago=1), frequency=3)
    assert [(c.setting, c.platform, c.current, c.proposed) for c in result.changes] == [
        ("posting_time", "twitter", "09:00", "17:00"), ("content_frequency", "twitter", 3, 5)]
    assert [c.sentence for c in result.changes] == [
        r for r in result.recommendations if r.startswith(("Move", "Increase"))]


def test_applied_advice_is_judged_on_the_posts_after_the_change() -> None:
    change_at = at_hour(2, 0)
    before = [post(0.02, at=at_hour(0, 9)), post(0.02, at=at_hour(1, 9))]
    after = [post(0.04, at=at_hour(2, 17)), post(0.04, at=at_hour(3, 17))]
    applied = [AppliedAdvice("posting_time", "twitter", "09:00", "17:00", change_at)]
    [sentence] = report(before + after, applied=applied).applied_advice
    assert sentence == ("You applied the advice of 18 Nov (moving your X posting time from 09:00 to 17:00); "
                        "it helped: engagement rose from 2.0% to 4.0%.")
    [worse] = report([post(0.01, at=at_hour(2, 17))], previous_posts=before, applied=applied).applied_advice
    assert "did not help: engagement went from 2.0% to 1.0%" in worse
    [early] = report(before, applied=applied).applied_advice
    assert "too early to tell" in early


# -- platforms without impressions (Bluesky, Mastodon) -------------------------------------


def open_post(interactions: int, *, at: datetime = MONDAY, platform: str = "bluesky", **fields: object) -> PostRecord:
    """A published Bluesky (or Mastodon) post as its provider stores it: 0 impressions, its likes,
    reposts and replies, its figures fetched a day later."""
    likes = interactions // 2
    values: dict[str, object] = {"impressions": 0, "likes": likes, "shares": (interactions - likes) // 2,
                                 "comments": interactions - likes - (interactions - likes) // 2}
    values.update(fields)
    return post(None, at=at, platform=platform, metrics_updated_at=at + timedelta(days=1), **values)


def test_a_group_counts_every_platforms_interactions_and_rates_only_impression_platforms() -> None:
    posts = [post(0.02, impressions=1000), post(0.04, impressions=3000, platform="linkedin"),
             open_post(5), open_post(9, platform="mastodon"), open_post(3, status="failed")]
    stats = engagement_stats(posts)
    assert (stats.posts, stats.rated_posts, stats.interactions, stats.impressions) == (4, 2, 20 + 120 + 14, 4000)
    assert stats.engagement_rate == pytest.approx(0.03)  # the X and LinkedIn posts' mean, Bluesky's 0 left out
    assert stats.interactions_per_post == pytest.approx(154 / 4)
    platforms = by_platform(posts)
    assert list(platforms) == ["bluesky", "linkedin", "mastodon", "twitter"]
    assert platforms["bluesky"].as_dict() == {"posts": 1, "impressions": 0, "interactions": 5,
                                              "interactions_per_post": 5.0, "rated_posts": 0,
                                              "engagement_rate": None}
    assert not_reported(unrated_platforms(posts)) == "not reported by Bluesky and Mastodon"


def test_open_networks_rank_by_interactions_apart_never_by_a_rate() -> None:
    rated = [post(r, at=at_hour(i, 9), post_id=i + 1) for i, r in enumerate([0.01, 0.05, 0.03, 0.02])]
    unrated = [open_post(n, at=at_hour(i, 12), post_id=10 + i, platform=("bluesky", "mastodon")[i % 2])
               for i, n in enumerate([4, 40, 0, 12, 7, 4])]
    top, bottom = ranked(rated + unrated)
    assert [p.post_id for p in top] == [2, 3, 4] and [p.post_id for p in bottom] == [1]
    most, fewest = ranked_by_interactions(rated + unrated)
    assert [p.post_id for p in most] == [11, 13, 14]
    assert [p.post_id for p in fewest] == [12, 10, 15]  # 10 ties with 15 but went out first
    content = report(rated + unrated).as_content()
    assert [e["post_id"] for e in content["top_by_interactions"]] == [11, 13, 14]
    assert all(e["engagement_rate"] is None for e in content["top_by_interactions"] + content["bottom_by_interactions"])


def test_no_advice_leaves_an_open_network_for_its_missing_rate() -> None:
    """Same interactions as the week before: frequency goes up on Bluesky, as it would on X when
    its rate holds up; no sentence says 0 % or tells the user to post less there."""
    this_week = [open_post(10, at=at_hour(d, 9), topic="python") for d in range(3)]
    previous = [open_post(10, at=at_hour(d, 9) - timedelta(days=7)) for d in range(3)]
    result = report(this_week, previous_posts=previous, frequency=3)
    assert result.recommendations == [
        "Increase frequency on Bluesky from 3 to 5 posts a week: interactions per post held up at 10.0 "
        "(previous week 10.0)"]
    assert not any(" 0.0%" in s or "Reduce" in s for s in result.recommendations)
    fell = report([open_post(2, at=at_hour(d, 9)) for d in range(3)], previous_posts=previous, frequency=5)
    assert fell.recommendations == [
        "Reduce frequency on Bluesky from 5 to 3 posts a week: interactions per post fell from 10.0 to 2.0"]


def test_an_open_networks_posting_time_is_compared_by_interactions_per_post() -> None:
    posts = [open_post(2, at=at_hour(0, 9), platform="mastodon"), open_post(4, at=at_hour(1, 9), platform="mastodon"),
             open_post(9, at=at_hour(0, 17), platform="mastodon"), open_post(11, at=at_hour(1, 17), platform="mastodon")]
    assert posting_time_recommendations(posts) == [
        "Move your Mastodon posting time from 09:00 to 17:00: posts at 17:00 had 10.0 interactions per post vs 3.0"]


def test_topics_of_a_week_without_impressions_are_compared_by_interactions_per_post() -> None:
    posts = [open_post(2, topic="A"), open_post(4, topic="A"), open_post(12, topic="B"), open_post(10, topic="B")]
    assert topic_recommendation(posts) == ["Topics that worked: B (11.0 interactions per post)"]
    # With rated posts in the week, topics go by rate over them alone: Bluesky's posts do not drag B down.
    mixed = [post(0.01, topic="A"), post(0.01, topic="A"), post(0.05, topic="B"), open_post(0, topic="B")]
    assert topic_recommendation(mixed) == ["Topics that worked: B (5.0%)"]


def test_applied_advice_on_an_open_network_is_judged_by_interactions_per_post() -> None:
    before = [open_post(3, at=at_hour(0, 9)), open_post(5, at=at_hour(1, 9))]
    after = [open_post(8, at=at_hour(2, 17)), open_post(10, at=at_hour(3, 17))]
    applied = [AppliedAdvice("posting_time", "bluesky", "09:00", "17:00", at_hour(2, 0))]
    [sentence] = report(before + after, applied=applied).applied_advice
    assert sentence.endswith("it helped: interactions per post rose from 4.0 to 9.0.")


def test_the_summary_of_an_open_network_week_counts_interactions_and_reports_no_rate() -> None:
    posts = [open_post(6), open_post(10, platform="mastodon")]
    summary = report(posts, previous_posts=[open_post(4, at=MONDAY - timedelta(days=7))]).summary
    assert "Average engagement" not in summary and " 0.0%" not in summary
    assert ("16 interactions (likes, shares, comments) on 2 measured posts: 8.0 per post, +100.0% vs the "
            "previous week. Bluesky and Mastodon report no impressions: their posts count by interactions, "
            "without an engagement rate.") in summary
