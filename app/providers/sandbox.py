"""The offline publisher: SIMULATED. Nothing is sent anywhere.

Used when a platform has no credentials configured, so the whole pipeline (schedule, publish,
metrics, weekly report) runs on a laptop. Everything it returns is made up but deterministic:
the same text and account always get the same post id, and the same id always gets the same
metrics, so tests and demos are repeatable. Nothing it reports reflects any real audience.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from app.clock import utcnow
from app.platforms import reports_impressions
from app.providers.base import (
    AccountCredentials,
    MediaFile,
    PostMetrics,
    PostRef,
    PublishResult,
    TokenSet,
    UploadedMedia,
)
from app.providers.errors import PermanentError
from app.text_limits import limit_error

#: Lifetime of a simulated access token.
DEFAULT_TOKEN_LIFETIME = timedelta(hours=2)
#: Range of simulated impressions per post (inclusive bounds).
DEFAULT_IMPRESSIONS_RANGE = (200, 5000)


def _digest(*parts: str) -> bytes:
    return hashlib.sha1("\x1f".join(parts).encode()).digest()


#: Every id the sandbox invents starts with this: such a post exists on no platform.
SANDBOX_ID_PREFIX = "sandbox-"


def is_sandbox_id(external_id: str | None) -> bool:
    """Whether a post's external id was invented by the sandbox (so it must be labelled simulated)."""
    return external_id is not None and external_id.startswith(SANDBOX_ID_PREFIX)


class SandboxPublisher:
    """SIMULATED publisher for ``platform``: returns fake ids and fake metrics."""

    name = "sandbox"
    offline = True

    def __init__(self, platform: str) -> None:
        self.platform = platform

    def publish(self, account: AccountCredentials, text: str, ref: PostRef | None = None,
                media: Sequence[UploadedMedia] = ()) -> PublishResult:
        """Pretend to post: a deterministic fake id, refused like the platform if too long."""
        error = limit_error(self.platform, text)
        if error:
            raise PermanentError(f"sandbox {self.platform} refused the post: {error}")
        post_id = self._post_id(account, text + "".join(item.media_id for item in media))
        return PublishResult(external_id=post_id, url=f"sandbox://{self.platform}/{post_id}")

    def upload_media(self, account: AccountCredentials, media: MediaFile) -> UploadedMedia:
        """Pretend to upload: an id derived from the bytes, never expiring."""
        digest = hashlib.sha1(media.data).hexdigest()[:12]
        return UploadedMedia(f"{SANDBOX_ID_PREFIX}media-{digest}", media.alt_text, None)

    def find_published(
        self, account: AccountCredentials, text: str, since: datetime, ref: PostRef | None = None
    ) -> PublishResult | None:
        """Nothing is ever in doubt in the sandbox, so there is never anything to find."""
        return None

    def refresh(self, account: AccountCredentials) -> TokenSet:
        """A new fake access token; the refresh token is kept (``None``)."""
        now = utcnow()
        token = _digest("token", str(account.account_id), now.isoformat()).hex()[:24]
        return TokenSet(access_token=f"sandbox-{token}", expires_at=now + DEFAULT_TOKEN_LIFETIME)

    def fetch_metrics(
        self, account: AccountCredentials, external_ids: list[str]
    ) -> dict[str, PostMetrics]:
        """SIMULATED figures derived from a hash of each id: stable across calls. A platform that
        reports no impressions (Bluesky, Mastodon) gets 0, as its real provider stores."""
        shown = reports_impressions(self.platform)
        return {post_id: simulated_metrics(post_id) if shown else replace(simulated_metrics(post_id), impressions=0)
                for post_id in external_ids}

    def _post_id(self, account: AccountCredentials, text: str) -> str:
        account_key = account.external_id or str(account.account_id)
        return f"{SANDBOX_ID_PREFIX}{self.platform}-{_digest(text, account_key).hex()[:12]}"


def simulated_metrics(post_id: str) -> PostMetrics:
    """Plausible made-up metrics: impressions 200-5000, likes 1-8 %, shares and comments fewer."""
    d = _digest("metrics", post_id)
    low, high = DEFAULT_IMPRESSIONS_RANGE
    impressions = low + int.from_bytes(d[0:4], "big") % (high - low + 1)
    like_rate = 0.01 + (d[4] / 255) * 0.07
    likes = max(1, round(impressions * like_rate))
    shares = round(likes * (d[5] / 255) * 0.3)
    comments = round(likes * (d[6] / 255) * 0.4)
    return PostMetrics(impressions=impressions, likes=likes, shares=shares, comments=comments)
