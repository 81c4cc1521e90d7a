"""The settings editor of the Users view: form fields and their translation to and from text.

Every field is free text (booleans aside) on purpose: the one judge of a value is
:func:`app.validation.validate_settings`, so "0", "abc" and "25:00" all reach it and come back
with its message naming the field, instead of a second, differently worded form validator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wtforms import BooleanField, StringField, TextAreaField
from wtforms.form import BaseForm

from app.errors import FieldError, ValidationError
from app.platforms import KNOWN_PLATFORMS, platform_list
from app.validation import SETTING_FIELDS, CleanSettings, validate_settings


def posting_times_help() -> str:
    """Shown under the posting times field; also the grammar :func:`parse_posting_times`
    accepts. The example names the registry's first platforms."""
    first, *others = KNOWN_PLATFORMS
    second = others[0] if others else first
    return ("Local HH:MM times per platform, platforms separated by ';' and times by ',': "
            f"{first}=09:00; {second}=10:00,17:00. A JSON object such as "
            f'{{"{first}": ["09:00"]}} is accepted too.')


def settings_fields() -> dict[str, Any]:
    """Unbound form fields, one per setting, named exactly as in ``SETTING_FIELDS``."""
    fields: dict[str, Any] = {
        "enable_autonomous_mode": BooleanField("Autonomous mode"),
        "require_approval": BooleanField(
            "Require approval", description="Every generated post waits in the review queue."
        ),
        "timezone": StringField("Time zone", description="IANA name, e.g. Europe/Paris or UTC."),
        "preferred_platforms": StringField(
            "Preferred platforms", description=f"Comma-separated: {platform_list()}."
        ),
        "content_frequency": StringField(
            "Posts per week per platform", description="An integer from 1 to 14."
        ),
        "posting_times": StringField("Posting times", description=posting_times_help()),
        "brand_voice": StringField("Brand voice", description="Goes into every prompt."),
        "creativity_level": StringField("Creativity", description="From 0.0 to 1.0."),
        "topics": TextAreaField("Topics", description="One topic per line."),
        "language": StringField("Language", description="Two letters, e.g. en."),
        "country": StringField("Country", description="Two letters, e.g. us."),
        "post_visibility": StringField(
            "Post visibility", description="public, unlisted or private, where a platform lets the author choose."
        ),
    }
    assert set(fields) == set(SETTING_FIELDS), "the settings form is out of date with app.validation"
    return fields


def format_posting_times(times: Mapping[str, Any]) -> str:
    """``{"a": ["09:00"], "b": ["10:00", "17:00"]}`` -> ``a=09:00; b=10:00,17:00`` (keys are platforms)."""
    return "; ".join(f"{platform}={','.join(slots)}" for platform, slots in times.items())


def parse_posting_times(text: str) -> dict[str, list[str]]:
    """Read :func:`posting_times_help`'s grammar into a dict; the times are checked later.

    Raises ValidationError on the *syntax* only (a missing '=', bad JSON); whether
    "25:00" is a time is for validate_settings to say.
    """
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError([FieldError("posting_times", text, f"invalid JSON: {exc.msg}")]) from None
        if not isinstance(value, dict):
            raise ValidationError([FieldError("posting_times", text, "expected a JSON object")])
        return value
    result: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        platform, sep, times = part.partition("=")
        if not sep or not platform.strip():
            raise ValidationError(
                [FieldError("posting_times", text, f"{part!r} is not platform=HH:MM[,HH:MM]")]
            )
        result[platform.strip()] = [t.strip() for t in times.split(",") if t.strip()]
    return result


def form_values(settings: Any) -> dict[str, Any]:
    """The form's initial data from a UserSettings row."""
    return {
        "enable_autonomous_mode": bool(settings.enable_autonomous_mode),
        "require_approval": bool(settings.require_approval),
        "timezone": settings.timezone,
        "preferred_platforms": ", ".join(settings.preferred_platforms or []),
        "content_frequency": str(settings.content_frequency),
        "posting_times": format_posting_times(settings.posting_times or {}),
        "brand_voice": settings.brand_voice,
        "creativity_level": str(settings.creativity_level),
        "topics": "\n".join(settings.topics or []),
        "language": settings.language,
        "country": settings.country,
        "post_visibility": settings.post_visibility,
    }


def clean_settings(form: BaseForm) -> CleanSettings:
    """Validate the submitted settings; raise ValidationError listing every bad field."""
    raw: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name in SETTING_FIELDS:
        data = form[name].data
        raw[name] = data.strip() if isinstance(data, str) else data
    raw["topics"] = [line.strip() for line in (raw["topics"] or "").splitlines() if line.strip()]
    try:
        raw["posting_times"] = parse_posting_times(raw["posting_times"])
    except ValidationError as exc:
        errors.extend(exc.errors)
        del raw["posting_times"]
    try:
        clean = validate_settings(raw)
    except ValidationError as exc:
        # With unreadable posting times, "no posting time for <platform>" would only be noise.
        # (Decided before extending: a generator reading ``errors`` while it grows dropped
        # the posting-times error whenever an earlier field was also bad.)
        unreadable_times = any(e.field == "posting_times" for e in errors)
        errors.extend(e for e in exc.errors if not (unreadable_times and e.field == "posting_times"))
    if errors:
        raise ValidationError(errors)
    return clean
