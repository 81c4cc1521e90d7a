"""Settings come from the environment; a malformed value names its variable."""

from __future__ import annotations

import pytest

from app.config import DEFAULT_DATABASE_URL, Settings
from app.crypto import generate_key
from app.errors import ConfigError


def test_defaults_run_embedded():
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.redis_url is None
    assert settings.openai_api_key is None and settings.serper_api_key is None  # offline providers


def test_values_are_read_and_typed():
    key = generate_key()
    settings = Settings.from_env({
        "DATABASE_URL": "postgresql://u@db/x", "REDIS_URL": "redis://r:6379/0",
        "TOKEN_ENCRYPTION_KEYS": f"{key}, {generate_key()}", "SMTP_PORT": "2525",
        "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "SMTP_STARTTLS": "false",
    })
    assert settings.token_encryption_keys[0] == key and len(settings.token_encryption_keys) == 2
    assert settings.smtp_port == 2525 and settings.smtp_starttls is False
    assert key not in repr(settings)


@pytest.mark.parametrize(("variable", "value"), [
    ("DATABASE_URL", "mysql://x/y"),
    ("REDIS_URL", "localhost:6379"),
    ("OPENAI_BASE_URL", "not a url"),
    ("SERPER_BASE_URL", "ftp://x"),
    ("X_API_BASE_URL", "http://"),
    ("LINKEDIN_API_BASE_URL", "linkedin"),
    ("TOKEN_ENCRYPTION_KEYS", "short"),
    ("SMTP_PORT", "twenty"),
    ("SMTP_STARTTLS", "perhaps"),
    ("STALE_GRACE_MINUTES", "0"),
    ("LINKEDIN_VERSION", "2025-10"),
    ("SENTRY_DSN", "nope"),
])
def test_malformed_value_fails_naming_the_variable(variable, value):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)


def test_password_in_url_is_not_echoed():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"REDIS_URL": "http://user:hunter2@host/"})
    assert "hunter2" not in str(caught.value)


def test_production_database_requires_real_encryption_keys():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"DATABASE_URL": "postgresql://u@db/x"})
    assert caught.value.variable == "TOKEN_ENCRYPTION_KEYS"
    Settings.from_env({"DATABASE_URL": "postgresql://u@db/x", "TOKEN_ENCRYPTION_KEYS": generate_key()})


def test_an_invalid_value_is_one_of_the_projects_errors_and_still_a_value_error():
    from app.errors import AutopilotError, InvalidValue
    from app.scheduling import parse_hhmm

    with pytest.raises(InvalidValue) as refused:
        parse_hhmm("25:00")
    assert isinstance(refused.value, AutopilotError) and isinstance(refused.value, ValueError)
