"""The analyst dashboard in a real browser (Debian's Chromium, driven by Playwright) against a live
`fraudstream serve` subprocess with API keys on, two registered models and simulated traffic.

Each test also saves a screenshot of the page it exercised and fails on any JavaScript console error
or uncaught exception. The screenshots go to docs/screenshots/ (shown in the README) with
FRAUDSTREAM_SCREENSHOTS=1 (`make screenshots`), else to a temporary folder: a test run leaves the
working tree as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from browsers import CHROMIUM, SCREENSHOTS, offline_context, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_KEY = "fs_e2e_admin_key_0123456789"
#: How long a page may take to show something. Waits use Playwright's locator assertions, which run in
#: its own isolated script world: the dashboard's Content-Security-Policy forbids eval, which
#: `page.wait_for_function` needs in the page's world.
WAIT_MS = 30_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "fraudstream", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"fraudstream {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Server:
    url: str
    port: int
    data_dir: Path
    env: dict[str, str]
    keys: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    traffic_paused: threading.Event = field(default_factory=threading.Event)
    sent: int = 0

    def start(self) -> None:
        log = (self.data_dir / "server.log").open("ab")
        command = [sys.executable, "-m", "fraudstream", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, (self.data_dir / "server.log").read_text()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not get ready in 60 s"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": ADMIN_KEY}, timeout=10)


def _traffic(server: Server, stop: threading.Event) -> None:
    """A trickle of simulated payments (a few per second) while the tests run, pausable."""
    from fraudstream.sim.generator import SimulationConfig, simulate
    from fraudstream.sim.output import records_for_http

    table = simulate(SimulationConfig(count=4000, seed=11, users=150, fraud_rate=0.05, duration_ms=3_600_000))
    records = records_for_http(table.drop_columns(["is_fraud", "fraud_scenario"]))
    now = time.time()
    for i, record in enumerate(records):
        record["transaction_id"] = f"live-{i}"
        record["timestamp"] = now - 3600 + i * 0.9
    with server.api() as client:
        client.post("/v1/transactions", json=records[:800]).raise_for_status()  # history before the tests
        server.sent = 800
        position = 800
        while not stop.is_set() and position < len(records):
            if not server.traffic_paused.is_set():
                try:
                    client.post("/v1/transactions", json=records[position : position + 3])
                    position += 3
                    server.sent = position
                except httpx.HTTPError:
                    pass  # the server is restarting (reconnect test); try again
            stop.wait(0.5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("dashboard")
    data_dir = root / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDSTREAM_")}
    env.update(
        FRAUDSTREAM_DATA_DIR=str(data_dir),
        FRAUDSTREAM_API_KEYS_ENABLED="true",
        FRAUDSTREAM_ADMIN_KEY=ADMIN_KEY,
        FRAUDSTREAM_CARD_KEY="e2e-card-key-0123456789abcdef",
        FRAUDSTREAM_SNAPSHOT_INTERVAL_S="5",
    )
    # Two registered models: a LightGBM champion and a logistic regression to promote from the page.
    _cli(
        "simulate",
        "--count",
        "12000",
        "--fraud-rate",
        "0.04",
        "--to",
        str(root / "sim.parquet"),
        cwd=root,
        env=env,
    )
    for kind, extra in (("lightgbm", ["--promote"]), ("logistic", [])):
        _cli("train", "--data", str(root / "sim.parquet"), "--model", kind, "--label-delay", "0s",
             "--registry", str(data_dir / "models"), *extra, cwd=root, env=env)  # fmt: skip
    keys = {"admin": ADMIN_KEY}
    for name, role in (("alice", "analyst"), ("victor", "viewer")):
        keys[role] = _cli("keys", "create", name, "--role", role, cwd=root, env=env).strip().splitlines()[-1]
    port = _free_port()
    found = Server(url=f"http://127.0.0.1:{port}", port=port, data_dir=data_dir, env=env, keys=keys)
    found.start()
    stop = threading.Event()
    sender = threading.Thread(target=_traffic, args=(found, stop), daemon=True)
    sender.start()
    deadline = time.monotonic() + 60
    while found.sent < 800:
        assert sender.is_alive(), "the simulated traffic stopped"
        assert time.monotonic() < deadline, "the simulated traffic did not start"
        time.sleep(0.2)
    yield found
    stop.set()
    sender.join(10)
    found.stop()


class Session:
    """A signed-in browser page that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any, server: Server, role: str) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.goto(f"{server.url}/")
        assert "/login" in self.page.url, "without a key the dashboard must ask to sign in"
        self.page.get_by_label("API key").fill(server.keys[role])
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{server.url}/")

    def goto(self, path: str) -> Any:
        self.page.goto(f"{self.server.url}{path}")
        return self.page

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def analyst(browser: Any, server: Server) -> Iterator[Session]:
    session = Session(browser, server, "admin")
    yield session
    session.close()
    assert session.errors == [], f"JavaScript console errors: {session.errors}"


