"""Secrets out of anything an operator is shown: message arguments and failure texts.

Message arguments are ids by design (Dramatiq's advice: actors take ids, not objects), but a
publish message carries its claim token, and a traceback can quote a header or a URL with a
key in it. Masking is by name (a parameter or key that names a secret) and by shape (bearer
tokens, ``key=value`` pairs with a secret-sounding key, long random-looking strings).
"""

from __future__ import annotations

import re
from typing import Any

#: What a masked value is shown as.
MASK = "***"

_SECRET_NAME = re.compile(r"token|secret|password|passwd|api[_-]?key|authorization|credential|cookie|dsn",
                          re.IGNORECASE)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
_PAIR = re.compile(
    r"(?i)([\"']?\b[\w-]*(?:token|secret|password|passwd|api[_-]?key|authorization|credential)[\w-]*[\"']?"
    r"\s*[:=]\s*[\"']?)([^\s\"',;&}]+)")
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)([^@\s]+)(@)")
#: A string this long made only of token characters, with letters and digits, looks like a key.
_RANDOM = re.compile(r"^(?=.*[A-Za-z])(?=.*\d)[A-Za-z0-9._~+/=-]{24,}$")


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def mask_text(text: str) -> str:
    """``text`` with bearer tokens, ``secret=...`` pairs and URL passwords replaced by ***."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    return _PAIR.sub(lambda m: f"{m.group(1)}{MASK}", text)


def mask_value(value: Any, name: str = "") -> Any:
    """A JSON-like value with secrets masked: by its name, then by its shape, recursively."""
    if name and is_secret_name(name):
        return MASK
    if isinstance(value, dict):
        return {k: mask_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v) for v in value]
    if isinstance(value, str):
        if _RANDOM.match(value) and not _looks_like_instant(value):
            return MASK
        return mask_text(value)
    return value


def _looks_like_instant(value: str) -> bool:
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value))


def mask_arguments(args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any],
                   names: list[str] | None = None) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments with secrets masked; ``names`` are the parameters' names."""
    names = names or []
    masked_args = [mask_value(v, names[i] if i < len(names) else "") for i, v in enumerate(args)]
    return masked_args, {k: mask_value(v, k) for k, v in kwargs.items()}
