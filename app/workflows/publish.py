"""Publishing posts exactly once: claim them, call the platform, record what happened.

A message carries the posts due at one second (:mod:`app.batches`); they are claimed together,
their platform calls run concurrently (on the posting actor's thread pool) and their outcomes
are recorded together. Each post keeps the guarantees below on its own:

* The ``publishing`` claim is committed before the platform is called. From then on the
  request may reach the platform, so a failure whose effect is unknown (timeout after sending,
  any unclassified exception, a worker dying mid-call) is never retried: the platform is asked
  whether the post exists (:func:`look_for`) and otherwise a person decides.
* Errors known to create nothing (429, temporary errors, an expired token) are retried with a
  new claim token, sent as its own message due at ``retry_at``.
* No post goes out more than ``Settings.stale_grace_minutes`` after its time: past that it
  waits for review instead (a morning post published at midnight does more harm than good).

The states and moves are :mod:`app.lifecycle`'s; token refresh and re-authorisation are
:mod:`app.workflows.accounts`'; what each attempt leads to (published, retried, reviewed)
is recorded by :mod:`app.workflows.publish_outcomes`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from app.connect import accounts_page_url
from app.errors import TokenDecryptionError
from app.intents import PublishPosts
from app.lifecycle import Claim, claim_for_publishing, move_many, new_claim_token, stale_at
from app.models import (
    AccountStatus,
    PlatformAccount,
    Post,
    PostStatus,
    ProviderHold,
    ReviewReason,
    UserSettings,
)
from app.platforms import PLATFORMS, display_name
from app.provider_holds import active_hold
from app.providers.base import AccountCredentials, PostRef, Publisher, PublishResult, UploadedMedia
from app.providers.errors import AuthError
from app.runtime import Runtime
from app.workflows.accounts import flag_reauth, refresh_tokens
from app.workflows.media_uploads import MediaNeed, ensure_uploaded, media_needs
from app.workflows.publish_outcomes import (
    NOT_SENT,
    PublishOutcome,
    describe,
    not_sent,
    notify_sent_to_review,
    record_published,
    record_published_many,
    retry,
    review,
)

__all__ = [
    "DEFAULT_RECONCILE_SLACK", "DEFAULT_REFRESH_MARGIN", "RATE_LIMITED_RETRY", "Allow", "Attempt", "Batch",
    "Ready", "RunCalls", "look_for", "post_ref", "publish_post", "publish_posts", "serially",
]

logger = logging.getLogger(__name__)

#: An access token expiring within this is refreshed before publishing.
DEFAULT_REFRESH_MARGIN = timedelta(minutes=5)
#: Reconciliation looks this far before the publish started (clock skew with the platform).
DEFAULT_RECONCILE_SLACK = timedelta(minutes=1)


#: When our own posting limit says no, the post waits this long (it stays queued, visibly).
RATE_LIMITED_RETRY = timedelta(seconds=60)

#: Which of these (platform, user id) publishes fit our own posting limits now, in order? The
#: actor layer gives one backed by Redis (``actors/limits.py``); None: no limiter (in-process).
Allow = Callable[[Sequence[tuple[str, int]]], list[bool]]
#: Runs one call per item and returns the results in order: serially here, on a thread pool in
#: the posting actor (``actors/posting.py``), so a batch's platform calls overlap.
RunCalls = Callable[[Callable[["Ready"], "Attempt"], Sequence["Ready"]], list["Attempt"]]


def serially(call: Callable[[Ready], Attempt], items: Sequence[Ready]) -> list[Attempt]:
    return [call(item) for item in items]


@dataclass(frozen=True)
class Ready:
    """A claimed post with everything its platform call needs (its image, if it has one, with
    the upload its account already has of it: :mod:`app.workflows.media_uploads`)."""

    claim: Claim
    publisher: Publisher
    creds: AccountCredentials
    ref: PostRef
    media: MediaNeed | None = None


@dataclass(frozen=True)
class Attempt:
    """What one platform call came to, before anything is written.

    ``result`` alone: created. ``not_sent``: refused in a way known to create nothing.
    ``unknown``: the call failed after it may have reached the platform; ``result`` is then
    what :func:`look_for` found, if anything.
    """

    ready: Ready
    finished_at: datetime
    account_id: int
    result: PublishResult | None = None
    not_sent: BaseException | None = None
    unknown: str | None = None


@dataclass
class Batch:
    """What publishing one message's posts did: each post's outcome, and the messages to send
    (retries at their time, posts our own limit postponed)."""

    outcomes: dict[int, PublishOutcome] = field(default_factory=dict)
    resend: list[PublishPosts] = field(default_factory=list)


def publish_post(runtime: Runtime, post_id: int, claim_token: str, now: datetime) -> PublishOutcome:
    """Publish the one post held by ``claim_token``; see :func:`publish_posts`."""
    return publish_posts(runtime, [post_id], claim_token, now).outcomes[post_id]


def publish_posts(runtime: Runtime, post_ids: Sequence[int], claim_token: str, now: datetime, *,
                  allow: Allow | None = None, run_calls: RunCalls = serially) -> Batch:
    """Publish the posts held by ``claim_token`` exactly once each; see the module docstring.

    Three short phases, whatever the batch's size: claim them all and read what their calls
    need (two transactions), call the platforms (``run_calls``: concurrently in a worker, no
    transaction open), record the outcomes (one transaction for the successes, one per
    failure). A post the token no longer holds (duplicate delivery, cancelled, superseded by a
    retry or the sweeper) is ``"skipped"`` without touching the platform.
    """
    batch = Batch()
    if allow is not None:
        post_ids = _within_limits(runtime, post_ids, claim_token, allow, batch)
    with runtime.session_factory() as session:
        with session.begin():
            claims = claim_for_publishing(session, post_ids, claim_token, now)
        # The claims are committed: from here a redelivered message is skipped.
        claimed = {claim.post_id for claim in claims}
        with session.begin():
            if len(claimed) < len(post_ids):
                batch.outcomes.update(_skipped(session, [i for i in post_ids if i not in claimed]))
            ready = _prepare(runtime, session, claims, now, batch.outcomes)
    # No transaction is open across the platform calls.
    attempts = run_calls(lambda item: _call(runtime, item, now), ready)
    _record(runtime, attempts, now, batch.outcomes)
    reviewed = [post_id for post_id, outcome in batch.outcomes.items() if outcome.kind == "review"]
    if reviewed:  # one notice per user for the whole batch, in one INSERT
        with runtime.session_factory() as session, session.begin():
            notify_sent_to_review(session, reviewed, now)
    carried = {post_id for message in batch.resend for post_id in message.post_ids}  # postponed
    batch.resend.extend(PublishPosts(outcome.claim_token, outcome.retry_at, (post_id,))
                        for post_id, outcome in batch.outcomes.items()
                        if outcome.kind == "retry" and outcome.claim_token and outcome.retry_at
                        and post_id not in carried)
    return batch


def _within_limits(runtime: Runtime, post_ids: Sequence[int], claim_token: str, allow: Allow,
                   batch: Batch) -> list[int]:
    """The posts our own posting limits let through now; the others wait
    :data:`RATE_LIMITED_RETRY` under a new token (a new message id, so recovery never confuses
    the old message with the new one), visibly (``queued_at``)."""
    with runtime.session_factory() as session:
        held = session.execute(select(Post.id, Post.platform, Post.user_id).where(
            Post.id.in_(post_ids), Post.status == PostStatus.QUEUED, Post.claim_token == claim_token)).all()
    verdicts = allow([(row.platform, row.user_id) for row in held])
    denied = [row.id for row, allowed in zip(held, verdicts, strict=True) if not allowed]
    if denied:
        retry_at = runtime.now() + RATE_LIMITED_RETRY
        token = new_claim_token()
        with runtime.session_factory() as session, session.begin():
            moved = move_many(session, denied, source=PostStatus.QUEUED, target=PostStatus.QUEUED,
                              where=(Post.claim_token == claim_token,), claim_token=token, queued_at=retry_at)
        if moved:
            batch.resend.append(PublishPosts(token, retry_at, tuple(sorted(row.id for row in moved))))
        for row in moved:
            batch.outcomes[row.id] = PublishOutcome("retry", retry_at=retry_at, claim_token=token,
                                                    detail="our own posting limit")
    refused = set(denied)
    return [post_id for post_id in post_ids if post_id not in refused]


def _skipped(session: Session, post_ids: Sequence[int]) -> dict[int, PublishOutcome]:
    status: dict[int, str] = {row.id: row.status for row in session.execute(
        select(Post.id, Post.status).where(Post.id.in_(post_ids)))}
    outcomes = {}
    for post_id in post_ids:
        if post_id not in status:
            why = "no such post"
        elif status[post_id] == PostStatus.QUEUED:
            why = "the claim token was superseded"
        else:
            why = f"the post is {status[post_id]}"
        outcomes[post_id] = PublishOutcome("skipped", detail=why)
    return outcomes


def _prepare(runtime: Runtime, session: Session, claims: Sequence[Claim], now: datetime,
             outcomes: dict[int, PublishOutcome]) -> list[Ready]:
    """Check each claimed post can go out now and gather its publisher and credentials.

    One query for the accounts, one per provider for its pause; the posts that cannot go out
    are moved on here (review, or retry after an operator pause).
    """
    grace = runtime.settings.stale_grace_minutes
    accounts = _accounts_of(session, claims)
    publishers: dict[str, Publisher | None] = {}
    holds: dict[str, ProviderHold | None] = {}
    credentials: dict[int, AccountCredentials | str] = {}
    ready = []
    for claim in claims:
        if now > stale_at(claim.scheduled_at, grace):
            late = now - claim.scheduled_at
            outcomes[claim.post_id] = review(session, claim, ReviewReason.STALE,
                                             f"not published: {late} late, past the {grace}-minute grace", now)
            continue
        if claim.platform not in publishers:
            try:
                publishers[claim.platform] = runtime.providers.publisher(claim.platform)
            except KeyError:
                publishers[claim.platform] = None
        publisher = publishers[claim.platform]
        if publisher is None:
            outcomes[claim.post_id] = review(session, claim, ReviewReason.PERMANENT_ERROR,
                                             f"no publisher is configured for {claim.platform!r}", now)
            continue
        account, language, visibility = accounts.get((claim.user_id, claim.platform), (None, "en", "public"))
        if account is None:
            outcomes[claim.post_id] = review(session, claim, ReviewReason.NEEDS_REAUTH,
                                             f"no {display_name(claim.platform)} account is connected", now)
            continue
        if publisher.name not in holds:
            holds[publisher.name] = active_hold(session, publisher.name, now)
        hold = holds[publisher.name]
        if hold is not None:  # an operator problem: wait for its end, or review when stale
            outcomes[claim.post_id] = retry(session, claim, hold.until, f"{publisher.name} paused: {hold.detail}",
                                            now, grace)
            continue
        if account.status != AccountStatus.ACTIVE:
            # Shown to the user (the review queue, the re-authorisation notice): display names.
            error = f"the {display_name(claim.platform)} account is {account.status}"
            if account.status == AccountStatus.NEEDS_REAUTH:
                flag_reauth(session, account.id, claim.user_id, claim.platform, error, now,
                            accounts_url=accounts_page_url(runtime.settings))
            outcomes[claim.post_id] = review(session, claim, ReviewReason.NEEDS_REAUTH, error, now)
            continue
        if account.id not in credentials:
            try:
                credentials[account.id] = runtime.vault.credentials(account)
            except TokenDecryptionError as exc:
                # Only reconnecting the account can help: flag it (the user is told once).
                credentials[account.id] = describe(exc)
                flag_reauth(session, account.id, claim.user_id, claim.platform, str(exc), now)
        creds = credentials[account.id]
        if isinstance(creds, str):
            outcomes[claim.post_id] = review(session, claim, ReviewReason.NEEDS_REAUTH, creds, now)
            continue
        ready.append(Ready(claim, publisher, creds, post_ref(claim, language, visibility)))
    # Only posts with an image cost a query (a text-only batch none: the claim returned it).
    needs = media_needs(session, [(item.claim.post_id, item.creds.account_id) for item in ready
                                  if item.claim.media_id is not None], now)
    if needs:
        ready = [replace(item, media=needs.get(item.claim.post_id)) for item in ready]
    return ready


def post_ref(claim: Claim, language: str | None, visibility: str | None) -> PostRef:
    """What a platform with a repeatable create derives its key from, and the author's choices."""
    return PostRef(claim.post_id, claim.scheduled_at, language or "en", visibility or "public")


