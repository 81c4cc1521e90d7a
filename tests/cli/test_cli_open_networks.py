"""``autopilot accounts connect-app-password`` and ``connect-instance`` against the fakes."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from app.crypto import generate_key
from tests.cli import autopilot
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.mastodon import FakeMastodon


def test_connect_both_open_networks_from_a_terminal(sqlite_url):
    with FakeBluesky() as bluesky, FakeMastodon() as mastodon:
        env = {"TOKEN_ENCRYPTION_KEYS": generate_key(), "BLUESKY_ENABLED": "true",
               "BLUESKY_PDS_URL": bluesky.base_url, "MASTODON_ENABLED": "true"}
        assert autopilot(sqlite_url, "users", "create", "a@example.com", extra_env=env).returncode == 0
        refused = autopilot(sqlite_url, "accounts", "connect-app-password", "--user", "a@example.com",
                            "--handle", "alice.test", extra_env={**env, "AUTOPILOT_APP_PASSWORD": "nope"})
        assert refused.returncode == 2 and "app_password" in refused.stderr
        sky = autopilot(sqlite_url, "accounts", "connect-app-password", "--user", "a@example.com", "--handle",
                        "alice.test", "--json", extra_env={**env, "AUTOPILOT_APP_PASSWORD": "app-pass-1111"})
        assert sky.returncode == 0, sky.stderr
        assert json.loads(sky.stdout)["handle"] == "@alice.test"

        # connect-instance prints the consent address, then waits for the code on stdin: a real
        # process, as the code depends on the address it printed.
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "accounts", "connect-instance", "--user", "a@example.com",
             "--instance", mastodon.base_url, "--json"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={"DATABASE_URL": sqlite_url, "PATH": "/usr/bin:/bin", **env})
        url = ""
        assert process.stderr is not None and process.stdin is not None
        while "oauth/authorize" not in url:
            url = process.stderr.readline()
            assert url, "connect-instance printed no address"
        process.stdin.write(mastodon.approve(url.strip()) + "\n")
        process.stdin.flush()
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert re.match(r"@ada@127\.0\.0\.1:\d+", json.loads(out)["handle"])

        doctor = autopilot(sqlite_url, "doctor", "--json", extra_env=env)
        checks = {c["check"]: c["status"] for c in json.loads(doctor.stdout)["checks"]}
        assert checks["publish:bluesky @alice.test"] == "ok"
        assert checks[[k for k in checks if k.startswith("publish:mastodon @ada")][0]] == "ok"
