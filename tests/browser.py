"""Real-browser fixtures for the admin: a live server on PostgreSQL and headless Chromium.

The admin runs under werkzeug's real HTTP server in a thread (127.0.0.1, a free port) against
the run's PostgreSQL database; Playwright for Python drives Debian's ``chromium`` package
(``scripts/ensure-services`` installs it; Playwright's own browser downloads are not used).
Outside CI a missing browser skips these tests; under ``CI=true`` it fails them.

Screenshots go to ``$ADMIN_SCREENSHOT_DIR`` when set, else to a pytest temporary directory;
they are test artefacts, never committed. Import the fixtures into a conftest to use them::

    from tests.browser import admin_server, browser, logged_in_page, screenshots  # noqa: F401
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from admin import create_app
from app.db import make_session_factory
from app.operators import create_operator

#: The screen the admin is checked on (a common laptop), in CSS pixels.
VIEWPORT = {"width": 1366, "height": 768}
#: Where Debian's chromium package puts the browser; ``CHROMIUM_PATH`` overrides it.
DEFAULT_CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
#: The operator every browser test logs in as.
BROWSER_OPERATOR, BROWSER_PASSWORD = "olivia", "a long browser password"
#: Milliseconds a browser action may wait for the page before the test fails.
DEFAULT_TIMEOUT_MS = 10_000


def chromium_path() -> str | None:
    candidates = [os.environ.get("CHROMIUM_PATH", ""), *DEFAULT_CHROMIUM_PATHS, shutil.which("chromium") or ""]
    return next((c for c in candidates if c and os.path.exists(c)), None)


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (under CI a missing browser is a failure; scripts/ensure-services installs it)")
    pytest.skip(message)


@dataclass
class LiveAdmin:
    """A running admin: its base URL and a session factory on its database."""

    url: str
    sessions: sessionmaker[Session]
    app: Any


@pytest.fixture
def admin_server(pg_engine: Engine) -> Iterator[LiveAdmin]:
    """The admin served over real HTTP on the run's (emptied) PostgreSQL, with one operator."""
    app = create_app({
        "SECRET_KEY": "browser-test-secret",
        "DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
        "SESSION_COOKIE_SECURE": False,  # plain http on 127.0.0.1
    })
    sessions = make_session_factory(pg_engine)
    with sessions() as session, session.begin():
        create_operator(session, BROWSER_OPERATOR, BROWSER_PASSWORD, actor="test")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveAdmin(url=f"http://127.0.0.1:{server.server_port}", sessions=sessions, app=app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["autopilot"].engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package) driven by Playwright, shared by the run."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"Playwright is not installed: {exc}")
    path = chromium_path()
    if path is None:
        _unavailable("no chromium binary (apt-get install chromium)")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=path, headless=True)
    except Exception as exc:  # noqa: BLE001 - any launch failure means "no usable browser"
        playwright.stop()
        _unavailable(f"chromium at {path} does not start: {exc}")
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory screenshots are saved in (``$ADMIN_SCREENSHOT_DIR`` or a temporary one)."""
    configured = os.environ.get("ADMIN_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path_factory.mktemp("admin-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def login(page: Any, base_url: str, username: str = BROWSER_OPERATOR, password: str = BROWSER_PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


@pytest.fixture
def browser_context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    yield context
    context.close()


def csp_violations(page: Any) -> list[str]:
    """Console errors of ``page`` about the Content-Security-Policy, collected as they happen.

    Flask-Admin's ``href="javascript:void(0)"`` links are refused by the policy when clicked,
    harmlessly (their click handlers do the work); those reports are left out.
    """
    return [m for m in page.csp_messages if "javascript:" not in m]


def watch_console(page: Any) -> Any:
    """``page``, collecting its Content-Security-Policy console errors for :func:`csp_violations`."""
    page.csp_messages = []
    page.on("console", lambda msg: page.csp_messages.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text else None)
    return page


@pytest.fixture
def logged_in_page(browser_context: Any, admin_server: LiveAdmin) -> Any:
    """A 1366x768 page logged in as :data:`BROWSER_OPERATOR`, on the dashboard.

    ``csp_violations(page)`` lists what the Content-Security-Policy refused on it so far.
    """
    page = browser_context.new_page()
    watch_console(page)
    login(page, admin_server.url)
    page.wait_for_url(f"{admin_server.url}/admin/")
    return page


#: Measures sideways scrolling: of the page, and of any scrollable box in it (Flask-Admin wraps
#: lists in ``.table-responsive``, whose own scroll bar would hide columns just the same).
_OVERFLOW_JS = """() => {
  const root = document.documentElement;
  if (!root || !document.body) return null;  // between two documents: measure again
  let worst = root.scrollWidth - root.clientWidth;
  for (const el of document.querySelectorAll('.table-responsive, table.model-list')) {
    worst = Math.max(worst, el.scrollWidth - el.clientWidth, el.getBoundingClientRect().right - root.clientWidth);
  }
  return Math.ceil(worst);
}"""


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page or a list in it is wider than its box (0: no sideways scrolling).

    Waits for the current document to load first: measured mid-navigation (a click's new page
    not yet parsed) there is no document element to measure."""
    for _ in range(50):
        page.wait_for_load_state("load")
        worst = page.evaluate(_OVERFLOW_JS)
        if worst is not None:
            return max(0, int(worst))
        page.wait_for_timeout(100)
    raise AssertionError(f"{page.url} never finished loading a document to measure")


def shoot(page: Any, directory: Path, name: str) -> Path:
    """Save a full-page screenshot as ``name.png`` and return its path."""
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
