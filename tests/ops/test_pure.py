"""Pure pieces of the operations tools: percentiles, masking, windows, Sentinel URLs, settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.cli.ops import parse_window
from app.config import Settings
from app.errors import AutopilotError, ConfigError, InvalidValue, ValidationError
from app.ops.masking import MASK, mask_arguments, mask_text, mask_value
from app.ops.stats import percentile
from app.redisconn import SentinelTarget, parse_sentinel_url


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([], 50, None),
    ([7], 99, 7),
    ([1, 2, 3, 4], 50, 2.5),
    ([4, 1, 3, 2], 0, 1),
    ([4, 1, 3, 2], 100, 4),
    (list(range(1, 101)), 99, 99.01),
])
def test_percentile_interpolates_between_ranks(values, q, expected):
    result = percentile(values, q)
    assert result == (None if expected is None else pytest.approx(expected))


def test_percentile_refuses_out_of_range_with_one_of_the_projects_errors():
    with pytest.raises(InvalidValue, match="percentile 101 outside 0-100") as refused:
        percentile([1], 101)
    assert isinstance(refused.value, AutopilotError) and isinstance(refused.value, ValueError)


def test_masking_by_name_shape_and_text():
    args, kwargs = mask_arguments([42, "abc", "2026-11-27T09:00:00+00:00"],
                                  {"access_token": "x", "note": "Bearer abc.def.ghi", "n": 3},
                                  ["post_id", "claim_token", "due_at"])
    assert args == [42, MASK, "2026-11-27T09:00:00+00:00"]
    assert kwargs == {"access_token": MASK, "note": f"Bearer {MASK}", "n": 3}
    assert mask_value("sk-proj-AbC123dEf456GhI789jKl012") == MASK
    assert mask_value("a plain sentence stays") == "a plain sentence stays"
    text = mask_text("POST https://u:hunter2@api.example/x failed: api_key=abc123 password: 'p4ss'")
    assert "hunter2" not in text and "abc123" not in text and "p4ss" not in text
    assert "api_key=***" in text


@pytest.mark.parametrize(("text", "expected"), [
    ("90m", timedelta(minutes=90)), ("24h", timedelta(hours=24)), ("7d", timedelta(days=7)),
    ("2w", timedelta(weeks=2))])
def test_windows(text, expected):
    assert parse_window("--since", text) == expected


@pytest.mark.parametrize("text", ["", "24", "0h", "-1h", "1y", "h"])
def test_bad_windows_name_the_option(text):
    with pytest.raises(ValidationError, match="--since"):
        parse_window("--since", text)


def test_sentinel_url_form():
    assert parse_sentinel_url("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/mymaster/2") == \
        SentinelTarget((("10.0.0.1", 26379), ("10.0.0.2", 26380)), "mymaster", 2, "s3cret")
    assert parse_sentinel_url("redis+sentinel://h:26379/m").db == 0


@pytest.mark.parametrize(("url", "reason"), [
    ("redis+sentinel://h:26379", "no master name"),
    ("redis+sentinel://h/m", "not host:port"),
    ("redis+sentinel://h:26379/m/x", "/master_name/db"),
    ("redis+sentinel://:pw@h:99999/m", "not host:port"),
])
def test_bad_sentinel_urls_name_the_variable_and_hide_the_password(url, reason):
    with pytest.raises(ConfigError, match=reason) as info:
        Settings.from_env({"REDIS_URL": url})
    assert info.value.variable == "REDIS_URL" and "pw" not in str(info.value)


@pytest.mark.parametrize(("env", "variable"), [
    ({"OPS_QUEUE_DEPTH_MAX": "0"}, "OPS_QUEUE_DEPTH_MAX"),
    ({"OPS_QUEUE_DEPTH_MAX": "many"}, "OPS_QUEUE_DEPTH_MAX"),
    ({"OPS_MIN_SUCCESS_RATE": "120"}, "OPS_MIN_SUCCESS_RATE"),
    ({"OPS_SCHEDULER_SILENCE_SECONDS": "-5"}, "OPS_SCHEDULER_SILENCE_SECONDS"),
    ({"DRAMATIQ_PROMETHEUS": "maybe"}, "DRAMATIQ_PROMETHEUS"),
    ({"DATABASE_REPLICA_URL": "mysql://x/y"}, "DATABASE_REPLICA_URL"),
    ({"DATABASE_REPLICA_URL": "postgresql://r/db"}, "DATABASE_REPLICA_URL"),  # primary is SQLite
])
def test_bad_operations_settings_are_refused_by_name(env, variable):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.variable == variable


def test_operations_settings_are_read():
    settings = Settings.from_env({"OPS_QUEUE_DEPTH_MAX": "250", "OPS_MIN_SUCCESS_RATE": "99",
                                  "OPS_SCHEDULER_SILENCE_SECONDS": "300", "DRAMATIQ_PROMETHEUS": "true"})
    assert (settings.ops_queue_depth_max, settings.ops_min_success_rate,
            settings.ops_scheduler_silence_seconds, settings.dramatiq_prometheus) == (250, 99, 300, True)


def test_probe_process_and_http_and_usage(tmp_path):
    from app.ops import probe

    assert probe.main(["process", "pytest"]) == 0
    assert probe.main(["process", "no-such-program-here"]) == 1
    assert probe.main(["http", "http://127.0.0.1:1/healthz"]) == 1
    assert probe.main(["nonsense"]) == 2


def test_dramatiq_prometheus_middleware_is_opt_in(redis_url):
    from dramatiq.middleware.prometheus import Prometheus

    from actors import observers
    from app.broker import build_broker
    from app.ops.failures import FailureNotes
    from app.ops.workers import WorkerRegistry

    def worker_broker(settings: Settings):
        first, last = observers(settings)
        return build_broker(settings, first=first, last=last)

    plain = worker_broker(Settings(redis_url=redis_url))
    opted = worker_broker(Settings(redis_url=redis_url, dramatiq_prometheus=True))
    try:
        assert not any(isinstance(m, Prometheus) for m in plain.middleware)
        assert any(isinstance(m, Prometheus) for m in opted.middleware)
        # FailureNotes first: Dramatiq runs "after" hooks in reverse, so it sees Retries' verdict.
        assert isinstance(plain.middleware[0], FailureNotes)
        assert any(isinstance(m, WorkerRegistry) for m in plain.middleware)
    finally:
        plain.close()
        opted.close()


def test_the_in_process_broker_gets_no_redis_observers():
    from actors import observers

    assert observers(Settings()) == ([], [])
