"""`autopilot demo` on embedded defaults: a week of posts, all published on time, a report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from app.platforms import reports_impressions


def test_demo_runs_a_simulated_week_with_no_services(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run([sys.executable, "-m", "app", "demo", "--database", str(tmp_path / "demo.db"), "--json"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    rows = {(r["user"], r["platform"]): r for r in data["rows"]}
    # Frequencies per week: ana 7 on each platform, kenji 10, lea 3, sam 7 (02:30 LA, a DST gap
    # on Sunday), noa 5; one user at least on every platform of the registry.
    assert {k: r["posts"] for k, r in rows.items()} == {
        ("ana@demo.example", "twitter"): 7, ("ana@demo.example", "linkedin"): 7,
        ("kenji@demo.example", "linkedin"): 10, ("lea@demo.example", "bluesky"): 3,
        ("sam@demo.example", "mastodon"): 7, ("noa@demo.example", "twitter"): 5}
    for row in rows.values():
        assert row["published"] == row["on_time"] == row["posts"]
        assert row["interactions"] > 0
        # Bluesky and Mastodon report no impressions: 0 stored, no engagement rate, never 0 %.
        if reports_impressions(row["platform"]):
            assert row["impressions"] > 0 and row["engagement"] > 0
        else:
            assert row["impressions"] == 0 and row["engagement"] is None
        # Every demo user has sample images tagged with their topics: each post went out with one.
        assert row["with_image"] == row["posts"]
    media = list((tmp_path / "demo-media").rglob("*.png"))
    assert len(media) >= 2 * len({r[0] for r in rows})  # each sample and its thumbnail, on disk
    assert "offline" in data["providers"]["generation"]
    assert set(data["highlights"]) == {r[0] for r in rows}
