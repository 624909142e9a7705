"""Browser tests: a real headless Chromium (Debian's ``chromium`` package, found on PATH or
in ``IMAS_TEST_CHROMIUM``) driven by Playwright for Python through ``executable_path``;
Playwright never downloads a browser. Skipped, with the reason, when no Chromium binary
exists (``.ci/run`` installs it).

Every page talks to the IMAS server under test on 127.0.0.1 only: a route guard aborts
any other request and the tests assert that none was attempted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from handlers.server import Server
from storage import auth
from tests.scenario.conftest import HANG_GUARD_SECONDS

PASSWORD = "correct horse battery"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# A hang guard for the browser's own waits, not a speed requirement.
WAIT_MS = HANG_GUARD_SECONDS * 1000


def chromium_binary() -> str | None:
    configured = os.environ.get("IMAS_TEST_CHROMIUM_PATH")
    if configured and os.path.exists(configured):
        return configured
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_binary()
    if executable is None:
        pytest.skip("no Chromium binary (install Debian's chromium package; .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox",  # CI containers run as root
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


@dataclass
class Web:
    """One signed-out browser context against ``server``, with the off-host request log."""

    server: Server
    context: Any
    page: Any
    blocked: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def sign_in(self, username: str, then: str = "/dashboard/") -> None:
        self.page.goto(self.url(then))
        self.page.wait_for_url("**/dashboard/login/**")
        self.page.fill("#username", username)
        self.page.fill("#password", PASSWORD)
        self.page.click("button[type=submit]:has-text('Sign in')")
        self.page.wait_for_url(self.url(then))


@pytest.fixture
def web(browser: Any) -> Iterator[Callable[[Server], Web]]:
    """``web(server)``: a fresh browser context (its own cookies) on ``server``."""
    made: list[Web] = []

    def make(server: Server) -> Web:
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        context.set_default_timeout(WAIT_MS)
        item = Web(server=server, context=context, page=None)

        def guard(route: Any) -> None:
            host = urlsplit(route.request.url).hostname
            if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
                route.continue_()
            else:
                item.blocked.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        item.page = context.new_page()
        made.append(item)
        return item

    yield make
    for item in made:
        item.context.close()
        assert item.blocked == [], f"requests off the loopback: {item.blocked}"


def add_users(server: Server, **roles: str) -> None:
    """Create local users (``name=role``) as ``imas user create`` does."""
    with server.rt.transaction() as session:
        for name, role in roles.items():
            auth.create_user(session, username=name, password=PASSWORD, role=role)
