"""The dashboard's export buttons in a real browser (Debian's Chromium, driven by Playwright) against a
live `fraudstream serve` with API keys on: the file a filtered page downloads reads back (pandas,
pyarrow) to exactly the rows the page's filters select."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from playwright.sync_api import expect

from factories import transaction
from servers import RunningServer, start_server, stop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_KEY = "fs_e2e_exports_admin_key_0123456789"
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("exports-e2e"), api_keys_enabled="true", admin_key=ADMIN_KEY
    )
    # Three users pay small amounts for an hour, then each a large one the default rules flag.
    body = [
        transaction(f"{user}-{i}", user, 20.0 + 3 * i, timestamp=f"2026-11-24T10:{i:02d}:00Z")
        for i in range(0, 60, 4)
        for user in ("ann", "bob", "cid")
    ]
    body += [
        transaction(f"{user}-big", user, 8000.0 + n, timestamp=f"2026-11-24T11:0{n}:00Z")
        for n, user in enumerate(("ann", "bob", "cid"))
    ]
    httpx.post(
        f"{running.url}/v1/transactions", json=body, headers={"X-API-Key": ADMIN_KEY}, timeout=60
    ).raise_for_status()
    try:
        yield running
    finally:
        stop(running)


class Analyst:
    """A page signed in to the dashboard (through its sign-in form) in a context that accepts
    downloads; console errors and uncaught exceptions collected in ``errors``."""

    def __init__(self, browser: Any, url: str) -> None:
        self.url = url
        self.context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.goto(f"{url}/login")
        self.page.get_by_label("API key").fill(ADMIN_KEY)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{url}/")

    def goto(self, path: str) -> Any:
        self.page.goto(f"{self.url}{path}")
        return self.page


@pytest.fixture
def analyst(browser: Any, server: RunningServer) -> Iterator[Analyst]:
    signed_in = Analyst(browser, server.url)
    yield signed_in
    signed_in.context.close()
    assert signed_in.errors == []


def listed(server: RunningServer, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a JSON listing under ``params``."""
    answer = httpx.get(
        f"{server.url}{path}", params={**params, "limit": 500}, headers={"X-API-Key": ADMIN_KEY}, timeout=30
    )
    answer.raise_for_status()
    assert answer.json()["next_cursor"] is None
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def download(page: Any, button: str, folder: Path) -> Path:
    with page.expect_download(timeout=WAIT_MS) as started:
        page.get_by_role("button", name=button).click()
    found = started.value
    assert found.failure() is None
    path = folder / found.suggested_filename
    found.save_as(path)
    return path


def test_a_filtered_transactions_page_exports_exactly_its_rows(
    analyst: Analyst, server: RunningServer, tmp_path: Path
) -> None:
    page = analyst.goto("/ui/transactions")
    page.locator("#filters [name=user]").fill("bob")
    page.locator("#filters [name=min_score]").fill("1")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#tx-rows tr")).to_have_count(1, timeout=WAIT_MS)
    # The filter narrowed the page: bob's one flagged payment. Sorted by amount, then exported.
    page.locator("#filters [name=min_score]").fill("")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#tx-rows tr")).to_have_count(16, timeout=WAIT_MS)
    page.get_by_role("button", name="Sort by amount").click()
    expect(page.locator("#tx-rows tr").first).to_contain_text("bob-big", timeout=WAIT_MS)
    expected = listed(server, "/v1/transactions", user="bob", order="amount_desc")
    assert len(expected) == 16

    csv_path = download(page, "Export CSV", tmp_path)
    assert csv_path.name.startswith("transactions-")
    assert csv_path.suffix == ".csv"
    frame = pd.read_csv(csv_path)
    assert frame["transaction_id"].tolist() == [t["transaction_id"] for t in expected]
    assert frame["amount"].tolist() == [t["amount"] for t in expected]
    assert frame["score"].tolist() == [t["decision"]["score"] for t in expected]
    assert set(frame["user_id"]) == {"bob"}

    parquet_path = download(page, "Export Parquet", tmp_path)
    table = pd.read_parquet(parquet_path)
    assert table["transaction_id"].tolist() == [t["transaction_id"] for t in expected]
    assert table["decision"].tolist() == [t["decision"]["decision"] for t in expected]
    assert [int(t.timestamp() * 1000) for t in table["timestamp"]] == [t["timestamp_ms"] for t in expected]


def test_the_review_queue_exports_its_open_alerts(
    analyst: Analyst, server: RunningServer, tmp_path: Path
) -> None:
    page = analyst.goto("/ui/queue")
    expect(page.locator("#queue-rows tr[data-index]")).to_have_count(3, timeout=WAIT_MS)
    expected = listed(server, "/v1/alerts", status="open,in_review")
    path = download(page, "Export CSV", tmp_path)
    assert path.name.startswith("alerts-")
    frame = pd.read_csv(path)
    assert frame["transaction_id"].tolist() == [a["transaction_id"] for a in expected]
    assert set(frame["status"]) == {"open"}
    parquet = pd.read_parquet(download(page, "Export Parquet", tmp_path))
    assert parquet["transaction_id"].tolist() == frame["transaction_id"].tolist()
