"""app.scheduling: slots tile daily UTC windows exactly, across DST, odd offsets and leap days."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.scheduling import (
    MAX_FREQUENCY,
    MIN_FREQUENCY,
    Slot,
    local_to_utc,
    next_slots,
    parse_hhmm,
    posting_slots,
    posts_on_day,
    times_for_day,
)

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")

TIMEZONES = [
    "America/New_York",
    "Europe/London",
    "UTC",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
]
FREQUENCIES = [1, 3, 7, 10, 14]
# Night times sit in the 2026 DST gaps and overlaps: US (Mar 8 02:00-03:00, Nov 1 01:00-02:00),
# EU (Mar 29 01:00-02:00, Oct 25 01:00-02:00) and Lord Howe (Oct 4 02:00-02:30, Apr 5 01:30-02:00).
POSTING_TIMES = {
    "twitter": ["09:00"],
    "linkedin": ["23:30", "08:15"],  # late: a UTC-11 window opens mid-evening
    "night": ["02:30", "01:30"],
    "dawn": ["02:15"],
}
PLATFORMS = list(POSTING_TIMES)
# Six-week spans (Monday starts) that contain every 2026 DST change listed above.
SPANS = {"spring": date(2026, 3, 2), "autumn": date(2026, 9, 28)}
SPAN_DAYS = 42


def slots(
    tz: str, frequency: int, start: datetime, end: datetime, /, **overrides: Any
) -> list[Slot]:
    """The test user's slots; ``overrides`` replace any keyword of :func:`posting_slots`."""
    options = {
        "timezone": tz,
        "platforms": PLATFORMS,
        "posting_times": POSTING_TIMES,
        "frequency": frequency,
        "start": start,
        "end": end,
    }
    return posting_slots(**{**options, **overrides})


def daily_windows(first_day: date, days: int) -> list[tuple[datetime, datetime]]:
    """The generation job's windows: 24 h each, starting at 06:00 UTC."""
    first = datetime.combine(first_day, time(6), tzinfo=UTC)
    return [(first + timedelta(days=i), first + timedelta(days=i + 1)) for i in range(days)]


def exists(local_date: date, local_time: time, tz: ZoneInfo) -> bool:
    naive = datetime.combine(local_date, local_time)
    back = naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return back == naive


def assert_wall_time(slot: Slot, tz: ZoneInfo) -> None:
    """The slot happens at its nominal wall time, or at the end of the DST gap swallowing it."""
    nominal = datetime.combine(slot.local_date, slot.local_time)
    wall = slot.at.astimezone(tz).replace(tzinfo=None)
    if exists(slot.local_date, slot.local_time, tz):
        assert wall == nominal
        # First occurrence: no earlier instant shows the same wall time.
        assert slot.at == nominal.replace(tzinfo=tz, fold=0).astimezone(UTC)
        return
    just_before = slot.at - timedelta(seconds=1)
    assert just_before.astimezone(tz).utcoffset() != slot.at.astimezone(tz).utcoffset()
    assert just_before.astimezone(tz).replace(tzinfo=None) < nominal < wall


