"""The platforms the autopilot publishes to: one entry each, the one home of their facts.

Everything that differs per platform is read from here: validation, text limits, the
generators' instructions, provider selection, the rate limiter, ``autopilot doctor``, the
settings' checks, the CLI's help, the admin's forms and filters, the report and the
dashboards. Adding a platform is an entry here, a provider module implementing
:class:`app.providers.base.Publisher` (with a ``from_settings`` factory named in the entry),
its settings in :mod:`app.config`, and a fake for its tests (docs/architecture.md lists the
files; ``tests/test_platform_registry.py`` proves nothing else names a platform).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, overload

from app.errors import InvalidValue
from app.richtext import graphemes, mastodon_length
from app.x_weighted import invalid_characters, x_weighted_length

__all__ = ["KNOWN_PLATFORMS", "PLATFORMS", "ImageLimits", "Platform", "display_name", "get_platform",
           "platform_list", "published_post_url", "reports_impressions"]

_MB = 1024 * 1024


def code_points(text: str) -> int:
    """Length in code points after NFC (a combining accent and its letter count once)."""
    return len(unicodedata.normalize("NFC", text))


@dataclass(frozen=True)
class ImageLimits:
    """What one platform takes for a post's images (:mod:`app.media.images` fits images to it)."""

    #: Content types the platform accepts.
    content_types: frozenset[str]
    #: The largest file, in bytes.
    max_bytes: int
    #: The most pixels (width x height).
    max_pixels: int
    #: Images per post.
    max_per_post: int
    #: Whether an image over the limits may be resized or re-encoded to fit (else: refused).
    may_reencode: bool = True
    #: The largest animated GIF, in bytes, where the platform allows more than for stills.
    max_animated_bytes: int | None = None
    #: An upload belongs to the one post that uses it (Mastodon attaches it to one status), so
    #: each post uploads its own; otherwise one upload serves every post of the account.
    upload_per_post: bool = False


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
    #: The Settings fields that switch the real publisher on (all must be set); the doctor
    #: names them when the sandbox stands in.
    switch_settings: tuple[str, ...]
    #: The images a post may carry there (types, bytes, pixels, how many), from its docs.
    images: ImageLimits
    #: The public page of a published post from its id on the platform (``Post.external_id``),
    #: for the portal's links; None when the platform has no such page.
    post_url: Callable[[str], str | None] | None = None
    #: Its Settings fields holding http(s) URLs, checked at start-up; the first is the one
    #: the doctor names when the service is unreachable (none: each account has its own host).
    url_settings: tuple[str, ...] = ()
    #: What an account's external id is there (the CLI's help says it).
    external_id_help: str = "the account's id on the platform"
    #: ``module:function(settings, now)`` returning extra doctor checks as (check, status,
    #: detail) triples, for a platform with a configuration that can go stale.
    doctor_checks: str | None = None
    #: How long the platform recognises a repeated create as the first one (Bluesky's record
    #: key: always; Mastodon's Idempotency-Key: about an hour), or None where it cannot
    #: (a repeat would post twice: an unknown outcome is reconciled instead).
    repeat_create_safe_for: timedelta | None = None
    #: ``module:function(settings, key)`` building the OAuth connector (:mod:`app.connect`) that
    #: lets a user connect an account through the platform's own consent screen, or None when the
    #: platform is not connected that way. The portal offers "Connect" for the platforms that name one.
    connector_factory: str | None = None
    #: How a user connects an account when the platform has no central consent screen:
    #: ``"app_password"`` (a handle and an app password signed in on the platform's server, as
    #: Bluesky) or ``"instance"`` (the user names their own server, the autopilot registers
    #: there and runs that server's OAuth consent, as Mastodon). The portal's accounts page
    #: offers the matching form; None with ``connector_factory`` or for no form at all.
    connect_with: str | None = None
    #: A published post's page when it depends on the account, from the post's external id,
    #: the account's ``service_url`` and its handle (Mastodon: the status lives on the
    #: account's instance); preferred over ``post_url`` when set.
    account_post_url: Callable[[str, str | None, str | None], str | None] | None = None
    #: Whether the platform lets the autopilot revoke an account's tokens when the user
    #: disconnects it or deletes their account (X's token revocation, Bluesky's deleteSession,
    #: Mastodon's /oauth/revoke); False where it offers apps none (LinkedIn: the member removes
    #: the app in their settings). :mod:`app.connect.revocation` reads it.
    revokes_tokens: bool = False
    #: Whether each post there chooses its audience (public, unlisted, followers only): the
    #: user's ``post_visibility`` setting applies there, and the portal's settings say so.
    chooses_visibility: bool = False
    #: Whether the platform reports how often a post was seen (X, LinkedIn): only then has a post
    #: an engagement rate (interactions per impression). Bluesky and Mastodon report likes,
    #: reposts and replies but no impressions: their posts are measured by interactions alone,
    #: never given a 0 % rate (:mod:`app.report_math`).
    reports_impressions: bool = True