def _stats(server: Server) -> dict[str, Any]:
    with server.api() as client:
        found: dict[str, Any] = client.get("/v1/stats").json()
    return found


def test_sign_in_is_required_and_a_bad_key_is_refused(browser: Any, server: Server) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server.url}/ui/queue")
    assert page.url.startswith(f"{server.url}/login?next=/ui/queue")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "login.png"))
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    assert "not valid" in page.get_by_role("alert").inner_text()
    page.get_by_label("API key").fill(server.keys["analyst"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/ui/queue")
    assert "alice" in page.locator(".user").inner_text()
    context.close()


def test_overview_shows_the_numbers_of_v1_stats(analyst: Session) -> None:
    page = analyst.page
    analyst.server.traffic_paused.set()
    try:
        time.sleep(1.0)  # requests in flight land
        stats = _stats(analyst.server)
        page.reload()
        expected = f"{stats['transactions']:,}"
        expect(page.locator("#kpi-transactions")).to_have_text(expected, timeout=8000)
        assert page.locator("#kpi-alerts").inner_text() == f"{stats['alerts']:,}"
        assert page.locator("#kpi-open").inner_text() == f"{stats['open_alerts']:,} open"
        mix = page.locator("#mix-legend").inner_text()
        for decision, count in stats["decisions"].items():
            assert f"{decision} {count:,}" in mix
        top = page.locator("#top-rules").inner_text()
        for rule in stats["top_rules"][:3]:
            assert rule["rule"] in top
        page.wait_for_selector("#trend-chart svg rect.bar-tx", state="attached")
        page.get_by_role("button", name="10 min").click()
        expect(page.locator("#trend-chart rect.bar-tx")).to_have_count(20, timeout=WAIT_MS)
        page.get_by_role("button", name="1 hour").click()
        assert page.locator("#conn").inner_text() == "live"
        analyst.screenshot("overview")
    finally:
        analyst.server.traffic_paused.clear()


def test_an_alert_sent_through_the_api_appears_in_the_live_feed_within_two_seconds(analyst: Session) -> None:
    page = analyst.page
    expect(page.locator("#conn")).to_have_text("live", timeout=WAIT_MS)
    transaction_id = f"e2e-big-{time.time_ns()}"
    with analyst.server.api() as client:
        started = time.monotonic()
        response = client.post(
            "/v1/transactions",
            json={
                "transaction_id": transaction_id,
                "user_id": "e2e-feed-user",
                "amount": 25_000.0,
                "currency": "USD",
                "location": "New York",
            },
        )
        assert response.status_code == 201, response.text
        assert response.json()["is_alert"], response.text
    card = page.locator(f'#alert-feed [data-transaction-id="{transaction_id}"]')
    card.wait_for(timeout=2000)
    assert time.monotonic() - started < 2.0
    assert "25,000.00" in card.inner_text()
    assert "is over 10,000" in card.inner_text()


def test_the_transactions_table_sorts_and_filters(analyst: Session) -> None:
    page = analyst.goto("/ui/transactions")
    page.wait_for_selector("#tx-rows tr[data-href]")

    def column(attribute: str) -> list[float]:
        return [float(v) for v in page.locator(f"#tx-rows td[data-{attribute}]").evaluate_all(
            f"cells => cells.map(c => c.dataset.{attribute})"
        )]  # fmt: skip

    page.get_by_role("button", name="Sort by amount").click()
    expect(page).to_have_url(re.compile(r"order=amount_desc"), timeout=WAIT_MS)
    page.wait_for_timeout(300)
    amounts = column("amount")
    assert len(amounts) == 25
    assert amounts == sorted(amounts, reverse=True)
    page.get_by_role("button", name="Sort by amount").click()
    expect(page).to_have_url(re.compile(r"order=amount_asc"), timeout=WAIT_MS)
    page.wait_for_timeout(300)
    amounts = column("amount")
    assert amounts == sorted(amounts)
    page.get_by_role("button", name="Sort by score").click()
    expect(page).to_have_url(re.compile(r"order=score_desc"), timeout=WAIT_MS)
    page.wait_for_timeout(300)
    scores = column("score")
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0

    page.get_by_label("Decision").select_option("review")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"decision=review"), timeout=WAIT_MS)
    page.wait_for_timeout(300)
    decisions = page.locator("#tx-rows td .pill").all_inner_texts()
    assert decisions
    assert set(decisions) == {"review"}
    # Human text on hover: each reason tag carries it in its title.
    title = page.locator("#tx-rows .reason").first.get_attribute("title")
    assert title
    assert len(title) > 10
    analyst.screenshot("transactions")

    user = page.locator("#tx-rows tr[data-href] td:nth-child(3)").first.inner_text()
    page.get_by_role("button", name="Clear").click()
    page.get_by_label("User", exact=True).fill(user)
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"\?.*user=" + re.escape(user)), timeout=WAIT_MS)
    page.wait_for_timeout(300)
    users = set(page.locator("#tx-rows tr[data-href] td:nth-child(3)").all_inner_texts())
    assert users == {user}
    page.get_by_role("button", name="Older →").is_disabled()
    page.locator("#tx-rows tr[data-href] td:nth-child(1)").first.click()
    page.wait_for_url(re.compile(r".*/ui/transactions/.+"))
    page.wait_for_selector("#detail-score")


