"""The platform registry is the one home of a platform: nothing else names one, and a new
platform needs nothing but its entry, its provider module and its settings."""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import field, make_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.errors import ConfigError
from app.platforms import (
    KNOWN_PLATFORMS,
    PLATFORMS,
    ImageLimits,
    Platform,
    code_points,
    display_name,
    published_post_url,
    reports_impressions,
)

ROOT = Path(__file__).resolve().parent.parent
#: The code a platform key must not be written in (outside the exemptions below).
WALKED = ("app", "actors", "admin", "portal", "bench")
#: Every platform key there is or is planned: also caught before its entry exists.
KEYS = ("twitter", "linkedin", "bluesky", "mastodon")
#: A key as a word of its own: not a host name (api.linkedin.com) nor a name (twitter-text).
KEY_RE = re.compile(r"(?<![\w.-])(" + "|".join(KEYS) + r")(?![\w.-])")


def exempt_files() -> set[Path]:
    """The registry itself and the modules its entries name (``module:function`` fields: the
    provider module's factory, extra doctor checks, and any such field added later)."""
    files = {ROOT / "app" / "platforms.py"}
    for platform in PLATFORMS.values():
        for value in vars(platform).values():
            if isinstance(value, str) and re.fullmatch(r"[\w.]+:\w+", value):
                files.add(ROOT / (value.split(":")[0].replace(".", "/") + ".py"))
    return files


def key_literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal (docstrings and f-strings included) naming a key;
    a template's whole text is searched."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        for number, line in enumerate(text.splitlines(), 1):
            if KEY_RE.search(line):
                yield number, line.strip()
        return
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.STRING and KEY_RE.search(token.string):
            yield token.start[0], token.string[:80]


def test_no_code_names_a_platform_outside_its_registry_entry_and_provider_module():
    exempt = exempt_files()
    walked = [path for top in WALKED if (ROOT / top).is_dir()
              for path in sorted((ROOT / top).rglob("*")) if path.suffix in {".py", ".html"}]
    assert len(walked) > 100  # the walk found the code
    found = [f"{path.relative_to(ROOT)}:{line}: {text}"
             for path in walked if path not in exempt for line, text in key_literals(path)]
    assert found == [], "platform keys outside the registry:\n" + "\n".join(found)


def test_the_walk_catches_a_key_in_a_string_but_not_a_host_a_library_or_a_comment(tmp_path):
    path = tmp_path / "sample.py"
    path.write_text('HELP = "twitter or linkedin"\n# twitter in a comment is fine\n'
                    'URL = "https://api.linkedin.com"\nLIB = "twitter-text"\nDOC = f"{x} mastodon"\n',
                    encoding="utf-8")
    assert [line for line, _ in key_literals(path)] == [1, 5]


# -- a fifth, throwaway platform through the registry alone ---------------------------------

FIFTH = "fifthnet"

#: The settings a platform brings (what app/config.py gets for a real one; its annotations are
#: strings there too).
FifthSettings = make_dataclass("FifthSettings", [
    ("fifthnet_enabled", "bool", field(default=False)),
    ("fifthnet_base_url", "str", field(default="https://api.fifthnet.example")),
    ("fifthnet_posts_per_day", "int", field(default=10)),
], bases=(Settings,), frozen=True)


def from_settings(settings: Settings, timeout: httpx.Timeout) -> None:
    """The throwaway platform's factory: no real client, the sandbox stands in."""
    return None


@contextmanager
def fifth_platform() -> Iterator[Platform]:
    entry = Platform(
        key=FIFTH, display_name="FifthNet", length=code_points, max_length=40, length_unit="characters",
        refused_characters=None, short_form=True, writing_guide="terse, no hashtags.",
        posting_limit_setting="fifthnet_posts_per_day", posting_window=timedelta(days=1),
        settings_prefix="FIFTHNET", publisher_factory=f"{__name__}:from_settings",
        switch_settings=("fifthnet_enabled",), url_settings=("fifthnet_base_url",),
        external_id_help="the FifthNet member number",
        images=ImageLimits(frozenset({"image/png"}), max_bytes=100_000, max_pixels=10**6, max_per_post=1))
    PLATFORMS[FIFTH] = entry
    try:
        yield entry
    finally:
        del PLATFORMS[FIFTH]


