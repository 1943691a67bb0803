"""The drift view in a real browser (Debian's Chromium) against a live `fraudstream serve` whose champion
was trained on simulated traffic and then scored the same traffic with amounts five times as large:
the warning banner, the PSI table with statuses, the daily charts, and the overview's warning. Saves
the README's screenshot `drift`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from browsers import screenshot
from fraudstream.ml.dataset import load_history
from fraudstream.ml.registry import Registry
from fraudstream.ml.train import train
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import records_for_http, write_table
from labelled_traffic import send_in_order
from servers import RunningServer, start_server, stop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAY = 86_400_000
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def drifted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose champion learned from 2,400 simulated transactions, which then scored them again
    in order with their labels, the last 1,200 with five times their amount."""
    folder = tmp_path_factory.mktemp("drift-e2e")
    table = simulate(SimulationConfig(count=2_400, seed=29, fraud_rate=0.03, duration_ms=4 * DAY))
    write_table(table, folder / "history.parquet")
    history = load_history(folder / "history.parquet")
    model, _ = train(history, "logistic", train_from_ms=None, train_to_ms=None, label_delay_ms=DAY)
    registry = Registry(folder / "models")
    registry.save(model)
    registry.promote(model.metadata.version)
    server = start_server(
        folder / "server", registry_dir=str(folder / "models"), card_key="training", label_delay="1d"
    )
    records = records_for_http(table)
    shifted = records[:1_200] + [{**r, "amount": round(float(r["amount"]) * 5, 2)} for r in records[1_200:]]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        send_in_order(client, history, shifted, 0, len(shifted))
    yield server
    stop(server)


def test_the_drift_view_warns_and_lists_each_features_psi(
    browser: Any, drifted_server: RunningServer
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    try:
        page.goto(f"{drifted_server.url}/ui/drift")
        banner = page.locator("#drift-banner")
        expect(banner).to_be_visible(timeout=WAIT_MS)
        expect(banner).to_contain_text("Drift warning")
        expect(banner).to_contain_text("amount")
        rows = page.locator("#drift-rows tr[data-feature]")
        expect(rows).to_have_count(25, timeout=WAIT_MS)
        expect(rows.first.locator(".pill")).to_have_text("drifted")
        amount = page.locator('#drift-rows tr[data-feature="amount"]')
        expect(amount.locator(".pill")).to_have_text("drifted")
        expect(amount.locator("svg.bins rect.bin-live.drifted").first).to_be_attached()
        expect(page.locator("#drift-summary")).to_contain_text("2,400 transactions")
        # The daily charts: today's alert rate and its score buckets.
        expect(page.locator("#alert-rate-chart rect.bar-al")).to_have_count(1)
        expect(page.locator("#score-chart rect[class^='score-']").first).to_be_attached()
        page.get_by_role("button", name="Show all").click()
        expect(rows).not_to_have_count(25)
        page.get_by_role("button", name="Show the 25 most drifted").click()
        expect(rows).to_have_count(25)
        expect(page.get_by_role("link", name="Drift")).to_have_attribute("aria-current", "page")
        screenshot(page, "drift")

        page.goto(f"{drifted_server.url}/")
        note = page.locator("#drift-note")
        expect(note).to_be_visible(timeout=WAIT_MS)
        expect(note).to_contain_text("Drift warning")
        note.get_by_role("link", name="See the drift view").click()
        page.wait_for_url(f"{drifted_server.url}/ui/drift")
    finally:
        context.close()
    assert errors == []


def test_the_drift_view_says_why_a_model_without_reference_measures_nothing(
    browser: Any, tmp_path: Path
) -> None:
    server = start_server(tmp_path)  # rules alone
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    try:
        page.goto(f"{server.url}/ui/drift")
        expect(page.locator("#drift-banner")).to_contain_text("no model decides", timeout=WAIT_MS)
        expect(page.locator("#drift-rows")).to_contain_text("no model decides")
        expect(page.locator("#alert-rate-chart svg")).to_be_attached()
    finally:
        context.close()
        stop(server)
    assert errors == []
