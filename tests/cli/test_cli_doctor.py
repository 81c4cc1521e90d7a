"""``autopilot doctor`` against the local fakes of Serper, OpenAI, X and LinkedIn."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from app.crypto import generate_key
from tests.cli import autopilot
from tests.fakes import openai as fake_openai
from tests.fakes import serper as fake_serper
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.openai import FakeOpenAI
from tests.fakes.serper import FakeSerper
from tests.fakes.x import FakeX


def months_ago(months: int) -> str:
    """A LinkedIn-Version released ``months`` before this month (by the real clock, which the
    doctor's process also reads; ages are compared with a margin of months, not days)."""
    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1 - months
    return f"{index // 12}{index % 12 + 1:02d}"


def statuses(result) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {c["check"]: (c["status"], c["detail"]) for c in json.loads(result.stdout)["checks"]}


def test_doctor_checks_every_configured_provider(sqlite_url):
    with FakeSerper() as serper, FakeOpenAI() as openai, FakeX() as x, FakeLinkedIn() as linkedin:
        env = {
            "TOKEN_ENCRYPTION_KEYS": generate_key(),
            "SERPER_API_KEY": fake_serper.DEFAULT_API_KEY, "SERPER_BASE_URL": serper.url,
            "OPENAI_API_KEY": fake_openai.DEFAULT_API_KEY, "OPENAI_BASE_URL": openai.url,
            "OPENAI_MODEL": fake_openai.DEFAULT_MODEL,
            "X_CLIENT_ID": x.client_id, "X_API_BASE_URL": x.base_url,
            "LINKEDIN_CLIENT_ID": linkedin.client_id, "LINKEDIN_CLIENT_SECRET": linkedin.client_secret,
            "LINKEDIN_API_BASE_URL": linkedin.base_url, "LINKEDIN_OAUTH_BASE_URL": linkedin.base_url,
            "LINKEDIN_VERSION": months_ago(1),
        }
        assert autopilot(sqlite_url, "users", "create", "a@example.com", extra_env=env).returncode == 0
        for platform, token, handle in (("twitter", x.access_token, "@autopilot_test"),
                                        ("linkedin", linkedin.access_token, "ada")):
            connected = autopilot(sqlite_url, "accounts", "connect", "--user", "a@example.com", "--platform",
                                  platform, "--access-token", token, "--refresh-token", "r", "--handle", handle,
                                  extra_env=env)
            assert connected.returncode == 0, connected.stderr

        healthy = autopilot(sqlite_url, "doctor", "--json", extra_env=env)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        checks = statuses(healthy)
        assert json.loads(healthy.stdout)["healthy"] is True
        assert {k: v[0] for k, v in checks.items()} == {
            "database": "ok", "migrations": "ok", "redis": "offline", "research": "ok", "generation": "ok",
            "images": "offline", "publish:twitter @autopilot_test": "ok", "linkedin version": "ok", "publish:linkedin ada": "ok",
            "publish:bluesky": "offline", "publish:mastodon": "offline"}
        assert "output mode json_schema" in checks["generation"][1]
        assert "autopilot_test" in checks["publish:twitter @autopilot_test"][1]
        assert linkedin.member_urn in checks["publish:linkedin ada"][1]

        x.revoke_access_token()
        broken = autopilot(sqlite_url, "doctor", extra_env={**env, "OPENAI_API_KEY": "sk-wrong"})
        assert broken.returncode == 1
        flat = " ".join(broken.stdout.split())
        assert "OPENAI_API_KEY rejected" in flat and "401" in flat and "check the key" in flat
        assert "accounts connect" in flat and "unhealthy" in flat


def test_doctor_offline_is_healthy_and_an_unmigrated_database_is_not(tmp_path, sqlite_url):
    offline = autopilot(sqlite_url, "doctor", "--json")
    assert offline.returncode == 0, offline.stdout + offline.stderr
    checks = statuses(offline)
    assert checks["generation"][0] == "offline" and "OPENAI_API_KEY" in checks["generation"][1]
    assert checks["publish:twitter"][0] == "offline" and "X_CLIENT_ID" in checks["publish:twitter"][1]
    assert checks["images"][0] == "offline" and checks["images"][1].startswith("off:")
    assert "OPENAI_IMAGE_MODEL" in checks["images"][1]

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    stale = autopilot(f"sqlite:///{empty}", "doctor", "--json")
    assert stale.returncode == 1
    assert statuses(stale)["migrations"][0] == "error" and "autopilot db upgrade" in statuses(stale)["migrations"][1]


def test_doctor_checks_the_image_model_is_offered_and_names_a_wrong_one(sqlite_url):
    with FakeOpenAI() as openai:
        env = {"OPENAI_API_KEY": fake_openai.DEFAULT_API_KEY, "OPENAI_BASE_URL": openai.url,
               "OPENAI_MODEL": fake_openai.DEFAULT_MODEL}
        unset = autopilot(sqlite_url, "doctor", "--json", extra_env=env)
        served = autopilot(sqlite_url, "doctor", "--json",
                           extra_env={**env, "OPENAI_IMAGE_MODEL": fake_openai.DEFAULT_IMAGE_MODEL})
        wrong = autopilot(sqlite_url, "doctor", "--json", extra_env={**env, "OPENAI_IMAGE_MODEL": "dall-e-9"})
        asked = [r.path for r in openai.server.requests if r.path.startswith("/v1/models")]

    assert unset.returncode == 0, unset.stdout + unset.stderr
    status, detail = statuses(unset)["images"]
    assert status == "offline" and "off:" in detail and "OPENAI_IMAGE_MODEL" in detail

    assert served.returncode == 0, served.stdout + served.stderr
    status, detail = statuses(served)["images"]
    assert status == "ok" and f"image model {fake_openai.DEFAULT_IMAGE_MODEL} available at {openai.url}" in detail

    assert wrong.returncode == 1
    status, detail = statuses(wrong)["images"]
    assert status == "error" and "'dall-e-9' is not served" in detail and detail.endswith("check OPENAI_IMAGE_MODEL")
    assert fake_openai.DEFAULT_IMAGE_MODEL in detail  # what is offered instead
    assert statuses(wrong)["generation"][0] == "ok"
    assert f"/v1/models/{fake_openai.DEFAULT_IMAGE_MODEL}" in asked and "/v1/models/dall-e-9" in asked


def test_doctor_warns_about_a_linkedin_version_near_its_sunset(sqlite_url):
    with FakeLinkedIn() as linkedin:
        env = {"TOKEN_ENCRYPTION_KEYS": generate_key(), "LINKEDIN_CLIENT_ID": linkedin.client_id,
               "LINKEDIN_CLIENT_SECRET": linkedin.client_secret, "LINKEDIN_API_BASE_URL": linkedin.base_url,
               "LINKEDIN_OAUTH_BASE_URL": linkedin.base_url}
        old = autopilot(sqlite_url, "doctor", "--json", extra_env={**env, "LINKEDIN_VERSION": months_ago(12) + ".01"})
        recent = autopilot(sqlite_url, "doctor", "--json", extra_env={**env, "LINKEDIN_VERSION": months_ago(2)})
    assert old.returncode == 0, old.stdout + old.stderr  # a warning, not (yet) unhealthy
    status, detail = statuses(old)["linkedin version"]
    assert status == "warning" and "12 months old" in detail and "sunsets" in detail
    assert statuses(recent)["linkedin version"][0] == "ok"


def test_doctor_reports_a_provider_paused_for_an_operator_problem(sqlite_url):
    from datetime import timedelta

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from app.models import ProviderHold

    now = datetime.now(UTC)
    with Session(create_engine(sqlite_url)) as session, session.begin():
        session.add(ProviderHold(provider="x", kind="x_usage_capped", detail="Usage cap exceeded",
                                 since=now, until=now + timedelta(hours=1)))
    result = autopilot(sqlite_url, "doctor", "--json")
    assert result.returncode == 1
    status, detail = statuses(result)["paused:x"]
    assert status == "error" and "x_usage_capped" in detail and "Usage cap exceeded" in detail
