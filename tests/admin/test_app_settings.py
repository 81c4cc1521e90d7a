"""The admin resolves its settings once and every part of it reads that one object."""

from __future__ import annotations

from admin import create_app
from admin.ext import EXTENSION_KEY
from app.config import Settings


def test_the_test_config_urls_are_the_settings_every_part_reads(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    app = create_app({"SECRET_KEY": "k", "DATABASE_URL": url, "REDIS_URL": "redis://127.0.0.1:1/5"})
    extension = app.extensions[EXTENSION_KEY]
    try:
        assert extension.settings.database_url == url == str(extension.engine.url)
        assert extension.settings.redis_url == "redis://127.0.0.1:1/5"
        assert extension.read_sessions is extension.session_factory  # no replica configured
    finally:
        extension.engine.dispose()


def test_given_settings_are_kept_whole_with_the_config_urls_over_them(tmp_path):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    given = Settings(worker_silence_seconds=2, redis_url="redis://127.0.0.1:1/6")
    app = create_app({"SECRET_KEY": "k", "DATABASE_URL": url, "AUTOPILOT_SETTINGS": given})
    extension = app.extensions[EXTENSION_KEY]
    try:
        assert extension.settings.worker_silence_seconds == 2
        assert extension.settings.redis_url == "redis://127.0.0.1:1/6"
        assert extension.settings.database_url == url
    finally:
        extension.engine.dispose()