@pytest.mark.parametrize("tz_name", TIMEZONES)
@pytest.mark.parametrize("frequency", FREQUENCIES)
@pytest.mark.parametrize("span", list(SPANS))
def test_daily_windows_tile_every_week_exactly(tz_name: str, frequency: int, span: str) -> None:
    tz = ZoneInfo(tz_name)
    configured = {p: [parse_hhmm(v) for v in times] for p, times in POSTING_TIMES.items()}
    for offset in range(7):  # every weekday as the first window's day
        windows = daily_windows(SPANS[span] + timedelta(days=offset), SPAN_DAYS)
        tiled: list[Slot] = []
        for start, end in windows:
            window = slots(tz_name, frequency, start, end)
            assert window == sorted(window, key=lambda s: (s.at, s.platform))
            for slot in window:
                assert start <= slot.at < end
                assert slot.at.tzinfo is UTC
                assert_wall_time(slot, tz)
                count = posts_on_day(slot.local_date, frequency)
                assert slot.local_time in times_for_day(configured[slot.platform], count)
            tiled.extend(window)

        # Adjacent windows never share a slot, and together they equal one long window.
        assert len({(s.platform, s.at) for s in tiled}) == len(tiled)
        assert len({(s.platform, s.local_date, s.local_time) for s in tiled}) == len(tiled)
        assert tiled == slots(tz_name, frequency, windows[0][0], windows[-1][1])

        per_week = Counter((s.platform, s.local_date.isocalendar()[:2]) for s in tiled)
        monday = windows[0][0].astimezone(tz).date() + timedelta(days=1)
        monday += timedelta(days=-monday.weekday() % 7)  # first local Monday wholly in the span
        full_weeks = 0
        while local_to_utc(monday + timedelta(days=7), time(0), tz) <= windows[-1][1]:
            week = monday.isocalendar()[:2]
            for platform in PLATFORMS:
                assert per_week[(platform, week)] == frequency, (platform, week)
            monday += timedelta(days=7)
            full_weeks += 1
        assert full_weeks >= 4


@pytest.mark.parametrize("frequency", range(MIN_FREQUENCY, MAX_FREQUENCY + 1))
def test_posts_on_day_sums_to_frequency_over_any_iso_week(frequency: int) -> None:
    for week_start in (date(2026, 1, 5), date(2026, 3, 2), date(2028, 2, 28), date(2026, 12, 28)):
        days = [week_start + timedelta(days=d) for d in range(7)]
        counts = [posts_on_day(day, frequency) for day in days]
        assert sum(counts) == frequency
        assert max(counts) == -(-frequency // 7)
        assert max(counts) - min(counts) <= 1
        assert counts[6] == min(counts)  # Sunday is never busier than another day


@pytest.mark.parametrize(
    ("frequency", "pattern"),
    [
        (1, [1, 0, 0, 0, 0, 0, 0]),
        (2, [1, 0, 0, 1, 0, 0, 0]),
        (3, [1, 0, 1, 0, 1, 0, 0]),
        (7, [1, 1, 1, 1, 1, 1, 1]),
        (10, [2, 1, 2, 1, 2, 1, 1]),
        (14, [2, 2, 2, 2, 2, 2, 2]),
    ],
)
def test_posts_on_day_spreads_the_week_from_monday(frequency: int, pattern: list[int]) -> None:
    monday = date(2026, 3, 2)
    assert [posts_on_day(monday + timedelta(days=d), frequency) for d in range(7)] == pattern


def test_posts_on_day_refuses_negative_frequency() -> None:
    with pytest.raises(ValueError, match="frequency"):
        posts_on_day(date(2026, 3, 2), -1)


def test_times_for_day_uses_the_earliest_configured_times() -> None:
    times = [time(17), time(9), time(12), time(9)]
    assert times_for_day(times, 0) == []
    assert times_for_day(times, 1) == [time(9)]
    assert times_for_day(times, 3) == [time(9), time(12), time(17)]


@pytest.mark.parametrize(
    ("times", "count", "expected"),
    [
        ([time(9)], 2, [time(9), time(15, 30)]),
        ([time(9)], 3, [time(9), time(12, 15), time(15, 30)]),
        ([time(21)], 2, [time(14), time(21)]),
        ([time(2, 30)], 2, [time(2, 30), time(14, 30)]),  # outside 07-22: whole span is free
        ([time(8), time(20)], 3, [time(8), time(14), time(20)]),
        ([time(7), time(22)], 3, [time(7), time(14, 30), time(22)]),
    ],
)
def test_times_for_day_derives_extra_times_in_the_widest_gap(
    times: list[time], count: int, expected: list[time]
) -> None:
    assert times_for_day(times, count) == expected


def test_times_for_day_derived_times_stay_distinct_and_awake() -> None:
    derived = times_for_day([time(9)], 60)
    assert len(set(derived)) == 60
    assert all(time(7) < t < time(22) for t in derived)
    with pytest.raises(ValueError, match="no room"):
        times_for_day([time(9)], 1000)


def test_local_to_utc_moves_a_new_york_gap_time_to_the_end_of_the_gap() -> None:
    at = local_to_utc(date(2026, 3, 8), time(2, 30), NEW_YORK)
    assert at == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert at.astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2026, 3, 8, 3, 0)


