"""Webhooks from a real server to a real receiver: registered by admins, delivered signed, filtered by
event and score, in Slack's format, and kept in the outbox while the receiver is down, across a
restart of the server, until each is delivered exactly once."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from factories import transaction
from fraudstream.storage import Store
from servers import RunningServer, free_port, start_server, stop, wait_for

pytestmark = pytest.mark.integration

#: Deliveries here are quick: waits end after 20 s rather than the shared 30.
_wait_for = partial(wait_for, timeout_s=20)

ADMIN_KEY = "fs_admin_webhook_test_0123456789"
AS_ADMIN = {"X-API-Key": ADMIN_KEY}
#: Over the built-in rule `huge_amount`'s 50,000: a decline scored 96, an alert.
DECLINED = 75_000.0
#: Over `large_amount`'s 10,000: a review scored 60, an alert.
REVIEWED = 20_000.0
#: Approved, scored 0.
APPROVED = 20.0
CARD = "4111111111111111"


class Receiver:
    """A webhook receiver on ``port``: records each POST (path, headers, body) and answers 200;
    ``stop`` closes the port (connections are refused) and ``start`` opens it again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        #: When each of ``received`` arrived (time.time()).
        self.arrived: list[float] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        received, arrived, lock = self.received, self.arrived, self._lock

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    arrived.append(time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
        self._server = None

    def at(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        with self._lock:
            return [(headers, body) for p, headers, body in self.received if p == path]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server with API keys on for the tests that do not restart it (a start takes seconds)."""
    running = start_server(tmp_path_factory.mktemp("webhooks"), api_keys_enabled="true", admin_key=ADMIN_KEY)
    yield running
    stop(running)


@pytest.fixture
def hooks(server: RunningServer) -> Iterator[Callable[..., dict[str, Any]]]:
    """Register webhooks on ``server``; those still there are deleted after the test, so that the
    next test on the same server sees none of them."""
    created: list[str] = []

    def create(**body: Any) -> dict[str, Any]:
        webhook = _create(server, **body)
        created.append(webhook["id"])
        return webhook

    yield create
    for webhook_id in created:
        httpx.delete(f"{server.url}/v1/webhooks/{webhook_id}", headers=AS_ADMIN, timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(free_port())
    found.start()
    yield found
    if found._server is not None:
        found.stop()


def _create(server: RunningServer, **body: Any) -> dict[str, Any]:
    answer = httpx.post(f"{server.url}/v1/webhooks", json=body, headers=AS_ADMIN, timeout=10)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _send(server: RunningServer, records: list[dict[str, Any]]) -> None:
    answer = httpx.post(f"{server.url}/v1/transactions", json=records, headers=AS_ADMIN, timeout=30)
    assert answer.status_code == 200, answer.text


def _deliveries(server: RunningServer, webhook_id: str, **query: Any) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{server.url}/v1/webhooks/{webhook_id}/deliveries", params=query, headers=AS_ADMIN, timeout=10
    )
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["deliveries"]
    return found


def _readiness(server: RunningServer) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(f"{server.url}/readyz", timeout=5)
    return answer.status_code, answer.json()


def _verified(secret: str, headers: dict[str, str], body: bytes, arrived: float | None = None) -> None:
    """The signature as docs/webhooks.md tells a receiver to check it; its timestamp is when the
    delivery ``arrived`` (by default: now, for a delivery just received)."""
    fields = dict(part.split("=", 1) for part in headers["x-fraudstream-signature"].split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"]), "the signature does not verify with the secret"
    now = time.time() if arrived is None else arrived
    assert abs(now - int(fields["t"])) < 60, "the signed timestamp is when it was sent"


def _problems(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 422, answer.text
    return {error["field"]: error["problem"] for error in answer.json()["errors"]}


def test_admins_register_list_and_delete_webhooks_and_bad_requests_name_the_field(
    server: RunningServer, hooks: Callable[..., dict[str, Any]]
) -> None:
    created = hooks(url="https://hooks.example.com/fraud", events=["decline", "alert"], min_score=70)
    assert created["id"].startswith("wh_")
    assert created["secret"].startswith("whsec_")
    assert len(created["secret"]) >= 40
    assert created["events"] == ["alert", "decline"]
    assert (created["url"], created["min_score"], created["format"]) == (
        "https://hooks.example.com/fraud", 70, "json"
    )  # fmt: skip
    slack = hooks(url="https://hooks.example.com/slack", events=["decision"], format="slack")
    assert slack["secret"] != created["secret"]

    listed = httpx.get(f"{server.url}/v1/webhooks", headers=AS_ADMIN, timeout=10).json()["webhooks"]
    assert [hook["id"] for hook in listed if hook["id"] in (created["id"], slack["id"])] == [
        created["id"], slack["id"]
    ]  # fmt: skip
    assert "secret" not in json.dumps(listed)
    assert created["secret"] not in json.dumps(listed)

    post = f"{server.url}/v1/webhooks"
    good = {"url": "https://hooks.example.com/x", "events": ["alert"]}
    cases = [
        ({**good, "url": "ftp://hooks.example.com/x"}, "url", "http:// or https://"),
        ({**good, "url": "hooks.example.com/x"}, "url", "http:// or https://"),
        ({**good, "events": ["alerts"]}, "events", "allowed: alert, approve"),
        ({**good, "events": []}, "events", "at least 1"),
        ({**good, "min_score": 101}, "min_score", "less than or equal to 100"),
        ({**good, "format": "xml"}, "format", "'json' or 'slack'"),
        ({**good, "secret": "mine"}, "secret", "not permitted"),
        ({"events": ["alert"]}, "url", "required"),
    ]
    for body, field, words in cases:
        problems = _problems(httpx.post(post, json=body, headers=AS_ADMIN, timeout=10))
        assert field in problems, (body, problems)
        assert words in problems[field], (body, problems)

    # Admins only: no key, or an analyst's key, is refused.
    assert httpx.post(post, json=good, timeout=10).status_code == 401
    database = f"sqlite:///{server.log_path.parent / 'data' / 'fraudstream.db'}"
    store = Store(database)
    analyst_key = store.create_api_key("alice", "analyst", int(time.time() * 1000))
    store.close()
    for method, path in (("POST", ""), ("GET", ""), ("DELETE", f"/{created['id']}")):
        refused = httpx.request(
            method, post + path, json=good, headers={"X-API-Key": analyst_key}, timeout=10
        )
        assert refused.status_code == 403, refused.text

    deleted = httpx.delete(f"{post}/{created['id']}", headers=AS_ADMIN, timeout=10)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": created["id"], "deleted": True, "cancelled_deliveries": 0}
    assert httpx.delete(f"{post}/{created['id']}", headers=AS_ADMIN, timeout=10).status_code == 404
    assert httpx.delete(f"{post}/wh_nosuch", headers=AS_ADMIN, timeout=10).status_code == 404
    assert httpx.get(f"{post}/wh_nosuch/deliveries", headers=AS_ADMIN, timeout=10).status_code == 404
    listed = httpx.get(post, headers=AS_ADMIN, timeout=10).json()["webhooks"]
    assert created["id"] not in {hook["id"] for hook in listed}
    assert slack["id"] in {h["id"] for h in listed}
    store = Store(database)
    audited = [(e["action"], e["subject"], e["actor"]) for e in store.audit_entries(limit=5)]
    store.close()
    assert ("create_webhook", created["id"], "admin") in audited
    assert ("delete_webhook", created["id"], "admin") in audited


def test_deliveries_arrive_signed_filtered_by_event_and_score_and_in_slack_format(
    server: RunningServer, hooks: Callable[..., dict[str, Any]], receiver: Receiver
) -> None:
    alerts = hooks(url=receiver.url("/alerts"), events=["alert"], min_score=70)
    approvals = hooks(url=receiver.url("/approvals"), events=["approve"])
    everything = hooks(url=receiver.url("/all"), events=["decline", "decision"])
    slack = hooks(url=receiver.url("/slack"), events=["decline"], format="slack")
    records = [
        transaction("d1", "u1", DECLINED, card_number=CARD, merchant_id="m1"),
        transaction("r1", "u2", REVIEWED),  # an alert, but scored 60: under the first webhook's 70
        transaction("a1", "u3", APPROVED),
    ]
    _send(server, records)
    _wait_for(lambda: len(receiver.at("/all")) == 3, "every decision at the `decision` webhook")
    _wait_for(lambda: len(receiver.at("/alerts")) == 1 and len(receiver.at("/slack")) == 1, "alerts, Slack")
    _wait_for(lambda: len(receiver.at("/approvals")) == 1, "the approval")

    headers, body = receiver.at("/alerts")[0]
    _verified(alerts["secret"], headers, body)
    event = json.loads(body)
    assert headers["x-fraudstream-event"] == event["event"] == "alert"
    assert headers["x-fraudstream-delivery"] == event["id"]
    assert headers["user-agent"].startswith("fraudstream")
    assert headers["content-type"] == "application/json"
    assert event["webhook_id"] == alerts["id"]
    decision = event["decision"]
    assert (decision["transaction_id"], decision["decision"], decision["score"]) == ("d1", "decline", 96)
    assert decision["reasons"][0]["code"] == "huge_amount"
    assert decision["reasons"][0]["text"]
    assert event["transaction"]["amount"] == DECLINED
    assert event["transaction"]["merchant_id"] == "m1"
    assert event["transaction"]["card_last4"] == "1111"
    # No card number leaves the server, in any delivery.
    assert all(CARD not in body.decode() for _, _, body in receiver.received)

    # One delivery per webhook and transaction, its event the most specific one subscribed to.
    by_transaction = {json.loads(b)["decision"]["transaction_id"]: h for h, b in receiver.at("/all")}
    assert {tid: h["x-fraudstream-event"] for tid, h in by_transaction.items()} == {
        "d1": "decline", "r1": "decision", "a1": "decision"
    }  # fmt: skip
    for headers, body in receiver.at("/all"):
        _verified(everything["secret"], headers, body)
    headers, body = receiver.at("/approvals")[0]
    assert json.loads(body)["decision"]["transaction_id"] == "a1"
    _verified(approvals["secret"], headers, body)
    with pytest.raises(AssertionError):
        _verified(alerts["secret"], headers, body)  # another webhook's secret does not verify it

    headers, body = receiver.at("/slack")[0]
    _verified(slack["secret"], headers, body)
    assert list(json.loads(body)) == ["text"]
    text = json.loads(body)["text"]
    assert "DECLINE" in text
    assert "96" in text
    assert "75,000.00 USD" in text
    assert "d1" in text
    assert "over 50,000" in text, "the top reason's text"

    listed = _deliveries(server, everything["id"])
    assert len(listed) == 3
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in listed)
    assert all(d["last_status_code"] == 200 and d["delivered_at_ms"] >= d["created_at_ms"] for d in listed)
    assert {d["id"] for d in listed} == {h["x-fraudstream-delivery"] for h, _ in receiver.at("/all")}
    assert _deliveries(server, everything["id"], status="pending") == []
    assert len(_deliveries(server, everything["id"], limit=2)) == 2
    assert _readiness(server)[1]["sinks"]["webhooks"] == {"state": "ok", "behind": 0}


def test_deleting_a_webhook_cancels_what_it_has_pending(
    server: RunningServer, hooks: Callable[..., dict[str, Any]]
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: every attempt fails
    hook = hooks(url=nobody, events=["alert"])
    _send(server, [transaction("x1", "u1", DECLINED)])
    _wait_for(lambda: _deliveries(server, hook["id"])[0]["attempts"] >= 1, "a failed attempt")
    pending = _deliveries(server, hook["id"])[0]
    assert pending["status"] == "pending"
    assert pending["last_status_code"] is None
    assert "Connect" in pending["last_error"]
    assert pending["next_attempt_ms"] > pending["created_at_ms"]
    _wait_for(lambda: _readiness(server)[1]["status"] == "degraded", "degraded while its receiver fails")
    deleted = httpx.delete(f"{server.url}/v1/webhooks/{hook['id']}", headers=AS_ADMIN, timeout=10).json()
    assert deleted["cancelled_deliveries"] == 1
    assert _deliveries(server, hook["id"])[0]["status"] == "cancelled"
    _wait_for(lambda: _readiness(server)[1]["status"] == "healthy", "healthy once the webhook is gone")


def test_deliveries_queued_while_the_receiver_is_down_and_the_server_restarts_arrive_once_each(
    receiver: Receiver, tmp_path: Path
) -> None:
    folder = tmp_path / "server"
    settings = {"api_keys_enabled": "true", "admin_key": ADMIN_KEY}
    server = start_server(folder, **settings)
    try:
        hook = _create(server, url=receiver.url(), events=["decision"])
        _send(server, [transaction("before", "u0", APPROVED)])
        _wait_for(lambda: len(receiver.received) == 1, "the first delivery")

        receiver.stop()
        down_since = time.monotonic()
        queued = [f"down-{i}" for i in range(8)]
        _send(server, [transaction(tid, f"u-{tid}", DECLINED if i % 2 else APPROVED)
                       for i, tid in enumerate(queued[:4])])  # fmt: skip

        def degraded() -> bool:
            status, body = _readiness(server)
            return status == 200 and body["status"] == "degraded"

        _wait_for(degraded, "/readyz to say degraded while the receiver is down")
        state = _readiness(server)[1]["sinks"]["webhooks"]
        assert state["state"] == "failing"
        assert hook["id"] in state["error"]
        assert receiver.url() not in state["error"], "a URL may carry a token: /readyz names the webhook"

        stop(server)  # SIGTERM, while deliveries wait
        server = start_server(folder, **settings)
        _send(server, [transaction(tid, f"u-{tid}", APPROVED) for tid in queued[4:]])
        _wait_for(degraded, "/readyz to say degraded after the restart, the receiver still down")
        waiting = _deliveries(server, hook["id"], status="pending")
        assert len(waiting) == len(queued)

        def retried() -> bool:
            pending = _deliveries(server, hook["id"], status="pending")
            return len(pending) == len(queued) and all(d["attempts"] >= 2 for d in pending)

        # The receiver stays down until each queued delivery has failed twice, the second time after
        # its backoff (some before the restart, some after it); the server decides on, degraded.
        while not retried():
            status, body = _readiness(server)
            assert status == 200
            assert body["status"] == "degraded"
            assert time.monotonic() - down_since < 90, "no retries while the receiver was down"
            time.sleep(0.5)
        receiver.start()  # the same port
        _send(server, [transaction("after", "u9", APPROVED)])  # traffic goes on

        expected = {"before", *queued, "after"}

        def arrived() -> set[str]:
            return {json.loads(body)["decision"]["transaction_id"] for _, _, body in receiver.received}

        _wait_for(lambda: arrived() == expected, "every delivery queued while the receiver was down")
        _wait_for(lambda: _readiness(server)[1]["status"] == "healthy", "healthy once they are delivered")
        ids = Counter(headers["x-fraudstream-delivery"] for _, headers, _ in receiver.received)
        assert len(ids) == len(expected), "one delivery id per transaction"
        assert set(ids.values()) == {1}, f"each delivery id arrives once: {ids}"
        listed = {d["transaction_id"]: d for d in _deliveries(server, hook["id"])}
        assert set(listed) == expected
        assert set(ids) == {d["id"] for d in listed.values()}
        assert all(d["status"] == "delivered" for d in listed.values())
        assert all(listed[tid]["attempts"] > 2 for tid in queued), "tried twice while down, then delivered"
        assert all(listed[tid]["delivered_at_ms"] >= listed[tid]["created_at_ms"] for tid in queued)
        for (_, headers, body), arrived in zip(receiver.received, receiver.arrived):
            _verified(hook["secret"], headers, body, arrived)
    finally:
        stop(server)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_outbox_queries_behave_alike_on_sqlite_and_postgresql(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'outbox.db'}" if database == "sqlite" else request.getfixturevalue(
        "empty_postgres_url"
    )  # fmt: skip
    store = Store(url)
    store.upgrade()
    try:
        webhook = {"id": "wh_1", "url": "https://example.com", "events": ["alert"], "min_score": None,
                   "format": "json", "secret": "whsec_x", "created_at_ms": 1, "created_by": "admin",
                   "deleted_at_ms": None}  # fmt: skip
        store.create_webhook(webhook)
        assert [w["events"] for w in store.list_webhooks()] == [["alert"]]
        assert "secret" not in store.list_webhooks()[0]
        assert store.webhook_targets()[0]["secret"] == "whsec_x"

        def delivery(number: int, due_ms: int) -> dict[str, Any]:
            return {"id": f"whd_{number}", "webhook_id": "wh_1", "transaction_id": f"t{number}",
                    "event": "alert", "payload": "{}", "status": "pending", "attempts": 0,
                    "next_attempt_ms": due_ms, "last_status_code": None, "last_error": None,
                    "created_at_ms": number, "delivered_at_ms": None}  # fmt: skip

        store.add_deliveries([delivery(1, 100), delivery(2, 200), delivery(3, 5_000)])
        store.add_deliveries([{**delivery(1, 100), "payload": "again"}])  # already there: skipped
        due = store.due_deliveries("wh_1", 1_000, 10)
        assert [d["id"] for d in due] == ["whd_1", "whd_2"]
        assert (due[0]["payload"], due[0]["attempts"], due[0]["event"]) == ("{}", 0, "alert")
        assert store.due_deliveries("wh_2", 1_000, 10) == []
        assert len(store.due_deliveries("wh_1", 1_000, 1)) == 1

        outcome = {"status": "delivered", "attempts": 1, "next_attempt_ms": 100, "last_status_code": 204,
                   "last_error": None, "delivered_at_ms": 1_001}  # fmt: skip
        retry = {"status": "pending", "attempts": 1, "next_attempt_ms": 3_000, "last_status_code": 503,
                 "last_error": "HTTP 503", "delivered_at_ms": None}  # fmt: skip
        store.record_attempts([{"id": "whd_1", **outcome}, {"id": "whd_2", **retry}])
        assert store.due_deliveries("wh_1", 1_000, 10) == []
        assert store.deliveries_due_now("wh_1", 1_000) == 2  # whd_2 and whd_3
        assert [d["id"] for d in store.due_deliveries("wh_1", 1_000, 10)] == ["whd_2", "whd_3"]

        listed = store.webhook_deliveries("wh_1", None, 10)
        assert [d["id"] for d in listed] == ["whd_3", "whd_2", "whd_1"]
        assert [d["status"] for d in store.webhook_deliveries("wh_1", "delivered", 10)] == ["delivered"]
        assert store.delete_webhook("wh_1", 2_000) == 2
        assert store.delete_webhook("wh_1", 2_001) is None
        store.record_attempts([{"id": "whd_2", **outcome}])  # cancelled stays cancelled
        assert {d["id"]: d["status"] for d in store.webhook_deliveries("wh_1", None, 10)} == {
            "whd_1": "delivered", "whd_2": "cancelled", "whd_3": "cancelled"
        }  # fmt: skip
        assert store.list_webhooks() == []
        assert store.get_webhook("wh_1") is not None
    finally:
        store.close()