def test_marking_an_alert_as_fraud_closes_it_and_stores_a_label(analyst: Session) -> None:
    with analyst.server.api() as client:
        alert = client.get("/v1/alerts", params={"status": "open", "limit": 1}).json()["items"][0]
    transaction_id = alert["transaction_id"]
    page = analyst.goto(f"/ui/transactions/{transaction_id}")
    page.wait_for_selector("#detail-reasons li")
    assert page.locator("#alert-status").inner_text() == "open"
    analyst.screenshot("transaction")
    page.get_by_label("Note").fill("cardholder denied it on the phone")
    page.get_by_role("button", name="Confirmed fraud").click()
    expect(page.locator("#alert-status")).to_have_text("closed", timeout=8000)
    assert "confirmed fraud" in page.locator("#review-panel").inner_text()
    with analyst.server.api() as client:
        stored = client.get(f"/v1/transactions/{transaction_id}").json()
    assert stored["alert"]["status"] == "closed"
    assert stored["alert"]["verdict"] == "fraud"
    assert [(label["is_fraud"], label["actor"]) for label in stored["labels"]] == [(True, "admin")]
    assert stored["labels"][0]["note"] == "cardholder denied it on the phone"
    assert any(entry["action"] == "review_alert" and entry["actor"] == "admin" for entry in stored["audit"])


def test_the_review_queue_takes_and_closes_alerts_from_the_keyboard(analyst: Session) -> None:
    analyst.server.traffic_paused.set()
    try:
        _work_the_queue(analyst)
    finally:
        analyst.server.traffic_paused.clear()


