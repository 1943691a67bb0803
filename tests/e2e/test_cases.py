"""Cases in a real browser (Debian's Chromium, driven by Playwright) against a live `fraudstream serve`
with API keys on: a card's three alerts become one case, which an analyst opens from the keyboard,
assigns to a colleague by name, comments and closes with one verdict that labels all three; the audit
page shows every step. The queue is saved as the README's screenshot `cases` (FRAUDSTREAM_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from browsers import SignedIn, screenshot
from servers import RunningServer, start_server, stop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_KEY = "fs_e2e_cases_admin_key_0123456789"
WAIT_MS = 30_000
#: The card whose three alerts make the case; the other cards make the rest of the queue.
CARD = "4242-4242-4242-4242"
OTHER_CARDS = ("5555-5555-5555-4444", "4000-0566-5566-5556", "6011-1111-1111-1117")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    """The server, and an analyst's key (alice's) made with `fraudstream keys create`."""
    folder = tmp_path_factory.mktemp("cases")
    running = start_server(folder, api_keys_enabled="true", admin_key=ADMIN_KEY)
    env = {
        **os.environ,
        "FRAUDSTREAM_DATA_DIR": str(folder / "data"),
        "FRAUDSTREAM_CARD_KEY": "test-card-key",
    }
    created = subprocess.run(
        [sys.executable, "-m", "fraudstream", "keys", "create", "alice", "--role", "analyst"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    try:
        yield running, created.stdout.strip().splitlines()[-1]
    finally:
        stop(running)


def _api(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": ADMIN_KEY}, timeout=10)


def _payment(transaction_id: str, user: str, amount: float, card: str, minutes_ago: float) -> dict[str, Any]:
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - minutes_ago * 60))
    return {
        "transaction_id": transaction_id,
        "user_id": user,
        "amount": amount,
        "card_number": card,
        "timestamp": at,
    }


@pytest.fixture(scope="module")
def card_case(server: tuple[RunningServer, str]) -> tuple[str, list[str]]:
    """The three alerts on CARD (by three users) and one or two alerts on each other card; the id of
    CARD's case and its three transactions."""
    running, _ = server
    ours = [
        _payment("case-t1", "user-a", 12_000, CARD, 30),
        _payment("case-t2", "user-b", 25_000, CARD, 20),
        _payment("case-t3", "user-c", 60_000, CARD, 10),
    ]
    others = [
        _payment(f"other-{i}-{j}", f"user-o{i}", 11_000 + 20_000 * i + j, card, 40 - j)
        for i, card in enumerate(OTHER_CARDS)
        for j in range(1 + i % 2)
    ]
    with _api(running) as client:
        answers = client.post("/v1/transactions", json=ours + others).raise_for_status().json()
        assert all(r["is_alert"] for r in answers["results"]), answers
        cases = client.get("/v1/cases", params={"status": "open"}).raise_for_status().json()["items"]
    assert len(cases) == 1 + len(OTHER_CARDS)
    (case,) = [c for c in cases if c["alert_count"] == 3]
    return case["id"], [t["transaction_id"] for t in ours]


