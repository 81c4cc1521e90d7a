"""What Prometheus is told is what Prometheus accepts: the scrape's header and body, the README's
configuration and alert rules, checked with prometheus_client's parser and Debian's ``promtool``.

Prometheus 3 refuses a target whose content type it cannot parse (a second ``charset`` made the
target go down), and stores a scraped ``job`` label as ``exported_job``: both are checked here.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from admin import create_app
from admin.ext import EXTENSION_KEY
from tests.ops.seed import seed
from tests.ops_harness import Ops

README = Path(__file__).resolve().parents[2] / "README.md"
COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
#: The exposition format's content type, spelled out: one charset, nothing appended.
EXPECTED_CONTENT_TYPE = b"text/plain; version=1.0.0; charset=utf-8"
#: Labels Prometheus attaches to every scraped series itself.
RESERVED_LABELS = {"job", "instance"}
TOKEN = "a-metrics-token-of-forty-characters-long!"


def readme_block(first_line: str) -> str:
    """The README's fenced yaml block whose first line is ``first_line``."""
    for block in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S):
        if block.splitlines()[0].strip() == first_line:
            return block
    raise AssertionError(f"README has no yaml block starting {first_line!r}")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing (apt-get install prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return path


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture
def app(ops: Ops) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "SECRET_KEY": "prom-test", "DATABASE_URL": ops.settings.database_url,
                      "AUTOPILOT_SETTINGS": ops.settings})
    yield app
    app.extensions[EXTENSION_KEY].engine.dispose()


def scrape(app: Flask, **headers: str) -> tuple[bytes, str]:
    response = app.test_client().get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    raw = [value for name, value in response.headers.items() if name.lower() == "content-type"]
    assert len(raw) == 1, raw
    return raw[0].encode("latin-1"), response.get_data(as_text=True)


def test_metrics_content_type_is_exactly_the_exposition_formats_once(app: Flask, ops: Ops) -> None:
    seed(app, datetime.now(UTC))
    header, body = scrape(app)
    assert header == EXPECTED_CONTENT_TYPE == CONTENT_TYPE_LATEST.encode()
    # Parsed as Prometheus does (Go's mime.ParseMediaType refuses a repeated parameter).
    message = Message()
    message["Content-Type"] = header.decode()
    names = [name.lower() for name, _ in message.get_params()[1:]]
    assert names == ["version", "charset"] and len(set(names)) == len(names)
    families = list(text_string_to_metric_families(body))
    labels = {name for f in families for s in f.samples for name in s.labels}
    assert families and "autopilot_job" in labels
    assert not labels & RESERVED_LABELS, labels & RESERVED_LABELS


def test_promtool_finds_nothing_in_a_scrape(app: Flask, ops: Ops) -> None:
    seed(app, datetime.now(UTC))
    _, body = scrape(app)
    checked = run_promtool("check", "metrics", stdin=body)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == "", checked.stdout + checked.stderr


def test_a_metrics_token_is_required_when_configured(ops: Ops) -> None:
    settings = dataclasses.replace(ops.settings, metrics_bearer_token=TOKEN)
    app = create_app({"TESTING": True, "SECRET_KEY": "prom-test", "DATABASE_URL": ops.settings.database_url,
                      "AUTOPILOT_SETTINGS": settings})
    try:
        client = app.test_client()
        refused = client.get("/metrics")
        assert refused.status_code == 401 and "METRICS_BEARER_TOKEN" in refused.get_data(as_text=True)
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.get("/healthz").status_code == 200  # the orchestrator's probes need no token
    finally:
        app.extensions[EXTENSION_KEY].engine.dispose()


def test_a_short_metrics_token_is_refused_by_name() -> None:
    from app.config import Settings
    from app.errors import ConfigError

    with pytest.raises(ConfigError, match="METRICS_BEARER_TOKEN") as refused:
        Settings.from_env({"METRICS_BEARER_TOKEN": "short"})
    assert "short" not in str(refused.value)  # a secret, even a bad one, is never echoed


def test_the_readme_rules_name_no_reserved_label_of_ours() -> None:
    rules = readme_block("# autopilot-alerts.yml: the rules of `autopilot check`, one for one")
    assert "$labels.job" not in rules and "exported_job" not in rules
    # The one `job=` is Prometheus's own, on its `up` series for the scrape job.
    assert re.findall(r"\bjob=", rules) == ["job="] and 'up{job="autopilot"}' in rules
    assert "$labels.autopilot_job" in rules


def test_promtool_accepts_the_readme_config_and_rules(tmp_path: Path) -> None:
    config = readme_block("# prometheus.yml")
    rules = readme_block("# autopilot-alerts.yml: the rules of `autopilot check`, one for one")
    assert "rule_files: [autopilot-alerts.yml]" in config
    (tmp_path / "autopilot-alerts.yml").write_text(rules)
    token_file = re.search(r"credentials_file: (\S+)\}", config).group(1)  # type: ignore[union-attr]
    local_token = tmp_path / "token"
    local_token.write_text(TOKEN)
    (tmp_path / "prometheus.yml").write_text(config.replace(token_file, str(local_token)))
    checked = run_promtool("check", "rules", str(tmp_path / "autopilot-alerts.yml"))
    assert checked.returncode == 0 and "SUCCESS: 7 rules found" in checked.stdout, checked.stdout + checked.stderr
    checked = run_promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout, checked.stdout


def test_compose_requires_the_metrics_token_on_the_published_admin() -> None:
    text = COMPOSE.read_text()
    admin = text[text.index("\n  admin:"):]
    assert 'ports: ["5000:5000"]' in admin
    assert "METRICS_BEARER_TOKEN: ${METRICS_BEARER_TOKEN:?" in admin