def _work_the_queue(analyst: Session) -> None:
    page = analyst.goto("/ui/queue")
    page.wait_for_selector("#queue-rows tr[data-index]")
    first = page.locator("#queue-rows tr[data-index]").first
    transaction_id = first.get_attribute("data-transaction-id")
    scores = [int(s) for s in page.locator("#queue-rows td:first-child").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    analyst.screenshot("queue")
    page.keyboard.press("a")
    row = page.locator(f"#queue-rows tr[data-transaction-id='{transaction_id}']")
    expect(row.locator(".status")).to_contain_text("in review", timeout=WAIT_MS)
    with analyst.server.api() as client:
        taken = client.get(f"/v1/transactions/{transaction_id}").json()["alert"]
    assert taken["status"] == "in_review"
    assert taken["assignee"] == "admin"
    page.keyboard.press("l")  # false positive
    expect(row).to_have_count(0, timeout=WAIT_MS)
    with analyst.server.api() as client:
        closed = client.get(f"/v1/transactions/{transaction_id}").json()
    assert closed["alert"]["verdict"] == "legit"
    assert closed["labels"][-1]["is_fraud"] is False


def test_editing_a_rule_shows_errors_inline_backtests_and_saves(analyst: Session) -> None:
    page = analyst.goto("/ui/rules")
    page.wait_for_selector("#rules-rows tr[data-code='large_amount']")
    before = _version(analyst.server)
    page.locator("#rules-rows tr[data-code='large_amount'] button[data-act='edit']").click()
    expression = page.get_by_label("Expression")
    expression.fill("amount >> 10000")
    page.get_by_role("button", name="Validate").click()
    error = page.locator("#rule-error")
    error.wait_for(state="visible")
    text = error.inner_text()
    assert "large_amount" in text, text
    assert "column" in text, text
    assert "^" in text  # the caret under the position
    analyst.screenshot("rules-error")
    assert _version(analyst.server) == before  # nothing changed

    expression.fill("amount > 8000")
    page.get_by_role("button", name="Backtest against history").click()
    page.locator("#backtest-table").wait_for(timeout=30_000)
    assert "Precision at the review threshold" in page.locator("#backtest-result").inner_text()
    analyst.screenshot("rules")
    page.get_by_role("button", name="Save as new version").click()
    expect(page.locator("#rules-version")).to_have_text(f"version {before + 1}", timeout=WAIT_MS)
    with analyst.server.api() as client:
        rules = client.get("/v1/rules").json()
    assert next(r for r in rules["rules"] if r["code"] == "large_amount")["expression"] == "amount > 8000"

    page.locator("#rules-rows tr[data-code='many_countries'] button[data-act='shadow']").click()
    expect(page.locator("#rules-version")).to_have_text(f"version {before + 2}", timeout=WAIT_MS)
    with analyst.server.api() as client:
        rules = client.get("/v1/rules").json()
    assert next(r for r in rules["rules"] if r["code"] == "many_countries")["shadow"] is True


def _version(server: Server) -> int:
    with server.api() as client:
        version: int = client.get("/v1/rules").json()["version"]
    return version


def test_promoting_a_model_asks_first_then_makes_it_the_champion(analyst: Session) -> None:
    page = analyst.goto("/ui/models")
    page.wait_for_selector("#models-rows tr[data-version]")
    with analyst.server.api() as client:
        models = client.get("/v1/models").json()
    challenger = next(m["version"] for m in models["versions"] if m["role"] != "champion")
    assert models["scoring"] == models["champion"] != challenger
    analyst.screenshot("models")
    row = page.locator(f"#models-rows tr[data-version='{challenger}']")
    row.get_by_role("button", name="Promote").click()
    dialog = page.get_by_role("dialog")
    assert challenger in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    with analyst.server.api() as client:
        assert client.get("/v1/models").json()["champion"] != challenger
    row.get_by_role("button", name="Promote").click()
    page.get_by_role("dialog").get_by_role("button", name="Promote").click()
    expect(row).to_contain_text("champion", timeout=WAIT_MS)
    with analyst.server.api() as client:
        after = client.get("/v1/models").json()
    assert after["champion"] == after["scoring"] == challenger


def test_checking_a_transaction_shows_a_verdict_and_stores_nothing(analyst: Session) -> None:
    page = analyst.goto("/ui/check")
    before = _stats(analyst.server)["transactions"]
    analyst.server.traffic_paused.set()
    try:
        time.sleep(1.0)
        before = _stats(analyst.server)["transactions"]
        page.get_by_label("User id").fill("e2e-check-user")
        page.get_by_label("Amount").fill("60000")
        page.get_by_label("Location").fill("Tokyo")
        page.get_by_role("button", name="Check").click()
        page.locator("#check-verdict").wait_for()
        assert "decline" in page.locator("#check-verdict").inner_text()
        assert "is over 50,000" in page.locator("#check-result").inner_text()
        analyst.screenshot("check")
        page.get_by_label("Amount").fill("-5")
        page.get_by_role("button", name="Check").click()
        # The browser's own form validation stops a negative amount before it is sent.
        assert page.get_by_label("Amount").evaluate("el => !el.checkValidity()")
        assert _stats(analyst.server)["transactions"] == before
    finally:
        analyst.server.traffic_paused.clear()


def test_a_viewer_reads_but_gets_no_review_or_admin_controls(browser: Any, server: Server) -> None:
    viewer = Session(browser, server, "viewer")
    try:
        with server.api() as client:
            alert = client.get("/v1/alerts", params={"limit": 1}).json()["items"][0]
        page = viewer.goto(f"/ui/transactions/{alert['transaction_id']}")
        page.wait_for_selector("#detail-reasons li")
        assert page.get_by_role("button", name="Confirmed fraud").count() == 0
        assert "can read but not review" in page.locator("#review-panel").inner_text()
        page = viewer.goto("/ui/rules")
        page.wait_for_selector("#rules-rows tr[data-code]")
        assert page.locator("#rules-rows button").count() == 0
        # The server refuses too, whatever the page shows.
        status = page.evaluate(
            "id => fetch(`/v1/alerts/${id}/review`, {method: 'POST',"
            " headers: {'Content-Type': 'application/json'}, body: JSON.stringify({verdict: 'fraud'})})"
            ".then(r => r.status)",
            alert["transaction_id"],
        )
        assert status == 403
    finally:
        viewer.close()


def test_the_page_reconnects_to_the_alert_stream_after_a_server_restart(browser: Any, server: Server) -> None:
    session = Session(browser, server, "analyst")
    try:
        page = session.page
        connection = page.locator("#conn")
        expect(connection).to_have_text("live", timeout=WAIT_MS)
        server.stop()
        expect(connection).not_to_have_text("live", timeout=10_000)
        server.start()
        expect(connection).to_have_text("live", timeout=20_000)
        transaction_id = f"e2e-after-restart-{time.time_ns()}"
        with server.api() as client:
            client.post(
                "/v1/transactions",
                json={"transaction_id": transaction_id, "user_id": "e2e-restart", "amount": 30_000.0},
            ).raise_for_status()
        page.locator(f'#alert-feed [data-transaction-id="{transaction_id}"]').wait_for(timeout=2000)
    finally:
        session.close()
    # Only the expected noise of a server going away: failed WebSocket or fetch attempts while it was down.
    unexpected = [
        e for e in session.errors if not re.search(r"WebSocket|ERR_CONNECTION_REFUSED|Failed to load", e)
    ]
    assert unexpected == []


def test_the_api_docs_work_offline(browser: Any, server: Server) -> None:
    """/docs with every request off this machine aborted: Swagger UI from the server's own assets, the
    main operation open on its examples (the README's screenshot; tests/integration/test_api_docs.py
    checks the docs in full)."""
    context, outside = offline_context(browser, viewport={"width": 1280, "height": 1300})
    page = context.new_page()
    page.goto(f"{server.url}/docs")
    operation = page.locator("#operations-transactions-scoreTransactions")
    operation.locator(".opblock-summary-control").click()
    expect(operation.locator(".opblock-body")).to_contain_text("txn_normal_001", timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    screenshot(page, "api-docs", full_page=False)
    context.close()
    assert outside == []


def test_chromium_was_not_downloaded() -> None:
    """The browser is Debian's: Playwright's own download cache stays empty."""
    cache = Path.home() / ".cache" / "ms-playwright"
    assert not cache.exists() or not any(cache.glob("chromium*")), (
        "a browser was downloaded into ms-playwright"
    )
    assert shutil.which("chromium") == CHROMIUM