def test_local_to_utc_uses_the_first_occurrence_of_an_ambiguous_time() -> None:
    assert local_to_utc(date(2026, 11, 1), time(1, 30), NEW_YORK) == datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )
    assert local_to_utc(date(2026, 10, 25), time(1, 30), LONDON) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


def test_local_to_utc_moves_a_london_gap_time_to_the_end_of_the_gap() -> None:
    assert local_to_utc(date(2026, 3, 29), time(1, 30), LONDON) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )


def test_local_to_utc_handles_a_thirty_minute_gap() -> None:
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    at = local_to_utc(date(2026, 10, 4), time(2, 15), lord_howe)
    assert at.astimezone(lord_howe).replace(tzinfo=None) == datetime(2026, 10, 4, 2, 30)


def test_ambiguous_new_york_time_is_posted_once_on_the_fall_back_day() -> None:
    settings = {"platforms": ["night"], "posting_times": {"night": ["01:30"]}}
    found = [
        slot
        for start, end in daily_windows(date(2026, 10, 30), 4)
        for slot in slots("America/New_York", 7, start, end, **settings)
    ]
    on_fall_back = [s for s in found if s.local_date == date(2026, 11, 1)]
    assert [s.at for s in on_fall_back] == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]


def test_two_times_inside_one_gap_stay_distinct_slots() -> None:
    settings = {"platforms": ["night"], "posting_times": {"night": ["02:10", "02:40"]}}
    start = datetime(2026, 3, 8, 6, tzinfo=UTC)
    found = slots("America/New_York", 14, start, start + timedelta(days=1), **settings)
    assert [s.at for s in found] == [
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
        datetime(2026, 3, 8, 7, 1, tzinfo=UTC),
    ]


@pytest.mark.parametrize("frequency", range(MIN_FREQUENCY, MAX_FREQUENCY + 1))
def test_leap_day_is_scheduled_and_its_week_holds_frequency(frequency: int) -> None:
    leap_day = date(2028, 2, 29)
    windows = daily_windows(date(2028, 2, 26), 10)
    found = [s for w in windows for s in slots("America/New_York", frequency, *w)]
    on_leap_day = Counter(s.platform for s in found if s.local_date == leap_day)
    for platform in PLATFORMS:
        assert on_leap_day[platform] == posts_on_day(leap_day, frequency)
    week = Counter(s.platform for s in found if s.local_date.isocalendar()[:2] == (2028, 9))
    assert week == {platform: frequency for platform in PLATFORMS}


@pytest.mark.parametrize(
    ("tz_name", "expected"),
    [
        # 06:00Z-06:00Z is 20:00-20:00 local at UTC+14 and 19:00-19:00 local at UTC-11.
        ("Pacific/Kiritimati", [(date(2026, 6, 1), time(23)), (date(2026, 6, 2), time(1))]),
        ("Pacific/Pago_Pago", [(date(2026, 5, 31), time(23)), (date(2026, 6, 1), time(1))]),
    ],
)
def test_extreme_offsets_window_covers_every_local_date_it_touches(
    tz_name: str, expected: list[tuple[date, time]]
) -> None:
    start = datetime(2026, 6, 1, 6, tzinfo=UTC)
    settings = {"platforms": ["x"], "posting_times": {"x": ["01:00", "23:00"]}}
    found = slots(tz_name, 14, start, start + timedelta(days=1), **settings)
    assert [(s.local_date, s.local_time) for s in found] == expected


