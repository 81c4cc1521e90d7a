"""Every error the project raises on purpose is one of its own (:class:`app.errors.AutopilotError`),
so a caller can catch them all in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.errors import AutopilotError, InvalidValue
from app.providers.errors import LookupUnsupported, ModelNotServed, ProviderError

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "actors", "admin", "portal")
#: Built-in exceptions a module must not raise itself: it raises a project error instead (one
#: that is also the built-in where callers catch that, as InvalidValue is a ValueError).
#: TypeError is not among them: it is what ``json.dumps``'s ``default`` hook must raise.
BUILT_INS = frozenset({"Exception", "ValueError", "RuntimeError", "KeyError", "LookupError", "IndexError",
                       "NotImplementedError", "AttributeError", "OSError", "AssertionError"})


def built_in_raises(path: Path) -> list[str]:
    """``file:line name`` of each ``raise BuiltIn(...)`` (or bare ``raise BuiltIn``) in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(raised, ast.Name) and raised.id in BUILT_INS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {raised.id}")
    return found


def test_no_module_raises_a_built_in_exception_of_its_own():
    files = [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 100
    assert [hit for path in files for hit in built_in_raises(path)] == []


@pytest.mark.parametrize(("error", "built_in"), [
    (InvalidValue, ValueError), (LookupUnsupported, NotImplementedError), (ModelNotServed, ProviderError)])
def test_the_errors_callers_catch_as_built_ins_are_still_those(error, built_in):
    assert issubclass(error, AutopilotError) and issubclass(error, built_in)
