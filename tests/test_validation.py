"""One validation of user settings: every bad value is refused naming the field, nothing stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import users
from app.errors import ValidationError
from app.models import AuditLog, User, UserSettings
from app.validation import validate_settings

GOOD = {
    "timezone": "America/New_York",
    "preferred_platforms": ["twitter", "linkedin"],
    "posting_times": {"twitter": ["09:00"], "linkedin": ["10:00", "17:00"]},
    "content_frequency": 3,
    "brand_voice": "professional",
    "creativity_level": 0.7,
    "topics": ["python"],
    "enable_autonomous_mode": True,
}

BAD = [
    ("timezone", {"timezone": "Mars/Olympus"}),
    ("timezone", {"timezone": "EST5EDT/Nowhere"}),
    ("timezone", {"timezone": "/etc/localtime"}),
    ("posting_times", {"posting_times": {"twitter": ["25:00"], "linkedin": ["10:00"]}}),
    ("posting_times", {"posting_times": {"twitter": ["24:00"], "linkedin": ["10:00"]}}),
    ("posting_times", {"posting_times": {"twitter": ["12:60"], "linkedin": ["10:00"]}}),
    ("posting_times", {"posting_times": {"twitter": ["9:00"], "linkedin": ["10:00"]}}),
    ("posting_times", {"posting_times": {"twitter": ["noon"], "linkedin": ["10:00"]}}),
    ("posting_times", {"posting_times": {"twitter": [], "linkedin": ["10:00"]}}),
    ("posting_times", {"posting_times": {"twitter": ["09:00"]}}),  # linkedin has no time
    ("posting_times", {"posting_times": {"twitter": ["09:00", "09:00"], "linkedin": ["10:00"]}}),
    ("posting_times", {"posting_times": {"myspace": ["09:00"], "twitter": ["09:00"], "linkedin": ["10:00"]}}),
    ("preferred_platforms", {"preferred_platforms": ["twitter", "facebook"]}),
    ("preferred_platforms", {"preferred_platforms": ["twitter", "twitter"]}),
    ("preferred_platforms", {"preferred_platforms": []}),  # autonomous needs one
    ("content_frequency", {"content_frequency": 0}),
    ("content_frequency", {"content_frequency": 15}),
    ("content_frequency", {"content_frequency": "three"}),
    ("content_frequency", {"content_frequency": -1}),
    ("creativity_level", {"creativity_level": 1.5}),
    ("creativity_level", {"creativity_level": -0.1}),
    ("creativity_level", {"creativity_level": "nan"}),
    ("creativity_level", {"creativity_level": "hot"}),
    ("brand_voice", {"brand_voice": "x" * 201}),
    ("brand_voice", {"brand_voice": "   "}),
    ("topics", {"topics": ["ok", ""]}),
    ("topics", {"topics": ["t" * 101]}),
    ("topics", {"topics": []}),  # autonomous needs one
    ("language", {"language": "english"}),
    ("country", {"country": "u"}),
    ("enable_autonomous_mode", {"enable_autonomous_mode": "maybe"}),
    ("timezon", {"timezon": "UTC"}),  # a typo is refused, not ignored
]


@pytest.mark.parametrize(("field", "override"), BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)])
def test_bad_setting_is_refused_naming_the_field_and_nothing_is_stored(engine, field, override):
    raw = {**GOOD, **override}
    with Session(engine) as session:
        with pytest.raises(ValidationError) as caught:
            users.create_user(session, "bad@example.com", raw)
        session.rollback()
        fields = [e.field for e in caught.value.errors]
        assert field in fields
        assert field in str(caught.value)
        bad_value = next(iter(override.values()))
        if bad_value not in ([], "   "):
            assert repr(bad_value)[:10].strip("[{'") in str(caught.value)
        for table in (User, UserSettings, AuditLog):
            assert session.scalar(select(func.count()).select_from(table)) == 0


def test_good_settings_are_normalised():
    clean = validate_settings({**GOOD, "posting_times": {"Twitter": "17:00, 09:00", "linkedin": "10:00"},
                               "preferred_platforms": "twitter, linkedin", "content_frequency": "14"})
    assert clean.posting_times == {"twitter": ["09:00", "17:00"], "linkedin": ["10:00"]}
    assert clean.preferred_platforms == ["twitter", "linkedin"]
    assert clean.content_frequency == 14


def test_every_error_is_reported_at_once():
    with pytest.raises(ValidationError) as caught:
        validate_settings({"timezone": "Nowhere", "content_frequency": 0, "creativity_level": 2})
    assert {e.field for e in caught.value.errors} == {"timezone", "content_frequency", "creativity_level"}


@pytest.mark.parametrize("value", ["00:00", "23:59", "12:30"])
def test_edge_times_are_accepted(value):
    clean = validate_settings({"preferred_platforms": ["twitter"], "posting_times": {"twitter": [value]}})
    assert clean.posting_times["twitter"] == [value]


def test_update_validates_the_merged_settings_and_writes_nothing_on_error(engine):
    with Session(engine) as session, session.begin():
        users.create_user(session, "a@example.com", GOOD)
    with Session(engine) as session:
        with pytest.raises(ValidationError):
            users.update_user(session, "a@example.com", {"timezone": "Nowhere/Land"})
        session.rollback()
        assert users.get_user(session, "a@example.com").settings.timezone == "America/New_York"