@pytest.mark.parametrize("tz_name", TIMEZONES)
def test_rerunning_a_window_gives_identical_slots(tz_name: str) -> None:
    for start, end in daily_windows(date(2026, 3, 6), 4) + daily_windows(date(2026, 10, 23), 11):
        assert slots(tz_name, 14, start, end) == slots(tz_name, 14, start, end)


def test_aware_non_utc_window_bounds_are_accepted_and_results_are_utc() -> None:
    start = datetime(2026, 3, 2, 11, tzinfo=ZoneInfo("Asia/Kolkata"))
    found = slots("America/New_York", 14, start, start + timedelta(days=1))
    assert found
    assert all(s.at.tzinfo is UTC for s in found)


@pytest.mark.parametrize("naive", ["start", "end"])
def test_naive_window_bounds_are_refused(naive: str) -> None:
    bounds = {
        "start": datetime(2026, 3, 2, 6, tzinfo=UTC),
        "end": datetime(2026, 3, 3, 6, tzinfo=UTC),
    }
    bounds[naive] = bounds[naive].replace(tzinfo=None)
    with pytest.raises(ValueError, match=f"{naive} must be an aware datetime"):
        slots("UTC", 3, bounds["start"], bounds["end"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"frequency": 0}, "frequency must be 1..14"),
        ({"frequency": 15}, "frequency must be 1..14"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown IANA time zone"),
        ({"timezone": "../etc/passwd"}, "unknown IANA time zone"),
        ({"posting_times": {"twitter": ["09:00"]}}, "'linkedin' has no posting_times"),
        ({"posting_times": {**POSTING_TIMES, "dawn": ["9:00"]}}, "HH:MM"),
        ({"end": datetime(2026, 3, 1, tzinfo=UTC)}, "before start"),
    ],
)
def test_invalid_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    start = datetime(2026, 3, 2, 6, tzinfo=UTC)
    with pytest.raises(ValueError, match=message):
        slots("UTC", 3, start, start + timedelta(days=1), **overrides)


def test_empty_window_and_no_platforms_give_no_slots() -> None:
    start = datetime(2026, 3, 2, 6, tzinfo=UTC)
    assert slots("UTC", 14, start, start) == []
    assert slots("UTC", 14, start, start + timedelta(days=1), platforms=[]) == []


def test_next_slots_returns_the_first_slots_strictly_after() -> None:
    after = datetime(2026, 3, 2, 14, tzinfo=UTC)  # Monday 09:00 EST: that slot is not "after"
    found = next_slots(
        timezone="America/New_York",
        platforms=["twitter"],
        posting_times={"twitter": ["09:00"]},
        frequency=3,
        after=after,
        count=4,
    )
    assert [s.local_date for s in found] == [
        date(2026, 3, 4),
        date(2026, 3, 6),
        date(2026, 3, 9),
        date(2026, 3, 11),
    ]
    assert found[2].at == datetime(2026, 3, 9, 13, tzinfo=UTC)  # EDT from Mar 8


@pytest.mark.parametrize("value", ["00:00", "23:59", "09:05", "12:00"])
def test_parse_hhmm_accepts_two_digit_times(value: str) -> None:
    parsed = parse_hhmm(value)
    assert parsed.strftime("%H:%M") == value


@pytest.mark.parametrize(
    "value",
    [
        "25:00",
        "24:00",
        "12:60",
        "9:00",
        "09:5",
        "",
        "ab:cd",
        " 09:00",
        "09:00 ",
        "09:00\n",
        "0900",
        "09:00:00",
        "٠٩:٠٠",
        "+9:00",
    ],
)
def test_parse_hhmm_rejects_anything_but_strict_hh_mm(value: str) -> None:
    with pytest.raises(ValueError, match="posting time"):
        parse_hhmm(value)


def test_parse_hhmm_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm(900)  # type: ignore[arg-type]
