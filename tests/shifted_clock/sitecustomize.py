"""Moves this Python process's clock by ``AUTOPILOT_TEST_CLOCK_OFFSET`` seconds, ticking.

Used by ``scripts/shifted-clock-check`` only: that script puts this directory first on
PYTHONPATH, so the test process and every Python process it starts (workers, schedulers,
``python -m app``) read the same shifted wall clock. The offset is fixed once by the script,
so processes started later agree with earlier ones. Monotonic clocks are left alone
(time-machine does not touch them), so timeouts and sleeps behave as usual.
"""

import os

_offset = os.environ.get("AUTOPILOT_TEST_CLOCK_OFFSET")
if _offset:
    import time
    from datetime import UTC, datetime

    import time_machine

    time_machine.travel(datetime.fromtimestamp(time.time() + float(_offset), tz=UTC), tick=True).start()
    # time-machine starts ticking at the first read of the clock, not at start(): read it now,
    # or a process that waits before its first read would lag behind the others by that wait.
    time.time()
