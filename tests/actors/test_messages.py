"""The actor layer's list of actor names and parameters matches the actors it registers."""

from __future__ import annotations

import inspect

import actors
from actors.messages import ACTOR_PARAMETERS
from app.broker import build_broker
from app.config import Settings


def test_every_registered_actor_is_listed_with_its_positional_parameters():
    broker = build_broker(Settings())
    actors.register(broker, Settings())
    registered = {}
    for name in broker.get_declared_actors():
        parameters = inspect.signature(broker.get_actor(name).fn).parameters.values()
        # The per-user actors bind their step as a default argument: not part of a message.
        registered[name] = tuple(p.name for p in parameters if p.name not in {"step", "name"})
    assert len(registered) >= 8
    assert registered == dict(ACTOR_PARAMETERS)


def test_per_user_actor_names_are_actors_own_and_never_change():
    """A job declares only that it fans out (its per-user step); the actor running that step is
    named here. The names are on every message in flight: an upgrade must keep consuming them."""
    import dataclasses
    from pathlib import Path

    from actors.messages import PER_USER_ACTORS
    from app.jobs.spec import PeriodicJob
    from app.workflows.jobs import JOBS

    assert PER_USER_ACTORS == {"daily_generation": "generate_for_user",
                               "metrics_collection": "collect_metrics_for_user",
                               "weekly_report": "weekly_report_for_user"}
    assert set(PER_USER_ACTORS) == {name for name, job in JOBS.items() if job.per_user is not None}
    assert "per_user_name" not in {f.name for f in dataclasses.fields(PeriodicJob)}
    app_sources = "".join(p.read_text() for p in (Path(__file__).parents[2] / "app").rglob("*.py"))
    assert not [name for name in PER_USER_ACTORS.values() if f'"{name}"' in app_sources]
    broker = build_broker(Settings())
    actors.register(broker, Settings())
    for job, actor in PER_USER_ACTORS.items():
        assert broker.get_actor(actor).queue_name == JOBS[job].queue