def bluesky_web_url(at_uri: str) -> str | None:
    """bsky.app's page of a post from its AT URI (``at://{did}/app.bsky.feed.post/{rkey}``);
    None for an id that is not one (the sandbox's made-up ids), rather than a broken page."""
    parts = at_uri.removeprefix("at://").split("/", 2)
    if not at_uri.startswith("at://") or len(parts) != 3:
        return None
    did, _collection, rkey = parts
    return f"https://bsky.app/profile/{did}/post/{rkey}"


def mastodon_status_url(status_id: str, instance: str | None, handle: str | None) -> str | None:
    """The status's page on the account's instance: ``{instance}/@{username}/{id}`` (the
    handle is stored as ``@username@host``); None without the instance or the handle."""
    username = (handle or "").lstrip("@").split("@", 1)[0]
    if not instance or not username:
        return None
    return f"{instance.rstrip('/')}/@{username}/{status_id}"


#: Bluesky's record key is part of the record's address: a second create with it is always refused.
FOREVER = timedelta(days=36_500)

PLATFORMS: dict[str, Platform] = {
    platform.key: platform for platform in (
        Platform(
            key="twitter", display_name="X",
            length=x_weighted_length, max_length=280, length_unit="weighted characters",
            refused_characters=invalid_characters, short_form=True,
            writing_guide="a URL counts 23, CJK characters and emoji count 2. Use 1-3 relevant hashtags.",
            posting_limit_setting="x_posts_per_15_min", posting_window=timedelta(minutes=15),
            settings_prefix="X", publisher_factory="app.providers.x:from_settings",
            # docs.x.com, media best practices: JPEG, PNG, WebP and GIF; photos up to 5 MB,
            # animated GIFs up to 15 MB; up to 4 photos per post. No pixel limit is documented
            # (X downsizes large photos itself): 8192 px square is ours, to keep uploads sane.
            images=ImageLimits(frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"}),
                               max_bytes=5 * _MB, max_pixels=8192 * 8192, max_per_post=4,
                               max_animated_bytes=15 * _MB),
            switch_settings=("x_client_id", "x_client_secret"),
            url_settings=("x_api_base_url", "x_authorize_url"),
            external_id_help="the X user id",
            post_url="https://x.com/i/web/status/{}".format,
            connector_factory="app.connect.clients:x_from_settings", revokes_tokens=True),
        Platform(
            key="linkedin", display_name="LinkedIn",
            length=code_points, max_length=3000, length_unit="characters",
            refused_characters=None, short_form=False,
            writing_guide="a few short paragraphs, a hook in the first line, no more than 3 hashtags at the end.",
            posting_limit_setting="linkedin_posts_per_day", posting_window=timedelta(days=1),
            settings_prefix="LINKEDIN", publisher_factory="app.providers.linkedin:from_settings",
            # LinkedIn Images API: JPG, PNG and GIF (no WebP), at most 36,152,320 pixels; a
            # multi-image post takes 2 to 20. No byte limit is documented for images: 10 MB is
            # ours (a larger still is re-encoded, which LinkedIn would do anyway).
            images=ImageLimits(frozenset({"image/jpeg", "image/png", "image/gif"}),
                               max_bytes=10 * _MB, max_pixels=36_152_320, max_per_post=20),
            switch_settings=("linkedin_client_id", "linkedin_client_secret"),
            url_settings=("linkedin_api_base_url", "linkedin_oauth_base_url"),
            external_id_help="the LinkedIn author URN (urn:li:person:...)",
            doctor_checks="app.providers.linkedin:doctor_checks",
            post_url="https://www.linkedin.com/feed/update/{}".format,
            connector_factory="app.connect.clients:linkedin_from_settings"),
        Platform(
            key="bluesky", display_name="Bluesky",
            length=graphemes, max_length=300, length_unit="graphemes",
            refused_characters=None, short_form=True,
            writing_guide=("plain text, no markdown; a link counts in full; conversational, "
                           "hashtags are rare there (0-2, only if they add reach)."),
            posting_limit_setting="bluesky_posts_per_hour", posting_window=timedelta(hours=1),
            settings_prefix="BLUESKY", publisher_factory="app.providers.bluesky:from_settings",
            switch_settings=("bluesky_enabled",), url_settings=("bluesky_pds_url",),
            external_id_help="the account's DID (did:plc:...)",
            # app.bsky.embed.images (atproto lexicons): up to 4 images, each blob at most
            # 1,000,000 bytes (the lexicon's maxSize); JPEG, PNG and WebP (a GIF is not animated
            # there: sent as a still). No pixel limit in the lexicon: 2000 px square is ours,
            # the size Bluesky's own app resizes to.
            images=ImageLimits(frozenset({"image/jpeg", "image/png", "image/webp"}),
                               max_bytes=1_000_000, max_pixels=2000 * 2000, max_per_post=4),
            repeat_create_safe_for=FOREVER, post_url=bluesky_web_url, connect_with="app_password",
            reports_impressions=False, revokes_tokens=True),
        Platform(
            key="mastodon", display_name="Mastodon",
            length=mastodon_length, max_length=500, length_unit="characters",
            refused_characters=None, short_form=True,
            writing_guide=("plain text, no markdown; a URL counts 23; CamelCase hashtags (2-4, "
                           "people follow hashtags there); no engagement bait."),
            posting_limit_setting="mastodon_posts_per_3_hours", posting_window=timedelta(hours=3),
            settings_prefix="MASTODON", publisher_factory="app.providers.mastodon:from_settings",
            switch_settings=("mastodon_enabled",),
            external_id_help="the account id on its instance",
            # Mastodon's instance configuration (docs.joinmastodon.org, /api/v2/instance):
            # image_size_limit 16 MB and image_matrix_limit 33,177,600 pixels by default;
            # JPEG, PNG, GIF, WebP; 4 attachments per status.
            images=ImageLimits(frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"}),
                               max_bytes=16 * _MB, max_pixels=33_177_600, max_per_post=4,
                               upload_per_post=True),
            repeat_create_safe_for=timedelta(minutes=50), connect_with="instance", chooses_visibility=True,
            account_post_url=mastodon_status_url, reports_impressions=False, revokes_tokens=True),
    )
}


