"""Cases on real SQLite and PostgreSQL: alerts on one entity join one case within the window, in the
write that stores them; priority and due time follow the riskiest alert; assigning, commenting and
closing (one verdict or one per transaction) are audited, and closing labels every transaction. Then
the /v1/cases and /v1/audit routes of a real `fraudstream serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from fraudstream.storage import Store
from fraudstream.storage.cases import CaseClosedError, CasePolicy, CaseVerdictError
from fraudstream.storage.store import EVENT_COLUMNS
from servers import RunningServer, start_server, stop

pytestmark = pytest.mark.integration

HOUR = 3_600_000
T0 = 1_800_000_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    url = (
        f"sqlite:///{tmp_path / 'cases.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    found = Store(url)
    found.upgrade()
    with found.engine.begin() as connection:
        for table in ("alerts", "decisions", "labels", "transactions", "audit_log", "cases", "case_comments"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
    return found


def _transaction(tid: str, user: str, card: str | None, device: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(EVENT_COLUMNS)
    row.update(
        transaction_id=tid, user_id=user, timestamp_ms=T0, amount=100.0, currency="USD",
        card_fingerprint=card, card_last4=card and card[-4:], device_id=device,
    )  # fmt: skip
    return {**row, "body_hash": "h" + tid, "received_at_ms": T0}


def _alert(tid: str, user: str, score: int, at: int) -> dict[str, Any]:
    return {
        "transaction_id": tid, "user_id": user, "amount": 100.0, "score": score, "decision": "review",
        "reasons": json.dumps([{"code": "large_amount", "text": "Large amount", "contribution": 30.0}]),
        "status": "open", "assignee": None, "verdict": None, "note": None,
        "created_at_ms": at, "updated_at_ms": at,
    }  # fmt: skip


def _store_alerts(store: Store, *alerts: tuple[str, str, str | None, int, int]) -> None:
    """Store one group: (transaction id, user, card fingerprint, score, time) each raising an alert."""
    store.write_scored(
        [_transaction(tid, user, card) for tid, user, card, _, _ in alerts],
        [],
        [_alert(tid, user, score, at) for tid, user, _, score, at in alerts],
    )


def _case_of(store: Store, transaction_id: str) -> str:
    with store.engine.connect() as connection:
        found = connection.execute(
            sa.text("SELECT case_id FROM alerts WHERE transaction_id = :t"), {"t": transaction_id}
        ).scalar_one()
    assert found is not None, f"{transaction_id}'s alert is in no case"
    return str(found)


def test_a_cards_alerts_within_the_window_form_one_case_whose_priority_and_due_follow_the_riskiest(
    store: Store,
) -> None:
    _store_alerts(store, ("t1", "u1", "card-a", 62, T0))
    _store_alerts(store, ("t2", "u2", "card-a", 93, T0 + HOUR), ("t3", "u1", "card-b", 55, T0 + HOUR))
    _store_alerts(store, ("t4", "u1", "card-a", 70, T0 + 2 * HOUR))

    case_id = _case_of(store, "t1")
    assert _case_of(store, "t2") == _case_of(store, "t4") == case_id  # another user, the same card
    assert _case_of(store, "t3") != case_id
    case = store.get_case(case_id, now_ms=T0)
    assert case is not None
    assert (case["entity_kind"], case["entity_id"], case["status"]) == ("card", "card-a", "open")
    assert [a["transaction_id"] for a in case["alerts"]] == ["t2", "t4", "t1"]  # riskiest first
    assert (case["risk"], case["priority"]) == (93, "critical")
    # Opened as medium (62: due in 24 h), raised to critical by t2: due an hour after it opened.
    assert case["due_at_ms"] == T0 + HOUR
    actions = [(e["action"], e["details"]["transaction_id"]) for e in reversed(case["audit"])]
    assert actions == [("open_case", "t1"), ("join_case", "t2"), ("join_case", "t4")]


def test_an_alert_after_the_window_or_after_the_case_closed_opens_a_new_case(store: Store) -> None:
    _store_alerts(store, ("t1", "u1", "card-a", 80, T0))
    _store_alerts(store, ("t2", "u1", "card-a", 80, T0 + 25 * HOUR))  # the window is 24 h
    assert _case_of(store, "t2") != _case_of(store, "t1")

    store.close_case(_case_of(store, "t2"), verdict="legit", verdicts={}, note=None, actor="bob", now_ms=T0)
    _store_alerts(store, ("t3", "u1", "card-a", 80, T0 + 26 * HOUR))
    assert _case_of(store, "t3") not in {_case_of(store, "t1"), _case_of(store, "t2")}


def test_the_entity_is_configurable_and_a_transaction_without_it_groups_on_its_user(
    store: Store, tmp_path: Path
) -> None:
    _store_alerts(store, ("t1", "u1", None, 80, T0), ("t2", "u1", None, 60, T0 + 1))
    case = store.get_case(_case_of(store, "t1"), now_ms=T0)
    assert case is not None
    assert (case["entity_kind"], case["entity_id"], case["alert_count"]) == ("user", "u1", 2)

    store.case_policy = CasePolicy(entity="device")
    store.write_scored(
        [
            _transaction("t3", "u3", "card-c", device="dev-9"),
            _transaction("t4", "u4", "card-d", device="dev-9"),
        ],
        [],
        [_alert("t3", "u3", 77, T0), _alert("t4", "u4", 51, T0 + 5)],
    )
    assert _case_of(store, "t3") == _case_of(store, "t4")
    device_case = store.get_case(_case_of(store, "t3"), now_ms=T0)
    assert device_case is not None
    assert (device_case["entity_kind"], device_case["entity_id"]) == ("device", "dev-9")


def test_a_replayed_write_neither_duplicates_an_alert_nor_moves_it_to_another_case(store: Store) -> None:
    _store_alerts(store, ("t1", "u1", "card-a", 80, T0))
    first = _case_of(store, "t1")
    _store_alerts(store, ("t1", "u1", "card-a", 80, T0))
    assert _case_of(store, "t1") == first
    assert [c["id"] for c in store.list_cases(now_ms=T0)] == [first]


def test_closing_with_one_verdict_labels_every_transaction_and_closes_its_alerts(store: Store) -> None:
    _store_alerts(store, ("t1", "u1", "card-a", 80, T0), ("t2", "u1", "card-a", 91, T0 + 1))
    case_id = _case_of(store, "t1")
    assigned = store.assign_case(case_id, "alice", actor="bob", now_ms=T0 + 10)
    assert (assigned["status"], assigned["assignee"]) == ("in_review", "alice")
    store.comment_case(case_id, "the card was stolen", author="alice", now_ms=T0 + 20)

    closed, labels = store.close_case(
        case_id, verdict="fraud", verdicts={}, note="stolen", actor="alice", now_ms=T0 + 30
    )
    assert (closed["status"], closed["verdict"], closed["assignee"]) == ("closed", "fraud", "alice")
    # Enriched for the engine, as an alert's review label is.
    assert sorted((label["transaction_id"], label["is_fraud"]) for label in labels) == [
        ("t1", True),
        ("t2", True),
    ]
    assert {label["card_fingerprint"] for label in labels} == {"card-a"}
    stored = {row["transaction_id"]: row for row in store.labels_after(0)}
    assert set(stored) == {"t1", "t2"}
    case = store.get_case(case_id, now_ms=T0)
    assert case is not None
    assert {(a["status"], a["verdict"]) for a in case["alerts"]} == {("closed", "fraud")}
    assert [c["body"] for c in case["comments"]] == ["the card was stolen"]
    assert [(e["actor"], e["action"]) for e in case["audit"][:3]] == [
        ("alice", "close_case"), ("alice", "comment_case"), ("bob", "assign_case"),
    ]  # fmt: skip
    with pytest.raises(CaseClosedError, match="is closed"):
        store.assign_case(case_id, "carol", actor="bob", now_ms=T0 + 40)


def test_closing_with_a_verdict_per_transaction_and_the_errors_name_the_field(store: Store) -> None:
    _store_alerts(store, ("t1", "u1", "card-a", 80, T0), ("t2", "u1", "card-a", 91, T0 + 1))
    case_id = _case_of(store, "t1")
    with pytest.raises(CaseVerdictError) as missing:
        store.close_case(case_id, verdict=None, verdicts={"t1": "fraud"}, note=None, actor="a", now_ms=T0)
    assert missing.value.field == "verdict"
    with pytest.raises(CaseVerdictError) as outsider:
        store.close_case(case_id, verdict="legit", verdicts={"t9": "fraud"}, note=None, actor="a", now_ms=T0)
    assert outsider.value.field == "verdicts.t9"
    assert store.labels_after(0) == []  # nothing of a refused close was kept

    closed, labels = store.close_case(
        case_id, verdict=None, verdicts={"t1": "legit", "t2": "fraud"}, note=None, actor="a", now_ms=T0
    )
    assert closed["verdict"] == "fraud"  # the case was fraud: one of its transactions was
    assert sorted((label["transaction_id"], label["is_fraud"]) for label in labels) == [
        ("t1", False),
        ("t2", True),
    ]


def test_the_queue_lists_by_due_time_then_risk_with_filters(store: Store) -> None:
    _store_alerts(store, ("t1", "u1", "card-a", 55, T0))  # medium: due T0 + 24 h
    _store_alerts(store, ("t2", "u2", "card-b", 95, T0))  # critical: due T0 + 1 h
    _store_alerts(store, ("t3", "u3", "card-c", 80, T0), ("t4", "u4", "card-d", 85, T0))  # high: T0 + 4 h
    order = [c["entity_id"] for c in store.list_cases(now_ms=T0)]
    assert order == ["card-b", "card-d", "card-c", "card-a"]
    overdue = {c["entity_id"]: c["overdue"] for c in store.list_cases(now_ms=T0 + 2 * HOUR)}
    assert overdue == {"card-b": True, "card-d": False, "card-c": False, "card-a": False}

    store.assign_case(_case_of(store, "t3"), "alice", actor="alice", now_ms=T0)
    assert [c["entity_id"] for c in store.list_cases(now_ms=T0, assignee="alice")] == ["card-c"]
    assert [c["entity_id"] for c in store.list_cases(now_ms=T0, status=["in_review"])] == ["card-c"]
    assert [c["entity_id"] for c in store.list_cases(now_ms=T0, priority=["high"])] == ["card-d", "card-c"]
    assert [c["entity_id"] for c in store.list_cases(now_ms=T0, entity="card-a")] == ["card-a"]
    assert [c["entity_id"] for c in store.list_cases(now_ms=T0, cursor=1, limit=2)] == ["card-d", "card-c"]
    assert store.case_counts() == {"open": 3, "in_review": 1, "closed": 0}


def test_the_audit_page_filters_and_pages_newest_first(store: Store) -> None:
    for i, (actor, action) in enumerate(
        [("alice", "save_rules"), ("bob", "update_list"), ("alice", "assign_case")]
    ):
        store.audit(actor, action, f"subject-{i}", {"i": i}, T0 + i * HOUR)
    assert [e["action"] for e in store.audit_page()[0]] == ["assign_case", "update_list", "save_rules"]
    assert [e["subject"] for e in store.audit_page(actor="alice")[0]] == ["subject-2", "subject-0"]
    assert [e["actor"] for e in store.audit_page(action="update_list")[0]] == ["bob"]
    assert [e["details"] for e in store.audit_page(subject="subject-0")[0]] == [{"i": 0}]
    window = store.audit_page(since_ms=T0 + HOUR, until_ms=T0 + 2 * HOUR)[0]
    assert [e["subject"] for e in window] == ["subject-1"]
    first, cursor = store.audit_page(limit=2)
    rest, end = store.audit_page(limit=2, cursor=cursor)
    assert [e["subject"] for e in first + rest] == ["subject-2", "subject-1", "subject-0"]
    assert end is None
    assert store.audit_actions() == ["assign_case", "save_rules", "update_list"]


# --- the API of a real server ------------------------------------------------------------------

ADMIN_KEY = "fs_cases_api_admin_key_0123456789"


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    """A server with keys on; the admin's key, and a viewer's and an analyst's made with `keys create`
    (which the audit log records)."""
    folder = tmp_path_factory.mktemp("cases-api")
    running = start_server(folder, api_keys_enabled="true", admin_key=ADMIN_KEY)
    env = {
        **os.environ,
        "FRAUDSTREAM_DATA_DIR": str(folder / "data"),
        "FRAUDSTREAM_CARD_KEY": "test-card-key",
    }
    keys = {"admin": ADMIN_KEY}
    for name, role in (("victor", "viewer"), ("alice", "analyst")):
        made = subprocess.run(
            [sys.executable, "-m", "fraudstream", "keys", "create", name, "--role", role],
            env=env, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        keys[role] = made.stdout.strip().splitlines()[-1]
    try:
        yield running, keys
    finally:
        stop(running)


def _client(server: tuple[RunningServer, dict[str, str]], role: str = "admin") -> httpx.Client:
    running, keys = server
    return httpx.Client(base_url=running.url, headers={"X-API-Key": keys[role]}, timeout=10)


@pytest.fixture(scope="module")
def api_case(api_server: tuple[RunningServer, dict[str, str]]) -> tuple[str, list[str]]:
    """Two alerts on one card, sent through the API: their case id and transaction ids."""
    payments = [
        {
            "transaction_id": f"api-{i}",
            "user_id": f"api-user-{i}",
            "amount": amount,
            "card_number": "4242424242424242",
        }
        for i, amount in enumerate((15_000, 70_000))
    ]
    with _client(api_server) as client:
        client.post("/v1/transactions", json=payments).raise_for_status()
        (case,) = client.get("/v1/cases").raise_for_status().json()["items"]
    assert (case["alert_count"], case["entity_kind"], case["card_last4"]) == (2, "card", "4242")
    return case["id"], [p["transaction_id"] for p in payments]


def test_the_api_refuses_bad_case_changes_naming_the_field(
    api_server: tuple[RunningServer, dict[str, str]], api_case: tuple[str, list[str]]
) -> None:
    case_id, _ = api_case
    with _client(api_server, "analyst") as client:
        unknown = client.post(f"/v1/cases/{case_id}/close", json={"verdict": "maybe"})
        assert unknown.status_code == 422
        assert [e["field"] for e in unknown.json()["errors"]] == ["verdict"]
        blank = client.post(f"/v1/cases/{case_id}/comments", json={"body": "   "})
        assert blank.status_code == 422
        assert [e["field"] for e in blank.json()["errors"]] == ["body"]
        outsider = client.post(
            f"/v1/cases/{case_id}/close", json={"verdict": "fraud", "verdicts": {"nope": "legit"}}
        )
        assert outsider.status_code == 422
        assert outsider.json()["detail"].startswith("verdicts.nope: is not a transaction of case")
        no_verdict = client.post(f"/v1/cases/{case_id}/close", json={"verdicts": {"api-0": "legit"}})
        assert no_verdict.status_code == 422
        assert no_verdict.json()["detail"].startswith("verdict: is required")
        assert client.get("/v1/cases/case_404").status_code == 404
        assert client.post("/v1/cases/case_404/assign", json={"assignee": "bob"}).status_code == 404
    with _client(api_server, "viewer") as client:
        assert client.get(f"/v1/cases/{case_id}").status_code == 200  # viewers read cases
        assert client.post(f"/v1/cases/{case_id}/assign", json={"assignee": "bob"}).status_code == 403
        assert client.get("/v1/audit").status_code == 403  # ... but not who did what


def test_assigning_commenting_and_closing_through_the_api_are_audited_with_the_caller(
    api_server: tuple[RunningServer, dict[str, str]], api_case: tuple[str, list[str]]
) -> None:
    case_id, transaction_ids = api_case
    with _client(api_server, "analyst") as client:
        assigned = (
            client.post(f"/v1/cases/{case_id}/assign", json={"assignee": "bob"}).raise_for_status().json()
        )
        assert (assigned["status"], assigned["assignee"]) == ("in_review", "bob")
        taken = client.post(f"/v1/cases/{case_id}/assign").raise_for_status().json()
        assert taken["assignee"] == "alice"  # no name: the caller takes it
        comment = client.post(f"/v1/cases/{case_id}/comments", json={"body": " called the bank "})
        assert comment.status_code == 201
        assert (comment.json()["author"], comment.json()["body"]) == ("alice", "called the bank")
        closed = (
            client.post(
                f"/v1/cases/{case_id}/close",
                json={"verdict": "fraud", "verdicts": {"api-0": "legit"}, "note": "mixed"},
            )
            .raise_for_status()
            .json()
        )
        assert (closed["status"], closed["verdict"]) == ("closed", "fraud")
        assert sorted((lab["transaction_id"], lab["is_fraud"]) for lab in closed["labels"]) == [
            ("api-0", False), ("api-1", True),
        ]  # fmt: skip
        again = client.post(f"/v1/cases/{case_id}/close", json={"verdict": "legit"})
        assert again.status_code == 409
        assert "is closed" in again.json()["detail"]
        assert client.post(f"/v1/cases/{case_id}/assign", json={"assignee": "x"}).status_code == 409
        for transaction_id, fraud in zip(transaction_ids, (False, True)):
            stored = client.get(f"/v1/transactions/{transaction_id}").json()
            assert [label["is_fraud"] for label in stored["labels"]] == [fraud]
        assert client.get("/v1/cases", params={"status": "closed"}).json()["items"][0]["id"] == case_id
        assert client.get("/v1/cases", params={"status": "open,in_review"}).json()["items"] == []
        assert client.get("/v1/cases/summary").json() == {"open": 0, "in_review": 0, "closed": 1}
    with _client(api_server) as client:
        trail = client.get("/v1/audit", params={"subject": case_id}).raise_for_status().json()
        assert [(e["actor"], e["action"]) for e in trail["items"]] == [
            ("alice", "close_case"), ("alice", "comment_case"), ("alice", "assign_case"),
            ("alice", "assign_case"), ("system", "join_case"), ("system", "open_case"),
        ]  # fmt: skip
        assert trail["items"][3]["details"] == {"assignee": "bob", "previous": None}
        by_alice = client.get("/v1/audit", params={"actor": "alice", "action": "close_case"}).json()["items"]
        assert [e["subject"] for e in by_alice] == [case_id]
        later = client.get("/v1/audit", params={"since": "2100-01-01T00:00:00Z"}).json()["items"]
        assert later == []
        assert client.get("/v1/audit", params={"since": "yesterday"}).status_code == 422


def test_an_alert_is_assigned_to_the_analyst_named_and_the_caller_is_audited(
    api_server: tuple[RunningServer, dict[str, str]],
) -> None:
    with _client(api_server, "analyst") as client:
        client.post(
            "/v1/transactions", json={"transaction_id": "api-alert", "user_id": "api-u9", "amount": 20_000}
        ).raise_for_status()
        answer = (
            client.post("/v1/alerts/api-alert/assign", json={"assignee": "carol"}).raise_for_status().json()
        )
        assert answer["assignee"] == "carol"
        assert client.get("/v1/transactions/api-alert").json()["alert"]["assignee"] == "carol"
    with _client(api_server) as client:
        (entry,) = client.get("/v1/audit", params={"subject": "api-alert"}).json()["items"]
    assert (entry["actor"], entry["action"], entry["details"]) == (
        "alice",
        "assign_alert",
        {"assignee": "carol"},
    )


def test_keys_made_with_the_command_line_are_audited(
    api_server: tuple[RunningServer, dict[str, str]],
) -> None:
    with _client(api_server) as client:
        made = client.get("/v1/audit", params={"action": "create_key"}).json()["items"]
    by_subject = {e["subject"]: e for e in made}
    assert by_subject["alice"]["actor"].startswith("cli")
    assert by_subject["alice"]["details"] == {"role": "analyst"}
    assert by_subject["victor"]["details"] == {"role": "viewer"}
    assert by_subject["admin"]["actor"] == "system"  # the admin key the server was started with


def test_a_case_whose_alerts_were_all_reviewed_one_by_one_closes_itself(store: Store) -> None:
    _store_alerts(store, ("t1", "u1", "card-a", 80, T0), ("t2", "u1", "card-a", 91, T0 + 1))
    case_id = _case_of(store, "t1")
    store.review_alert("t1", verdict="legit", note=None, actor="alice", status="closed", now_ms=T0 + 5)
    case = store.get_case(case_id, now_ms=T0)
    assert case is not None
    assert case["status"] == "open"  # t2 is still to be worked
    store.review_alert("t2", verdict="fraud", note=None, actor="alice", status="closed", now_ms=T0 + 9)
    case = store.get_case(case_id, now_ms=T0)
    assert case is not None
    assert (case["status"], case["verdict"], case["closed_at_ms"]) == ("closed", "fraud", T0 + 9)
    assert case["audit"][0]["details"] == {"verdict": "fraud", "settled_by": "t2"}


def test_an_alert_joining_a_case_someone_works_is_theirs_too(store: Store) -> None:
    _store_alerts(store, ("t1", "u1", "card-a", 80, T0))
    store.assign_case(_case_of(store, "t1"), "alice", actor="alice", now_ms=T0 + 1)
    _store_alerts(store, ("t2", "u1", "card-a", 70, T0 + 2))
    case = store.get_case(_case_of(store, "t2"), now_ms=T0)
    assert case is not None
    assert {(a["transaction_id"], a["status"], a["assignee"]) for a in case["alerts"]} == {
        ("t1", "in_review", "alice"), ("t2", "in_review", "alice"),
    }  # fmt: skip


def test_model_roles_and_key_revocations_changed_from_the_command_line_are_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from typer.testing import CliRunner

    from fraudstream.cli import app
    from fraudstream.core.models import fit_model
    from fraudstream.ml.registry import Registry

    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FRAUDSTREAM_CARD_KEY", "test-card-key")
    features = np.random.default_rng(3).normal(size=(200, 2)).astype(np.float32)
    registry = Registry(tmp_path / "models")
    for version in ("m-1", "m-2"):
        labels = (features[:, 0] > 1).astype(np.int8)
        registry.save(
            fit_model(
                "logistic",
                features,
                labels,
                ["amount", "x"],
                version=version,
                created="2026-12-07T17:41:21Z",
                training_fingerprint="test",
            )
        )
    runner = CliRunner()
    for command in (["models", "promote", "m-1"], ["models", "shadow", "m-2"]):
        done = runner.invoke(app, [*command, "--registry", str(tmp_path / "models")])
        assert done.exit_code == 0, done.output
    assert runner.invoke(app, ["keys", "create", "dora", "--role", "viewer"]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", "dora"]).exit_code == 0

    store = Store(f"sqlite:///{tmp_path / 'data' / 'fraudstream.db'}")
    entries = [(e["action"], e["subject"], e["actor"].split(":")[0]) for e in reversed(store.audit_page()[0])]
    assert entries == [
        ("model_champion", "m-1", "cli"), ("model_challenger", "m-2", "cli"),
        ("create_key", "dora", "cli"), ("revoke_keys", "dora", "cli"),
    ]  # fmt: skip


def test_closing_a_case_teaches_the_running_engine_at_once_as_a_review_does(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from fraudstream.api import create_app
    from fraudstream.config import Settings

    with TestClient(create_app(Settings(demo=True, data_dir=tmp_path, card_key="test-card-key"))) as client:
        for tid, user, amount in (("e-1", "u-1", 20_000), ("e-2", "u-2", 30_000)):
            card = {"card_number": "4242424242424242", "terminal_id": "T9"}
            client.post(
                "/v1/transactions", json={"transaction_id": tid, "user_id": user, "amount": amount, **card}
            )
        (case,) = client.get("/v1/cases").json()["items"]
        probe = {"user_id": "v", "amount": 10, "terminal_id": "T9"}
        assert "risky_terminal" not in client.post("/validate-transaction", json=probe).json()["shadow_rules"]
        client.post(f"/v1/cases/{case['id']}/close", json={"verdict": "fraud"}).raise_for_status()
        # Two confirmed frauds among the terminal's transactions: the label-fed shadow rule hits now.
        assert "risky_terminal" in client.post("/validate-transaction", json=probe).json()["shadow_rules"]
