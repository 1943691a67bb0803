"""The Jobs page in a real browser (Debian's Chromium, driven by Playwright) against a live
`fraudstream serve`: the schedule with its next runs, a rescore asked for from the page whose progress
and report show there, and a backtest report run with one button."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from browsers import screenshot
from servers import RunningServer, start_server, stop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WAIT_MS = 60_000
CANDIDATE = """version: 1
rules:
- {code: big, description: big amount, expression: "amount > 500", action: review, weight: 70}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server (keys off: the dashboard's caller is an admin) holding 300 transactions of the last
    days, a tenth of them large, and a stored candidate rule set version."""
    running = start_server(tmp_path_factory.mktemp("jobs-page"), backtest_cron="0 6 * * 1")
    now = int(time.time() * 1000)
    records = [
        {
            "transaction_id": f"j{i}",
            "user_id": f"u{i % 40}",
            "amount": 900.0 if i % 10 == 0 else 20.0 + i % 50,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000 - (300 - i) * 600)),
        }
        for i in range(300)
    ]
    with httpx.Client(base_url=running.url, timeout=30) as client:
        client.post("/v1/transactions", json=records).raise_for_status()
    try:
        yield running
    finally:
        stop(running)


def test_a_rescore_runs_from_the_jobs_page_with_its_progress_and_report(
    browser: Any, server: RunningServer
) -> None:
    # A browser far from UTC: the cron's fire times must still read as the expression says (06:00 UTC).
    context = browser.new_context(
        viewport={"width": 1280, "height": 1000}, timezone_id="America/New_York", locale="en-US"
    )
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(f"{server.url}/ui/jobs")
        backtest_row = page.locator("#schedule-rows tr[data-job='backtest_report']")
        expect(backtest_row).to_contain_text("0 6 * * 1", timeout=WAIT_MS)
        expect(backtest_row).to_contain_text("never")
        expect(backtest_row).to_contain_text("6:00 AM UTC")
        page.locator("#schedule-rows tr[data-job='rescore'] button[data-run]").click()
        form = page.locator("#rescore-form")
        expect(form).to_be_visible()
        page.locator("#rescore-source").select_option("yaml")
        form.locator("textarea[name=rules]").fill(CANDIDATE)
        form.locator("select[name=model]").select_option("none")
        page.locator("#rescore-run").click()
        expect(page.locator("#run-title")).to_contain_text("Rescore run", timeout=WAIT_MS)
        changes = page.locator("#rescore-changes")
        expect(changes).to_contain_text("Decisions that change", timeout=WAIT_MS)
        expect(page.locator("#rescore-rules")).to_contain_text("big")
        first_run = page.locator("#runs-rows tr").first
        expect(first_run).to_contain_text("done")
        expect(first_run.locator("progress")).to_have_attribute("value", "1")
        run_id = first_run.get_attribute("data-run-id")
        report = httpx.get(f"{server.url}/v1/jobs/{run_id}", timeout=10).json()["result"]
        gained = report["changes"]["alerts_gained"]
        assert gained > 0  # 900.0 > 500: the candidate flags what the default rules let through
        expect(changes).to_contain_text(f"Alerts gained{gained} (")
        expect(page.locator("#toast")).to_be_hidden(timeout=WAIT_MS)  # "Rescore queued" has faded
        screenshot(page, "jobs", full_page=False)

        backtest_row.locator("button[data-run]").click()
        expect(backtest_row).to_contain_text("done", timeout=WAIT_MS)
        page.locator("#runs-rows tr", has_text="Backtest report").first.click()
        expect(page.locator("#backtest-rules")).to_contain_text("amount_spike", timeout=WAIT_MS)
        assert errors == []
    finally:
        context.close()
