"""``autopilot doctor`` against the local fakes of Serper, OpenAI, X and LinkedIn."""

from __future__ import annotations

import json
import sqlite3

from app.crypto import generate_key
from tests.cli import autopilot
from tests.fakes import openai as fake_openai
from tests.fakes import serper as fake_serper
from tests.fakes.openai import FakeOpenAI
from tests.fakes.platforms import FakeLinkedIn, FakeX
from tests.fakes.serper import FakeSerper


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
            "publish:twitter @autopilot_test": "ok", "publish:linkedin ada": "ok"}
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

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    stale = autopilot(f"sqlite:///{empty}", "doctor", "--json")
    assert stale.returncode == 1
    assert statuses(stale)["migrations"][0] == "error" and "autopilot db upgrade" in statuses(stale)["migrations"][1]
