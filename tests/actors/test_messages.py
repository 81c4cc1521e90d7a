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