class _Keys(Sequence[str]):
    """The registry's keys, read when used (a platform registered later, as a test does, is
    listed everywhere at once)."""

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return tuple(PLATFORMS)[index]

    def __len__(self) -> int:
        return len(PLATFORMS)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(PLATFORMS))

    def __contains__(self, key: object) -> bool:
        return key in PLATFORMS

    def __repr__(self) -> str:
        return repr(tuple(PLATFORMS))


#: Platform keys, in the order they are listed everywhere.
KNOWN_PLATFORMS: Sequence[str] = _Keys()


def platform_list(sep: str = ", ") -> str:
    """The known keys as text, for help and error messages: ``"twitter, linkedin, ..."``."""
    return sep.join(PLATFORMS)


def published_post_url(key: str, external_id: str | None, account: Any = None) -> str | None:
    """A published post's public page, as its registry entry builds it; None when unknown.

    ``account`` (anything with ``service_url`` and ``handle``) is the post's account, needed
    where the page depends on it (``account_post_url``: a Mastodon status lives on its
    instance); without it such a platform has no link.
    """
    entry = PLATFORMS.get(key)
    if external_id is None or entry is None:
        return None
    if entry.account_post_url is not None:
        return None if account is None else entry.account_post_url(external_id, account.service_url, account.handle)
    return None if entry.post_url is None else entry.post_url(external_id)


def get_platform(key: str) -> Platform:
    """The registry entry for ``key``; ValueError names the known ones."""
    try:
        return PLATFORMS[key]
    except KeyError:
        raise InvalidValue(f"unknown platform {key!r}; expected one of {', '.join(KNOWN_PLATFORMS)}") from None


def display_name(key: str) -> str:
    """The entry's display name ("X" for its old key); an unknown key as it is."""
    platform = PLATFORMS.get(key)
    return platform.display_name if platform is not None else key


def reports_impressions(key: str) -> bool:
    """Whether the platform reports impressions, so its posts have an engagement rate. An
    unknown key (a platform since removed) is taken to, as every platform did before the open
    networks: its stored impressions decide, as they always did."""
    platform = PLATFORMS.get(key)
    return platform is None or platform.reports_impressions


def publisher_provider(key: str) -> str:
    """The provider name a platform's pauses are recorded under: its publisher's module ("x",
    "linkedin"), as the publishers name themselves in an ``OperatorProblem``."""
    return get_platform(key).publisher_factory.split(":")[0].rsplit(".", 1)[-1]
