"""The Prometheus exposition of the operations figures (``/metrics`` on the admin app).

A custom collector reads Redis and the database at scrape time, so every admin process (and
every gunicorn worker) exposes the same numbers with no multiprocess bookkeeping. Job figures
are over the last 24 hours (gauges with a ``_24h`` suffix, the window of ``autopilot check``);
publish lateness is a histogram of the posts published in those 24 hours. The alert rules in
README's operations guide map one to one onto ``autopilot check``'s thresholds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import redis
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from app.config import Settings
from app.ops.queues import queue_depths
from app.ops.stats import job_stats, posts_by_status, publishing_stats, scheduler_state, stuck_posts
from app.ops.workers import census
from app.platforms import KNOWN_PLATFORMS
from app.queues import QUEUES

#: Publish lateness histogram buckets, in seconds (punctuality is measured in milliseconds;
#: anything past a minute is a problem, past the stale grace it goes to review instead).
LATENESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
#: The labels of the job series. Not ``job``: Prometheus sets ``job`` (and ``instance``) on
#: every scraped series itself, and would store ours as ``exported_job``.
JOB_LABELS = ["autopilot_job", "queue"]
#: The window of the job and publishing figures.
WINDOW = timedelta(hours=24)


class OperationsCollector(Collector):
    """Collects at scrape time; a failing source yields its ``*_up`` gauge as 0, never an error page."""

    def __init__(self, settings: Settings, client: Callable[[], redis.Redis | None],
                 session_factory: Callable[[], Session], clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.client = client
        self.session_factory = session_factory
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        yield from self._broker()
        yield from self._database(now)

    def _broker(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("autopilot_broker_up", "1 when Redis answered this scrape")
        client = self.client()
        if client is None:
            up.add_metric([], 0)
            yield up
            return
        try:
            depths = queue_depths(client, QUEUES)
            workers = census(client, silence_seconds=self.settings.worker_silence_seconds)
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        families = {
            "waiting": GaugeMetricFamily("autopilot_queue_waiting", "Messages waiting to be fetched",
                                         labels=["queue"]),
            "in_flight": GaugeMetricFamily("autopilot_queue_in_flight",
                                           "Messages fetched by a worker, not acknowledged", labels=["queue"]),
            "delayed": GaugeMetricFamily("autopilot_queue_delayed",
                                         "Delayed messages (mostly held in workers' memory)", labels=["queue"]),
            "dead": GaugeMetricFamily("autopilot_queue_dead", "Dead-lettered messages", labels=["queue"]),
            "depth": GaugeMetricFamily("autopilot_queue_depth", "Waiting + in flight + delayed",
                                       labels=["queue"]),
            "workers": GaugeMetricFamily("autopilot_queue_workers", "Live worker processes consuming the queue",
                                         labels=["queue"]),
        }
        for d in depths:
            for name in ("waiting", "in_flight", "delayed", "dead", "depth"):
                families[name].add_metric([d.queue], getattr(d, name))
            families["workers"].add_metric([d.queue], len(workers.consumers_of(d.queue)))
        yield from families.values()
        yield GaugeMetricFamily("autopilot_workers_live", "Live worker processes (Dramatiq heartbeats)",
                                value=len(workers.live))

    def _database(self, now: datetime) -> Iterator[Metric]:
        up = GaugeMetricFamily("autopilot_database_up", "1 when the database answered this scrape")
        try:
            with self.session_factory() as session:
                scheduler = scheduler_state(session, now)
                jobs = job_stats(session, now - WINDOW, now)
                publishing = publishing_stats(session, now - WINDOW, now)
                statuses = posts_by_status(session)
                stuck = stuck_posts(session, now)
        except Exception:  # noqa: BLE001 - a scrape must report the outage, not crash
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        last = GaugeMetricFamily("autopilot_scheduler_last_run_timestamp_seconds",
                                 "When the minute job last ran (0: never)")
        last.add_metric([], scheduler.last_run.timestamp() if scheduler.last_run else 0)
        yield last
        runs = GaugeMetricFamily("autopilot_job_runs_24h", "Runs started in the last 24 h", labels=JOB_LABELS)
        failures = GaugeMetricFamily("autopilot_job_failures_24h", "Runs failed in the last 24 h",
                                     labels=JOB_LABELS)
        over = GaugeMetricFamily("autopilot_job_over_time_limit_24h", "Runs over their time limit in 24 h",
                                 labels=JOB_LABELS)
        rate = GaugeMetricFamily("autopilot_job_success_ratio_24h",
                                 "Succeeded / finished runs in the last 24 h (absent when none finished)",
                                 labels=JOB_LABELS)
        for j in jobs:
            runs.add_metric([j.name, j.queue], j.runs)
            failures.add_metric([j.name, j.queue], j.failed)
            over.add_metric([j.name, j.queue], j.over_time_limit)
            if j.success_ratio is not None:
                rate.add_metric([j.name, j.queue], j.success_ratio)
        yield from (runs, failures, over, rate)
        lateness = HistogramMetricFamily("autopilot_publish_lateness_seconds",
                                         "How late posts published in the last 24 h went out", labels=["platform"])
        seen = {p.platform: p.lateness_ms for p in publishing.platforms}
        for platform in sorted(set(KNOWN_PLATFORMS) | set(seen)):  # zeros too: no gaps
            values = [ms / 1000 for ms in seen.get(platform, [])]
            buckets = [(str(b), sum(1 for v in values if v <= b)) for b in LATENESS_BUCKETS]
            buckets.append(("+Inf", len(values)))
            lateness.add_metric([platform], buckets, sum_value=sum(values))
        yield lateness
        posts = GaugeMetricFamily("autopilot_posts", "Posts by status", labels=["status"])
        for status, count in statuses.items():
            posts.add_metric([status], count)
        yield posts
        yield GaugeMetricFamily("autopilot_posts_stuck", "Posts overdue and not published", value=len(stuck))
