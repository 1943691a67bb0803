"""Debian's Chromium driven by Playwright, for the tests that need a real browser (see `browser` in
conftest.py): where it is, where screenshots go, and a page context that may reach only this machine."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
#: docs/screenshots/ (shown in the README) with FRAUDSTREAM_SCREENSHOTS=1 (`make screenshots`), else a
#: temporary folder: a test run leaves the working tree as it was.
SCREENSHOTS = (
    Path(__file__).resolve().parents[1] / "docs" / "screenshots"
    if os.environ.get("FRAUDSTREAM_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "fraudstream-screenshots"
)
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium, Debian's (never one Playwright downloads)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save ``page`` as ``name``.png among the screenshots; the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def offline_context(browser: Any, **options: Any) -> tuple[Any, list[str]]:
    """A browser context whose requests to any other host than this machine are aborted, as if it
    were offline; and the list those requests' URLs are added to, for the test to assert on."""
    context = browser.new_context(**options)
    outside: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname in _LOCAL_HOSTS or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", only_local)
    return context, outside


class SignedIn:
    """A browser page signed in to the dashboard at ``url`` with ``key`` (through the sign-in form),
    recording console errors and uncaught exceptions in ``errors``, for a test to assert empty."""

    def __init__(self, browser: Any, url: str, key: str) -> None:
        self.url = url
        self.context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.goto(f"{url}/")
        assert "/login" in self.page.url, "without a key the dashboard must ask to sign in"
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{url}/")

    def goto(self, path: str) -> Any:
        self.page.goto(f"{self.url}{path}")
        return self.page

    def close(self) -> None:
        self.context.close()