def _accounts_of(session: Session, claims: Sequence[Claim]
                 ) -> dict[tuple[int, str], tuple[PlatformAccount, str, str]]:
    """Each (user, platform)'s account with the user's language and post visibility, in one query."""
    pairs = sorted({(claim.user_id, claim.platform) for claim in claims})
    if not pairs:
        return {}
    rows = session.execute(
        select(PlatformAccount, UserSettings.language, UserSettings.post_visibility)
        .outerjoin(UserSettings, UserSettings.user_id == PlatformAccount.user_id)
        .where(tuple_(PlatformAccount.user_id, PlatformAccount.platform).in_(pairs))).all()
    return {(account.user_id, account.platform): (account, language, visibility)
            for account, language, visibility in rows}


def _call(runtime: Runtime, ready: Ready, now: datetime) -> Attempt:
    """Refresh an expiring token, publish, and classify what happened. Touches no transaction
    of the caller's (a refresh stores its tokens in its own, under the account's row lock)."""
    claim, publisher, creds = ready.claim, ready.publisher, ready.creds
    try:
        refreshed = False
        if (creds.refresh_token and creds.expires_at is not None
                and creds.expires_at <= now + DEFAULT_REFRESH_MARGIN):
            creds = refresh_tokens(runtime, publisher, creds)
            refreshed = True
        media = ([ensure_uploaded(runtime, publisher, creds, claim.platform, ready.media)]
                 if ready.media is not None else [])
        result = _publish_refreshing_once(runtime, publisher, creds, claim.text, ready.ref, media,
                                          may_refresh=not refreshed)
    except NOT_SENT as exc:
        return Attempt(ready, runtime.now(), creds.account_id, not_sent=exc)
    except Exception as exc:  # noqa: BLE001 - OutcomeUnknown, or unclassified: may have been sent
        logger.warning("post %s: outcome unknown after %s; reconciling", claim.post_id, describe(exc))
        found, note = look_for(publisher, creds, claim, ready.ref, runtime.now(),
                               runtime.settings.stale_grace_minutes)
        return Attempt(ready, runtime.now(), creds.account_id, result=found, unknown=f"{describe(exc)}; {note}")
    return Attempt(ready, runtime.now(), creds.account_id, result=result)


