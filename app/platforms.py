"""The platforms the autopilot publishes to: one entry each, the one home of their facts.

Validation, text limits, provider selection, the rate limiter, ``autopilot doctor``, the
report and the admin read a platform's name, display name and limits from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

__all__ = ["KNOWN_PLATFORMS", "PLATFORMS", "Platform", "display_name", "get_platform"]


@dataclass(frozen=True)
class Platform:
    """What the autopilot knows about one platform."""

    #: The key stored on posts, accounts and settings ("twitter" predates X's new name).
    key: str
    #: What people call it.
    display_name: str
    #: The Settings field holding our own posting limit per account, and the window it counts over.
    posting_limit_setting: str
    posting_window: timedelta
    #: The prefix of its environment variables (``X_CLIENT_ID``, ``LINKEDIN_VERSION``...).
    settings_prefix: str


PLATFORMS: dict[str, Platform] = {
    platform.key: platform for platform in (
        Platform("twitter", "X", "x_posts_per_15_min", timedelta(minutes=15), "X"),
        Platform("linkedin", "LinkedIn", "linkedin_posts_per_day", timedelta(days=1), "LINKEDIN"),
    )
}
#: Platform keys, in the order they are listed everywhere.
KNOWN_PLATFORMS = tuple(PLATFORMS)


def get_platform(key: str) -> Platform:
    """The registry entry for ``key``; KeyError names the known ones."""
    try:
        return PLATFORMS[key]
    except KeyError:
        raise KeyError(f"unknown platform {key!r}; known: {', '.join(KNOWN_PLATFORMS)}") from None


def display_name(key: str) -> str:
    """"X" for twitter, "LinkedIn" for linkedin; an unknown key as it is."""
    platform = PLATFORMS.get(key)
    return platform.display_name if platform is not None else key
