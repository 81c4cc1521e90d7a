"""The one validation of user settings, shared by the CLI, the admin and the workflows.

:func:`validate_settings` takes raw values (strings from a form or the command line, or
typed values) and returns a :class:`CleanSettings`, or raises
:class:`~app.errors.ValidationError` listing every bad field with its value. Nothing is
written by this module: callers apply the clean values only once validation passed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import available_timezones

from app.errors import FieldError, InvalidValue, ValidationError
from app.platforms import KNOWN_PLATFORMS, platform_list
from app.scheduling import MAX_FREQUENCY, MIN_FREQUENCY, parse_hhmm

#: Characters allowed in a brand voice description (it goes into every prompt).
MAX_BRAND_VOICE = 200
#: Topics a user may research, and characters per topic.
MAX_TOPICS, MAX_TOPIC_LENGTH = 20, 100
#: Local posting times per platform.
MAX_TIMES_PER_PLATFORM = 6

_LANGUAGE = re.compile(r"^[a-z]{2}$")
_COUNTRY = re.compile(r"^[a-z]{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class CleanSettings:
    """Validated user settings, in the types the model stores."""

    enable_autonomous_mode: bool = False
    timezone: str = "UTC"
    preferred_platforms: list[str] = field(default_factory=list)
    content_frequency: int = 3
    posting_times: dict[str, list[str]] = field(default_factory=dict)
    brand_voice: str = "professional"
    creativity_level: float = 0.7
    topics: list[str] = field(default_factory=list)
    language: str = "en"
    country: str = "us"
    require_approval: bool = False
    #: Who sees the posts where a platform lets the author choose (Mastodon's ``visibility``).
    post_visibility: str = "public"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SETTING_FIELDS = tuple(CleanSettings.__dataclass_fields__)


def settings_of(model: Any) -> dict[str, Any]:
    """The current settings of a UserSettings row as a plain dict (for merging updates)."""
    return {name: getattr(model, name) for name in SETTING_FIELDS}


def validate_email(value: str) -> str:
    email = (value or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise ValidationError([FieldError("email", value, "not a valid email address")])
    return email


def validate_settings(raw: Mapping[str, Any]) -> CleanSettings:
    """Validate every field of ``raw``; raise ValidationError naming each bad one.

    Fields absent from ``raw`` take their defaults. Unknown keys are refused (a typo such
    as ``timezon`` must not be silently ignored).
    """
    errors: list[FieldError] = []
    clean = CleanSettings()

    for key in raw:
        if key not in SETTING_FIELDS:
            errors.append(FieldError(key, raw[key], f"unknown setting; known: {', '.join(SETTING_FIELDS)}"))

    def take(name: str, parse: Any) -> None:
        if name not in raw or raw[name] is None:
            return
        try:
            setattr(clean, name, parse(raw[name]))
        except _Invalid as exc:
            errors.append(FieldError(name, raw[name], str(exc)))

    take("enable_autonomous_mode", _boolean)
    take("require_approval", _boolean)
    take("timezone", _timezone)
    take("preferred_platforms", _platforms)
    take("content_frequency", _frequency)
    take("posting_times", _posting_times)
    take("brand_voice", _brand_voice)
    take("creativity_level", _creativity)
    take("topics", _topics)
    take("language", lambda v: _pattern(v, _LANGUAGE, "expected a two-letter language code such as 'en'"))
    take("country", lambda v: _pattern(v, _COUNTRY, "expected a two-letter country code such as 'us'"))
    take("post_visibility", _visibility)

    if not any(e.field in ("preferred_platforms", "posting_times") for e in errors):
        for platform in clean.preferred_platforms:
            if not clean.posting_times.get(platform):
                errors.append(
                    FieldError("posting_times", clean.posting_times,
                               f"no posting time for preferred platform {platform!r}")
                )
    if clean.enable_autonomous_mode and not errors:
        if not clean.preferred_platforms:
            errors.append(FieldError("preferred_platforms", [], "autonomous mode needs at least one platform"))
        if not clean.topics:
            errors.append(FieldError("topics", [], "autonomous mode needs at least one topic to research"))

    if errors:
        raise ValidationError(errors)
    return clean


class _Invalid(InvalidValue):
    pass


#: The audiences a user may choose where a platform offers the choice.
POST_VISIBILITIES = ("public", "unlisted", "private")


def _visibility(value: Any) -> str:
    choice = str(value).strip().lower()
    if choice not in POST_VISIBILITIES:
        raise _Invalid(f"expected one of {', '.join(POST_VISIBILITIES)}")
    return choice


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in {"true", "1", "yes", "on"}:
        return True
    if lowered in {"false", "0", "no", "off"}:
        return False
    raise _Invalid("expected true or false")


def _timezone(value: Any) -> str:
    name = str(value).strip()
    # ZoneInfo also accepts file paths and legacy aliases; only canonical IANA keys are stored.
    if name not in _iana_zones():
        raise _Invalid("unknown IANA time zone; use a name such as 'America/New_York' or 'UTC'")
    return name


_ZONES: set[str] = set()


def _iana_zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
        _ZONES.add("UTC")
    return _ZONES


def known_time_zones() -> list[str]:
    """Every time zone name the validation accepts, sorted: the lists users pick from."""
    return sorted(_iana_zones())


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    raise _Invalid("expected a list")


def blank_platform() -> str:
    """Said of a list of platforms with a blank entry ("a, , b" or a trailing comma)."""
    return f"has an empty entry (a stray comma?); list platforms separated by commas, e.g. '{platform_list()}'"


def _platforms(value: Any) -> list[str]:
    # A blank entry is refused, not dropped: the operator may have meant a platform there.
    if isinstance(value, str) and value.strip() and any(not part.strip() for part in value.split(",")):
        raise _Invalid(blank_platform())
    platforms = [str(p).strip().lower() for p in _as_list(value)]
    if any(not p for p in platforms):
        raise _Invalid(blank_platform())
    unknown = [p for p in platforms if p not in KNOWN_PLATFORMS]
    if unknown:
        raise _Invalid(f"unknown platform {unknown[0]!r}; known: {', '.join(KNOWN_PLATFORMS)}")
    if len(set(platforms)) != len(platforms):
        raise _Invalid("a platform is listed twice")
    return platforms


def check_hhmm(value: Any) -> str:
    """A local time as strict ``HH:MM`` from 00:00 to 23:59."""
    text = str(value).strip()
    try:
        parse_hhmm(text)
    except ValueError:
        raise _Invalid(f"{value!r} is not a time from 00:00 to 23:59 in HH:MM form") from None
    return text


def _posting_times(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        raise _Invalid("expected a mapping of platform to HH:MM times")
    result: dict[str, list[str]] = {}
    for platform, times in value.items():
        key = str(platform).strip().lower()
        if key not in KNOWN_PLATFORMS:
            raise _Invalid(f"unknown platform {platform!r}; known: {', '.join(KNOWN_PLATFORMS)}")
        listed = _as_list(times)
        if not listed:
            raise _Invalid(f"no time given for {key}")
        if len(listed) > MAX_TIMES_PER_PLATFORM:
            raise _Invalid(f"at most {MAX_TIMES_PER_PLATFORM} times per platform")
        checked = sorted({check_hhmm(t) for t in listed})
        if len(checked) != len(listed):
            raise _Invalid(f"a time is listed twice for {key}")
        result[key] = checked
    return result


def _frequency(value: Any) -> int:
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not MIN_FREQUENCY <= number <= MAX_FREQUENCY:
        raise _Invalid(f"posts per week per platform must be an integer from {MIN_FREQUENCY} to {MAX_FREQUENCY}")
    return number


def _creativity(value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not 0.0 <= number <= 1.0:  # NaN fails this too
        raise _Invalid("expected a number from 0.0 to 1.0")
    return number


def _brand_voice(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise _Invalid("must not be empty")
    if len(text) > MAX_BRAND_VOICE:
        raise _Invalid(f"at most {MAX_BRAND_VOICE} characters (got {len(text)})")
    return text


def _topics(value: Any) -> list[str]:
    topics = [str(t).strip() for t in _as_list(value)]
    if any(not t for t in topics):
        raise _Invalid("a topic is empty")
    if len(topics) > MAX_TOPICS:
        raise _Invalid(f"at most {MAX_TOPICS} topics")
    long = [t for t in topics if len(t) > MAX_TOPIC_LENGTH]
    if long:
        raise _Invalid(f"topic {long[0][:20]!r}... is longer than {MAX_TOPIC_LENGTH} characters")
    return list(dict.fromkeys(topics))


def _pattern(value: Any, pattern: re.Pattern[str], message: str) -> str:
    text = str(value).strip().lower()
    if not pattern.match(text):
        raise _Invalid(message)
    return text