def _record(runtime: Runtime, attempts: Sequence[Attempt], now: datetime,
            outcomes: dict[int, PublishOutcome]) -> None:
    """Write what the calls came to: the successes together, each failure in its own transaction
    (one post's unexpected error cannot undo another's record)."""
    created = [a for a in attempts if a.result is not None and a.unknown is None]
    if created:
        with runtime.session_factory() as session, session.begin():
            outcomes.update(record_published_many(
                session, [(a.ready.claim, a.result, a.finished_at) for a in created if a.result is not None]))
    for attempt in attempts:
        if attempt.result is not None and attempt.unknown is None:
            continue
        claim = attempt.ready.claim
        with runtime.session_factory() as session, session.begin():
            if attempt.not_sent is not None:
                outcomes[claim.post_id] = not_sent(runtime, session, claim, attempt.account_id,
                                                    attempt.not_sent, now)
            elif attempt.result is not None:
                outcomes[claim.post_id] = record_published(session, claim, attempt.result, attempt.finished_at,
                                                           action="post.reconciled", error=attempt.unknown)
            else:
                outcomes[claim.post_id] = review(session, claim, ReviewReason.OUTCOME_UNKNOWN,
                                                 attempt.unknown or "outcome unknown", now)


def look_for(publisher: Publisher, creds: AccountCredentials, claim: Claim, ref: PostRef, now: datetime,
             grace_minutes: int) -> tuple[PublishResult | None, str]:
    """Settle an unknown outcome with the platform. Returns (found, note).

    Where the platform recognises a repeated create (its registry entry's
    ``repeat_create_safe_for``, counted from this attempt's start) and the post is not yet
    stale, the create is repeated: the platform answers with the post the first one made, or
    makes it now, once. Otherwise (X, LinkedIn; a Mastodon key older than its hour; a stale
    post) the platform is only asked whether the post exists: nothing is published.
    """
    entry = PLATFORMS.get(claim.platform)
    window = entry.repeat_create_safe_for if entry is not None else None
    if window is not None and now < claim.started_at + window and now <= stale_at(claim.scheduled_at, grace_minutes):
        try:
            repeated = publisher.publish(creds, claim.text, ref)
        except Exception as exc:  # noqa: BLE001 - fall back to looking, as for any platform
            logger.warning("post %s: repeating the create failed (%s); looking instead", claim.post_id, describe(exc))
        else:
            return repeated, f"the repeated create on {claim.platform} returned {repeated.external_id}"
    since = claim.started_at - DEFAULT_RECONCILE_SLACK
    try:
        found = publisher.find_published(creds, claim.text, since, ref)
    except NotImplementedError as exc:
        why = f": {exc}" if str(exc) else ""
        return None, f"{claim.platform} offers no way to check whether it was published{why}"
    except Exception as exc:  # noqa: BLE001 - a failed check is an unknown outcome, not a crash
        return None, f"checking whether it was published failed: {describe(exc)}"
    if found is None:
        return None, f"not found on {claim.platform} since {since.isoformat()}"
    return found, f"found on {claim.platform} as {found.external_id}"


def _publish_refreshing_once(runtime: Runtime, publisher: Publisher, creds: AccountCredentials,
                             text: str, ref: PostRef, media: Sequence[UploadedMedia] = (), *,
                             may_refresh: bool) -> PublishResult:
    """Publish; on a refused token refresh it once and publish again within the same claim.

    A 401 means nothing was created, so the second call cannot duplicate the post. A text-only
    post is published without the ``media`` argument (publishers predating images take none).
    """
    def create(account: AccountCredentials) -> PublishResult:
        return publisher.publish(account, text, ref, media) if media else publisher.publish(account, text, ref)

    try:
        return create(creds)
    except AuthError:
        if not (may_refresh and creds.refresh_token):
            raise
    return create(refresh_tokens(runtime, publisher, creds))
