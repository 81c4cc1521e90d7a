"""Drive Periodiq's own Scheduler over a simulated period and print every send as JSON.

Run in a subprocess with the host TZ under test:
``TZ=Asia/Tokyo python -m tests.e2e.schedule_probe START END [JOB,JOB...]``.
Periodiq's ``pendulum.now()`` is replaced by a simulated clock that, like the real one, answers
in the process's local time zone (so the UTC pinning is what is under test); alarm, sleep and
signal are replaced so that each ``Scheduler.schedule()`` call records the delay it would have
slept, and the clock jumps by it.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import pendulum
import periodiq


def simulate(start: pendulum.DateTime, end: pendulum.DateTime, jobs: list[str] | None = None) -> dict[str, list[str]]:
    """Every send of the periodic actors (only ``jobs``, if given) in [start, end)."""
    # What `periodiq actors.entrypoint` imports: the broker from the environment, the schedule
    # pinned to UTC, every actor registered.
    from actors.entrypoint import broker

    periodic = [a for a in broker.actors.values()
                if "periodic" in a.options and (jobs is None or a.actor_name in jobs)]
    sent: dict[str, list[str]] = {a.actor_name: [] for a in periodic}
    waits: list[float] = []

    for actor in periodic:
        actor.send_with_options = (  # type: ignore[method-assign]
            lambda name=actor.actor_name, **options: sent[name].append(options["scheduled_at"]))
    periodiq.sleep = lambda seconds: waits.append(seconds)
    periodiq.alarm = lambda seconds: waits.append(seconds)
    periodiq.signal = lambda *args: None

    clock = {"now": start}

    class SimulatedPendulum:
        """Periodiq's view of pendulum: everything real except the current instant."""

        def __getattr__(self, name: str) -> object:
            return getattr(pendulum, name)

        @staticmethod
        def now(tz: object = None) -> pendulum.DateTime:
            return clock["now"].in_timezone(tz or pendulum.local_timezone())

    periodiq.pendulum = SimulatedPendulum()
    scheduler = periodiq.Scheduler(actors=periodic)
    while clock["now"] < end:
        waits.clear()
        scheduler.schedule()
        clock["now"] = clock["now"] + timedelta(seconds=sum(waits))
    return sent


if __name__ == "__main__":
    start = pendulum.parse(sys.argv[1])
    end = pendulum.parse(sys.argv[2])
    only = sys.argv[3].split(",") if len(sys.argv) > 3 else None
    print(json.dumps(simulate(start, end, only)))
