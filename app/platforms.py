"""The platforms the autopilot publishes to: one entry each, the one home of their facts.

Validation, text limits, the generators' instructions, provider selection, the rate limiter,
``autopilot doctor``, the report and the admin read a platform's name, display name, length
rule and limits from here. Adding a platform is an entry here, a provider module implementing
:class:`app.providers.base.Publisher` (with a ``from_settings`` factory named in the entry),
its settings in :mod:`app.config`, and a fake for its tests (docs/architecture.md).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from app.errors import InvalidValue
from app.x_weighted import invalid_characters, x_weighted_length

__all__ = ["KNOWN_PLATFORMS", "PLATFORMS", "Platform", "display_name", "get_platform"]


def code_points(text: str) -> int:
    """Length in code points after NFC (a combining accent and its letter count once)."""
    return len(unicodedata.normalize("NFC", text))


@dataclass(frozen=True)
class Platform:
    """What the autopilot knows about one platform."""

    #: The key stored on posts, accounts and settings ("twitter" predates X's new name).
    key: str
    #: What people call it.
    display_name: str
    #: How the platform counts a post's length, the most it accepts, and the unit's name.
    length: Callable[[str], int]
    max_length: int
    length_unit: str
    #: The characters of a text the platform refuses outright, if it has such a rule.
    refused_characters: Callable[[str], list[str]] | None
    #: Short posts in one paragraph (X) rather than several paragraphs (LinkedIn).
    short_form: bool
    #: What a writer (the LLM) is told about posting there, beyond the length.
    writing_guide: str
    #: The Settings field holding our own posting limit per account, and the window it counts over.
    posting_limit_setting: str
    posting_window: timedelta
    #: The prefix of its environment variables (``X_CLIENT_ID``, ``LINKEDIN_VERSION``...).
    settings_prefix: str
    #: ``module:function`` building its real Publisher from Settings, or None without credentials
    #: (the sandbox publisher is used then). Named, not imported: this module stays pure.
    publisher_factory: str
    #: The public page of a published post from its id on the platform (``Post.external_id``),
    #: for the portal's links; None when the platform has no such page.
    post_url: Callable[[str], str] | None = None
    #: ``module:function`` building the OAuth connector (:mod:`app.connect`) that lets a user
    #: connect an account through the platform's own consent screen, or None when the platform
    #: is not connected that way. The portal offers "Connect" for the platforms that name one.
    connector_factory: str | None = None


PLATFORMS: dict[str, Platform] = {
    platform.key: platform for platform in (
        Platform(
            key="twitter", display_name="X",
            length=x_weighted_length, max_length=280, length_unit="weighted characters",
            refused_characters=invalid_characters, short_form=True,
            writing_guide="a URL counts 23, CJK characters and emoji count 2. Use 1-3 relevant hashtags.",
            posting_limit_setting="x_posts_per_15_min", posting_window=timedelta(minutes=15),
            settings_prefix="X", publisher_factory="app.providers.x:from_settings",
            post_url="https://x.com/i/web/status/{}".format,
            connector_factory="app.connect.clients:x_from_settings"),
        Platform(
            key="linkedin", display_name="LinkedIn",
            length=code_points, max_length=3000, length_unit="characters",
            refused_characters=None, short_form=False,
            writing_guide="a few short paragraphs, a hook in the first line, no more than 3 hashtags at the end.",
            posting_limit_setting="linkedin_posts_per_day", posting_window=timedelta(days=1),
            settings_prefix="LINKEDIN", publisher_factory="app.providers.linkedin:from_settings",
            post_url="https://www.linkedin.com/feed/update/{}".format,
            connector_factory="app.connect.clients:linkedin_from_settings"),
    )
}
#: Platform keys, in the order they are listed everywhere.
KNOWN_PLATFORMS = tuple(PLATFORMS)


def get_platform(key: str) -> Platform:
    """The registry entry for ``key``; ValueError names the known ones."""
    try:
        return PLATFORMS[key]
    except KeyError:
        raise InvalidValue(f"unknown platform {key!r}; expected one of {', '.join(KNOWN_PLATFORMS)}") from None


def display_name(key: str) -> str:
    """"X" for twitter, "LinkedIn" for linkedin; an unknown key as it is."""
    platform = PLATFORMS.get(key)
    return platform.display_name if platform is not None else key


def publisher_provider(key: str) -> str:
    """The provider name a platform's pauses are recorded under: its publisher's module ("x",
    "linkedin"), as the publishers name themselves in an ``OperatorProblem``."""
    return get_platform(key).publisher_factory.split(":")[0].rsplit(".", 1)[-1]
