"""Turning a workflow's intents into messages: the one place actor names and arguments are built.

The names and positional parameters of every actor are listed here (:data:`ACTOR_PARAMETERS`)
for whoever reads messages back, such as the dead-letter list, which masks a secret argument by
its parameter's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import dramatiq
from dramatiq.middleware import CurrentMessage

from app.errors import InvalidValue
from app.intents import Intent, PublishPosts, RunSlot, RunUserStep, UploadMedia
from app.ops.stats import PUBLISHING, per_user_row
from app.queues import Queue
from app.workflows.jobs import JOBS

#: Publish messages are sent this many ms before their second: Dramatiq's delayed messages
#: arrive up to ~1.5 s late, so they land early and the actor waits for the exact instant.
PUBLISH_LEAD_MS = 5_000
#: The actor that publishes the posts due at one second: ``publish_posts(post_ids, claim_token, due_at)``.
PUBLISH_ACTOR = "publish_posts"
#: The one-post form sent before batches existed: still worked, so messages in flight across an
#: upgrade are published, never dead-lettered: ``publish_post(post_id, claim_token, due_at)``.
PUBLISH_ONE_ACTOR = "publish_post"
#: The actor uploading the images of just-queued posts ahead of their second: ``upload_post_media(post_ids)``.
UPLOAD_MEDIA_ACTOR = "upload_post_media"
#: The per-user actor of each job that fans out (declares a per-user step), ``actor(execution_id)``,
#: by job name (a new fan-out job adds its line; tests/actors/test_messages.py checks both agree).
#: Never rename one: messages in flight across an upgrade carry these names.
PER_USER_ACTORS: Mapping[str, str] = {
    "daily_generation": "generate_for_user",
    "metrics_collection": "collect_metrics_for_user",
    "weekly_report": "weekly_report_for_user",
}
#: The manual trigger of any job, ``run_job_manually(job, slot)``, and its queue.
MANUAL_ACTOR, MANUAL_QUEUE = "run_job_manually", Queue.LEGACY
#: Each actor's positional parameters, by actor name: the arguments :func:`message_for` builds.
#: A periodic actor is named after its job and takes ``(slot, trigger)``.
ACTOR_PARAMETERS: Mapping[str, tuple[str, ...]] = {
    PUBLISH_ACTOR: ("post_ids", "claim_token", "due_at"),
    PUBLISH_ONE_ACTOR: ("post_id", "claim_token", "due_at"),
    UPLOAD_MEDIA_ACTOR: ("post_ids",),
    MANUAL_ACTOR: ("job", "slot"),
    **{actor: ("execution_id",) for actor in PER_USER_ACTORS.values()},
    **{job: ("slot", "trigger") for job in JOBS},
}


def work_of(actor_name: str, args: Sequence[object]) -> dict[str, object]:
    """What a message is about, by the names operators read on every page: its ``job`` (a
    periodic job, ``<job> per user``, or ``publishing``) and the ids its arguments carry.

    Ids only: a publish message's claim token is a credential of sorts and is left out.
    """
    per_user_jobs = {actor: job for job, actor in PER_USER_ACTORS.items()}
    if actor_name in (PUBLISH_ACTOR, PUBLISH_ONE_ACTOR):
        ids = args[0] if args else None
        post_id = ids[0] if isinstance(ids, list) and len(ids) == 1 else ids if isinstance(ids, int) else None
        return {"job": PUBLISHING, "post_id": post_id, "slot": args[2] if len(args) > 2 else None}
    if actor_name in per_user_jobs:
        return {"job": per_user_row(per_user_jobs[actor_name]), "execution_id": args[0] if args else None}
    if actor_name == MANUAL_ACTOR:
        return {"job": args[0] if args else None, "slot": args[1] if len(args) > 1 else None}
    if actor_name in JOBS:
        return {"job": actor_name, "slot": args[0] if args else None}
    return {"job": actor_name}


def current_message_id() -> str | None:
    message = CurrentMessage.get_current_message()
    return message.message_id if message is not None else None


def current_scheduled_at() -> str | None:
    """The fire time Periodiq stamped on a periodic message, if any."""
    message = CurrentMessage.get_current_message()
    return message.options.get("scheduled_at") if message is not None else None


def message_for(intent: Intent) -> tuple[str, tuple[object, ...], datetime | None, int]:
    """(actor name, arguments, when it should run, how many ms early to deliver it)."""
    if isinstance(intent, PublishPosts):
        return (PUBLISH_ACTOR, (list(intent.post_ids), intent.claim_token, intent.due_at.isoformat()),
                intent.due_at, PUBLISH_LEAD_MS)
    if isinstance(intent, UploadMedia):
        return UPLOAD_MEDIA_ACTOR, (list(intent.post_ids),), None, 0
    if isinstance(intent, RunUserStep):
        return PER_USER_ACTORS[intent.job], (intent.execution_id,), None, 0
    if isinstance(intent, RunSlot):
        return intent.job, (intent.slot.isoformat(), intent.trigger), None, 0
    raise InvalidValue(f"no message for {intent!r}")


def send_manual_run(broker: dramatiq.Broker, job: str, slot: datetime, *,
                    max_retries: int | None = None) -> dramatiq.Message:
    """Enqueue a manual run of ``job`` for ``slot`` on the legacy queue (still once per slot).

    Built as a plain message, so a process that registered no actors (the admin) can send it.
    """
    options = {} if max_retries is None else {"max_retries": max_retries}
    return broker.enqueue(dramatiq.Message(queue_name=MANUAL_QUEUE, actor_name=MANUAL_ACTOR,
                                           args=(job, slot.isoformat()), kwargs={}, options=options))


def send_tick(broker: dramatiq.Broker, job: str, slot: datetime) -> dramatiq.Message:
    """Enqueue ``job``'s periodic message for ``slot``, as Periodiq sends it (benches, tests).

    Built as a plain message, so a process that registered no actors can send it.
    """
    actor_name, args, _, _ = message_for(RunSlot(job, slot, "periodic"))
    return broker.enqueue(dramatiq.Message(queue_name=JOBS[job].queue, actor_name=actor_name, args=args,
                                           kwargs={}, options={}))


def send(intents: Sequence[Intent], now: datetime, *, broker: dramatiq.Broker | None = None) -> int:
    """Send each intent to its actor on ``broker`` (default: the process's); returns how many.

    A publish message's id is its claim token: recovery asks the broker whether the message
    holding a post still exists by that id (:mod:`actors.liveness`).
    """
    broker = broker or dramatiq.get_broker()
    for intent in intents:
        actor_name, args, eta, lead_ms = message_for(intent)
        delay = None
        if eta is not None:
            delay = max(0, int((eta - now).total_seconds() * 1000) - lead_ms) or None
        message = broker.get_actor(actor_name).message_with_options(args=args)
        if isinstance(intent, PublishPosts):
            message = message.copy(message_id=intent.claim_token)
        broker.enqueue(message, delay=delay)
    return len(intents)