def test_a_fifth_platform_is_validated_counted_prompted_and_diagnosed_from_its_entry(sqlite_url):
    from admin.settings_form import settings_fields
    from app import migrate
    from app.cli.common import PlatformChoice
    from app.cli.doctor import diagnose
    from app.providers.openai_prompt import platform_rules
    from app.providers.registry import build_providers
    from app.text_limits import limit_error
    from app.validation import validate_settings

    with fifth_platform():
        assert FIFTH in KNOWN_PLATFORMS and display_name(FIFTH) == "FifthNet"
        # Its settings are checked at start-up with the others.
        with pytest.raises(ConfigError, match="FIFTHNET_BASE_URL"):
            FifthSettings.from_env({"FIFTHNET_BASE_URL": "ftp://nowhere"})
        with pytest.raises(ConfigError, match="FIFTHNET_POSTS_PER_DAY"):
            FifthSettings.from_env({"FIFTHNET_POSTS_PER_DAY": "0"})
        # Users may pick it, with posting times.
        clean = validate_settings({"preferred_platforms": [FIFTH], "posting_times": {FIFTH: ["09:00"]}})
        assert clean.preferred_platforms == [FIFTH]
        # Its length rule and limit, its prompt, the CLI's choice, the admin's help.
        assert limit_error(FIFTH, "x" * 41) == "text is 41 characters; FifthNet allows 40"
        assert "FifthNet (fifthnet): at most 40 characters; terse, no hashtags." == platform_rules(FIFTH)
        assert PlatformChoice().convert(" FifthNet ", None, None) == FIFTH
        assert FIFTH in str(settings_fields()["preferred_platforms"].kwargs["description"])
        # The sandbox stands in without its switch, and the doctor says which variable to set.
        config = FifthSettings(database_url=sqlite_url)
        migrate.upgrade(sqlite_url)
        assert build_providers(config, None).publisher(FIFTH).offline  # type: ignore[arg-type]
        checks = {c["check"]: c for c in diagnose(config, datetime.now(UTC))}
        assert checks[f"publish:{FIFTH}"]["status"] == "offline"
        assert "FIFTHNET_ENABLED" in checks[f"publish:{FIFTH}"]["detail"]
        assert {f"publish:{key}" for key in KNOWN_PLATFORMS} <= set(checks)
    assert FIFTH not in KNOWN_PLATFORMS


def test_doctor_lists_every_registered_platform(sqlite_url):
    from app import migrate
    from app.cli.doctor import diagnose

    migrate.upgrade(sqlite_url)
    checks = {c["check"]: c for c in diagnose(Settings(database_url=sqlite_url), datetime.now(UTC))}
    assert [key for key in KNOWN_PLATFORMS if f"publish:{key}" in checks] == list(KNOWN_PLATFORMS)
    assert len(KNOWN_PLATFORMS) >= 4


def test_the_operators_figures_list_every_platform_even_before_it_published(sqlite_url):
    from app import migrate
    from app.db import get_engine, make_session_factory
    from app.ops.stats import publishing_stats

    migrate.upgrade(sqlite_url)
    now = datetime.now(UTC)
    with make_session_factory(get_engine(sqlite_url))() as session:
        stats = publishing_stats(session, now - timedelta(days=1), now)
    assert [p.platform for p in stats.platforms] == list(KNOWN_PLATFORMS)
    assert [p.label for p in stats.platforms] == [PLATFORMS[k].display_name for k in KNOWN_PLATFORMS]
    with fifth_platform():
        with make_session_factory(get_engine(sqlite_url))() as session:
            assert FIFTH in [p.platform for p in publishing_stats(session, now - timedelta(days=1), now).platforms]


@pytest.mark.parametrize("key", list(KNOWN_PLATFORMS))
def test_generation_writes_for_each_platform_within_its_rule(key):
    from app.providers.base import ContentBrief, PostSlot
    from app.providers.offline import OfflineResearch, TemplateGeneration
    from app.providers.openai_prompt import platform_rules
    from app.text_limits import limit_error

    now = datetime.now(UTC).replace(microsecond=0)
    slots = [PostSlot(key, now + timedelta(hours=h)) for h in range(1, 8)]
    brief = ContentBrief(slots=slots, brand_voice="professional", creativity_level=0.7,
                         topics=["open source maintainers and their very long weekly release notes"],
                         research=OfflineResearch().search("open source", language="en", country="us", now=now))
    drafts = TemplateGeneration().generate(brief)
    assert len(drafts) == len(slots)
    assert [limit_error(key, d.text) for d in drafts] == [None] * len(slots)
    entry = PLATFORMS[key]
    assert entry.writing_guide in platform_rules(key) and str(entry.max_length) in platform_rules(key)


def test_only_the_platforms_that_report_impressions_have_an_engagement_rate():
    assert {key for key in PLATFORMS if reports_impressions(key)} == {"twitter", "linkedin"}
    assert reports_impressions("a-platform-since-removed")  # its stored impressions decide, as before


def test_a_post_link_is_built_from_a_real_id_and_none_from_a_made_up_one():
    uri = "at://did:plc:abc/app.bsky.feed.post/3k2a"
    assert published_post_url("bluesky", uri) == "https://bsky.app/profile/did:plc:abc/post/3k2a"
    # The sandbox's ids are no AT URIs: no link, rather than an error on the dashboard.
    assert published_post_url("bluesky", "sandbox-bluesky-1a2b3c") is None
