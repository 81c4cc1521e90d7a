"""The four provider interfaces: research, generation, publishing and metrics.

Each has a real implementation (Serper, OpenAI, and one publisher per platform of
:mod:`app.platforms`) and an offline one, chosen by configuration in
:mod:`app.providers.registry`. Workflows only see these types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from app.report_math import engagement_rate


@dataclass(frozen=True)
class ResearchItem:
    """One normalised search or news result."""

    title: str
    link: str
    snippet: str
    published_at: datetime | None
    source: str


@dataclass(frozen=True)
class PostSlot:
    """One post to write: which platform, and when it will go out (UTC)."""

    platform: str
    slot_at: datetime


@dataclass(frozen=True)
class ImageCandidate:
    """An image of the user's library the generator may attach: its id and alt text only (the
    model reads the description, never the pixels or a URL)."""

    media_id: int
    alt_text: str


@dataclass(frozen=True)
class ContentBrief:
    """Everything the generator needs for one user's day."""

    slots: list[PostSlot]
    brand_voice: str
    creativity_level: float
    topics: list[str]
    research: list[ResearchItem]
    recent_posts: list[str] = field(default_factory=list)
    insights: list[str] = field(default_factory=list)
    language: str = "en"
    #: The user's images whose tags match the topics: a post may name one of them.
    images: list[ImageCandidate] = field(default_factory=list)
    #: Ask for a description of an illustration for each post (an image model is configured).
    describe_images: bool = False


@dataclass(frozen=True)
class DraftPost:
    """A generated post for one slot, already within the platform's limits."""

    platform: str
    slot_at: datetime
    text: str
    topic: str | None = None
    #: The library image the generator named for this post (None: none named); only trusted
    #: once the workflow checked it was among the brief's candidates.
    media_id: int | None = None
    #: Whether the generator answered the image question at all (False: the workflow's tag match
    #: decides, as for the offline templates).
    image_chosen: bool = False
    #: A description of an illustration for the post, when the brief asked for one: the image
    #: model's prompt and the generated image's alt text.
    image_description: str | None = None


@dataclass
class AccountCredentials:
    """What a publisher needs to act for one account. Tokens stay out of repr and logs."""

    account_id: int
    platform: str
    external_id: str | None
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    #: The server this account lives on (a Bluesky PDS, a Mastodon instance); None: the
    #: platform's one API.
    service_url: str | None = None


@dataclass(frozen=True)
class PostRef:
    """Which post a create is for. Platforms that recognise a repeated create (Bluesky's record
    key, Mastodon's Idempotency-Key) derive their key from it, so a retry of the same post is
    the same create; the others ignore it."""

    post_id: int
    scheduled_at: datetime
    #: The author's language (two letters) and chosen audience, where the platform takes them.
    language: str = "en"
    visibility: str = "public"


@dataclass(frozen=True)
class TokenSet:
    """The result of a token refresh. ``refresh_token`` None means: keep the stored one."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None


@dataclass(frozen=True)
class PublishResult:
    external_id: str
    url: str | None = None
    #: When the platform says the post was created (reconciliation reads it back); None: the
    #: platform did not say, and the moment its answer arrived is recorded instead.
    published_at: datetime | None = None


@dataclass(frozen=True)
class MediaFile:
    """An image ready for one platform: already fitted to its limits (:mod:`app.media.images`)."""

    data: bytes = field(repr=False)
    content_type: str
    alt_text: str
    width_px: int
    height_px: int
    animated: bool = False


@dataclass(frozen=True)
class UploadedMedia:
    """An image as a platform knows it: its id there, until when it may be used (None: not
    known to expire), and the alt text (some platforms take it on the post, not the upload)."""

    media_id: str
    alt_text: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PostMetrics:
    impressions: int
    likes: int
    shares: int
    comments: int

    @property
    def interactions(self) -> int:
        return self.likes + self.shares + self.comments

    @property
    def engagement_rate(self) -> float:
        """Interactions per impression; 0.0 when nothing was seen yet."""
        return engagement_rate(self.interactions, self.impressions)


class ResearchProvider(Protocol):
    name: str
    offline: bool

    def search(self, topic: str, *, language: str, country: str, now: datetime) -> list[ResearchItem]:
        """Recent results for ``topic``, deduplicated, newest first."""
        ...


class GenerationProvider(Protocol):
    name: str
    offline: bool

    def generate(self, brief: ContentBrief) -> list[DraftPost]:
        """One draft per slot of the brief (a slot may be missing if generation failed for it).

        Raises GenerationError when nothing usable came back after bounded retries.
        """
        ...


class ImageProvider(Protocol):
    name: str
    offline: bool

    def generate(self, description: str) -> bytes:
        """An image for ``description``, as encoded bytes the media library will check.

        Raises a ProviderError subclass; the caller keeps the post without an image then.
        """
        ...

    def check(self) -> str:
        """What ``autopilot doctor`` reports: the service answers and offers the model (else raises)."""
        ...


class Publisher(Protocol):
    name: str
    platform: str
    offline: bool

    def publish(self, account: AccountCredentials, text: str, ref: PostRef,
                media: Sequence[UploadedMedia] = ()) -> PublishResult:
        """Create the post, with the images already uploaded by :meth:`upload_media` (the
        caller passes ``media`` only when there are some). Raises a ProviderError subclass
        classifying any failure.

        Where the platform recognises a repeated create (its registry entry's
        ``repeat_create_safe_for``), calling this again for the same ``ref`` returns the post
        the first call created instead of a second one.
        """
        ...

    def upload_media(self, account: AccountCredentials, media: MediaFile) -> UploadedMedia:
        """Upload one image for ``account``'s posts; creates no post, so any failure is safe to
        retry. Raises a ProviderError subclass (PermanentError: the platform refuses it)."""
        ...

    def find_published(
        self, account: AccountCredentials, text: str, since: datetime, ref: PostRef
    ) -> PublishResult | None:
        """Reconcile an unknown outcome: the post with this text created since ``since``, if any.

        Raises :class:`~app.providers.errors.LookupUnsupported` (a NotImplementedError) where
        the platform offers no way to look.
        """
        ...

    def refresh(self, account: AccountCredentials) -> TokenSet:
        """Exchange the refresh token for a new access token. Raises AuthError if refused."""
        ...

    def fetch_metrics(
        self, account: AccountCredentials, external_ids: list[str]
    ) -> dict[str, PostMetrics]:
        """Current figures for the given posts, batched as the platform allows."""
        ...