def test_a_cards_three_alerts_become_one_case_worked_and_closed_with_one_verdict(
    browser: Any, server: tuple[RunningServer, str], card_case: tuple[str, list[str]]
) -> None:
    running, alice_key = server
    case_id, transaction_ids = card_case
    session = SignedIn(browser, running.url, alice_key)
    try:
        page = session.goto("/ui/cases")
        rows = page.locator("#cases-rows tr[data-index]")
        expect(rows).to_have_count(1 + len(OTHER_CARDS), timeout=WAIT_MS)
        expect(page.locator(f"#cases-rows tr[data-case-id='{case_id}']")).to_contain_text("card ···· 4242")
        ordered = rows.evaluate_all("rows => rows.map(r => r.dataset.caseId)")
        with _api(running) as client:
            listed = client.get("/v1/cases", params={"status": "open,in_review"}).json()["items"]
        assert ordered == [c["id"] for c in listed]  # the API's order: due time, then risk

        # The keyboard flow of the review queue: j/k move, a takes, Enter opens.
        position = ordered.index(case_id)
        for key in ["j"] * position + (["k", "j"] if position else ["j", "k"]):
            page.keyboard.press(key)
        expect(page.locator("#cases-rows tr.selected")).to_have_attribute("data-case-id", case_id)
        page.keyboard.press("a")
        selected = page.locator(f"#cases-rows tr[data-case-id='{case_id}']")
        expect(selected.locator(".status")).to_contain_text("in review", timeout=WAIT_MS)
        expect(selected).to_contain_text("alice")
        screenshot(page, "cases")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/ui/cases/{case_id}")

        expect(page.locator("#case-alerts tbody tr")).to_have_count(3, timeout=WAIT_MS)
        for transaction_id in transaction_ids:
            expect(page.locator("#case-alerts")).to_contain_text(transaction_id)
        page.get_by_label("Assign to").fill("bob")
        page.get_by_role("button", name="Assign").click()
        expect(page.locator("#case-assignee")).to_have_text("bob", timeout=WAIT_MS)
        page.get_by_role("textbox", name="Comment").fill("Customer confirms the card was stolen on Friday.")
        page.get_by_role("button", name="Add comment").click()
        expect(page.locator("#case-comments")).to_contain_text("stolen on Friday", timeout=WAIT_MS)
        page.locator("#case-verdict").select_option("fraud")
        page.locator("#close-note").fill("card stolen")
        page.get_by_role("button", name="Close the case").click()
        expect(page.locator("#case-status")).to_contain_text("closed", timeout=WAIT_MS)
        expect(page.locator("#case-status")).to_contain_text("fraud")

        with _api(running) as client:
            for transaction_id in transaction_ids:
                stored = client.get(f"/v1/transactions/{transaction_id}").raise_for_status().json()
                assert [(label["is_fraud"], label["actor"]) for label in stored["labels"]] == [
                    (True, "alice")
                ]
                assert (stored["alert"]["status"], stored["alert"]["verdict"]) == ("closed", "fraud")
            case = client.get(f"/v1/cases/{case_id}").json()
        assert (case["status"], case["verdict"], case["assignee"]) == ("closed", "fraud", "bob")

        page = session.goto(f"/ui/transactions/{transaction_ids[0]}")  # an alert's page links its case
        page.locator("#alert-case").click()
        page.wait_for_url(f"**/ui/cases/{case_id}")

        page = session.goto(f"/ui/audit?subject={case_id}")
        audit_rows = page.locator("#audit-rows tr[data-action]")
        expect(audit_rows).to_have_count(7, timeout=WAIT_MS)
        actions = audit_rows.evaluate_all("rows => rows.map(r => r.dataset.action)")
        assert actions == [  # newest first: opened with t1, t2 and t3 joined, taken, given to bob, ...
            "close_case", "comment_case", "assign_case", "assign_case", "join_case", "join_case", "open_case",
        ]  # fmt: skip
        expect(audit_rows.first).to_contain_text("alice")
        page.locator("#audit-action").select_option("assign_case")
        expect(audit_rows).to_have_count(2, timeout=WAIT_MS)
        expect(page.locator("#audit-rows")).to_contain_text("assignee: bob")
    finally:
        session.close()
    assert session.errors == [], f"JavaScript console errors: {session.errors}"


def test_an_analyst_reaches_cases_and_audit_from_the_navigation(
    browser: Any, server: tuple[RunningServer, str], card_case: tuple[str, list[str]]
) -> None:
    running, alice_key = server
    session = SignedIn(browser, running.url, alice_key)
    try:
        page = session.goto("/ui/queue")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Cases").click()
        page.wait_for_url(re.compile(r"/ui/cases(\?|$)"))
        expect(page.locator("#cases-rows tr[data-index]").first).to_be_visible(timeout=WAIT_MS)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
        page.wait_for_url(re.compile(r"/ui/audit(\?|$)"))
        expect(page.locator("#audit-rows tr[data-action]").first).to_be_visible(timeout=WAIT_MS)
    finally:
        session.close()
    assert session.errors == [], f"JavaScript console errors: {session.errors}"


def test_an_analyst_snoozes_a_cases_card_from_its_page(
    browser: Any, server: tuple[RunningServer, str], card_case: tuple[str, list[str]]
) -> None:
    running, alice_key = server
    with _api(running) as client:
        cases = client.get("/v1/cases", params={"status": "open"}).raise_for_status().json()["items"]
    other = next(c for c in cases if c["id"] != card_case[0])
    session = SignedIn(browser, running.url, alice_key)
    try:
        page = session.goto(f"/ui/cases/{other['id']}")
        form = page.get_by_role("form", name="Snooze this card")
        expect(form).to_be_visible(timeout=WAIT_MS)
        form.locator("#snooze-days").select_option("7")
        form.locator("#snooze-reason").fill("cardholder travelling")
        form.get_by_role("button", name="Snooze").click()
        expect(page.locator("#toast")).to_contain_text("Snoozed every review for this card", timeout=WAIT_MS)
    finally:
        session.close()
    assert session.errors == [], f"JavaScript console errors: {session.errors}"
    with _api(running) as client:
        (snooze,) = client.get("/v1/snoozes").raise_for_status().json()["items"]
    assert (snooze["entity_kind"], snooze["entity_id"], snooze["rule"]) == ("card", other["entity_id"], None)
    assert (snooze["created_by"], snooze["reason"]) == ("alice", "cardholder travelling")
    days = (snooze["until_ms"] - snooze["created_at_ms"]) / 86_400_000
    assert 6.99 < days < 7.01
