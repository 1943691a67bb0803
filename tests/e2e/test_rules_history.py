"""The Rules page's version history in a real browser (Debian's Chromium, driven by Playwright)
against a live `fraudstream serve`: restoring an earlier version puts its rules back as the next
version, and the next transaction is decided by them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from servers import RunningServer, start_server, stop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WAIT_MS = 30_000
STRICT = """version: 1
rules:
- {code: big, description: big amount, expression: "amount > 1000", action: review, weight: 70}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("rules-history"))
    try:
        yield running
    finally:
        stop(running)


def test_restoring_a_version_from_the_history_puts_its_rules_back_live(
    browser: Any, server: RunningServer
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        strict = client.put("/v1/rules", json={"yaml": STRICT}).raise_for_status().json()["version"]
        lenient = STRICT.replace('"amount > 1000"', '"amount > 5000"')
        client.put("/v1/rules", json={"yaml": lenient}).raise_for_status()
        assert (
            client.post(
                "/v1/transactions", json={"transaction_id": "r1", "user_id": "u1", "amount": 2000}
            ).json()["decision"]
            == "approve"
        )
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{server.url}/ui/rules")
        row = page.locator(f"#versions-rows tr[data-version='{strict}']")
        expect(row).to_be_visible(timeout=WAIT_MS)
        expect(page.locator(f"#versions-rows tr[data-version='{strict + 1}']")).to_contain_text("active")
        row.get_by_role("button", name="Restore this version").click()
        expect(page.locator("#restore-text")).to_contain_text(f"version {strict}")
        page.locator("#restore-ok").click()
        restored = page.locator(f"#versions-rows tr[data-version='{strict + 2}']")
        expect(restored).to_contain_text("active", timeout=WAIT_MS)
        expect(page.locator("#rules-version")).to_have_text(f"version {strict + 2}")
        expect(page.locator("#rules-rows")).to_contain_text("amount > 1000")
        assert errors == []
    finally:
        context.close()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        again = client.post(
            "/v1/transactions", json={"transaction_id": "r2", "user_id": "u2", "amount": 2000}
        ).json()
        assert (again["decision"], again["ruleset_version"]) == ("review", strict + 2)
