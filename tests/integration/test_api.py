"""The HTTP API through the real ASGI stack and a real SQLite file: seed flows, compatibility routes,
idempotency, bad input, rules, reviews, labels, auth and restarts."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fraudstream.api import create_app
from fraudstream.config import Settings

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "demo": True,
        "data_dir": tmp_path,
        "batch_wait_ms": 1.0,
        "max_body_bytes": 64_000,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path))) as test_client:
        yield test_client


def rows(tmp_path: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "fraudstream.db") as connection:
        return connection.execute(query).fetchall()


def seed_tx(tid: str, amount: float, minutes: float, **extra: Any) -> dict[str, Any]:
    return {
        "transaction_id": tid,
        "user_id": "user-test-123",
        "card_number": "4242-4242-4242-4242",
        "amount": amount,
        "timestamp": at(minutes),
        "merchant_id": "merchant_a",
        "location": "New York",
        **extra,
    }


def test_a_jump_from_50_to_5000_is_flagged_listed_and_pushed_live(client: TestClient) -> None:
    with client.websocket_connect("/v1/stream/alerts") as socket:
        assert socket.receive_json()["type"] == "hello"
        normal = client.post("/transaction", json=seed_tx("txn_normal_001", 50.00, 0))
        fraud = client.post("/transaction", json=seed_tx("txn_fraud_002", 5000.00, 1, location="Online"))
        pushed = socket.receive_json()
    assert normal.status_code == 201
    assert normal.json()["decision"] == "approve"
    body = fraud.json()
    assert body["is_fraud"] is True
    assert body["decision"] in {"review", "decline"}
    assert "100x this user's 30-day average" in body["reasons"][0]["text"]
    assert pushed["transaction_id"] == "txn_fraud_002"
    alerts = client.get("/v1/alerts").json()["items"]
    assert [a["transaction_id"] for a in alerts] == ["txn_fraud_002"]


def test_six_transactions_in_thirty_seconds_trip_high_velocity(client: TestClient) -> None:
    results = [
        client.post(
            "/v1/transactions",
            json={"transaction_id": f"b{i}", "user_id": "burst", "amount": 20, "timestamp": at(i / 12)},
        ).json()
        for i in range(6)
    ]
    assert "high_velocity" not in results[4]["rules"]
    assert "high_velocity" in results[5]["rules"]
    assert results[5]["decision"] == "review"


def test_new_york_to_tokyo_in_ten_minutes_trips_geo_velocity(client: TestClient) -> None:
    base = {"user_id": "traveller", "amount": 80}
    client.post(
        "/v1/transactions", json={**base, "transaction_id": "ny", "location": "New York", "timestamp": at(0)}
    )
    tokyo = client.post(
        "/v1/transactions", json={**base, "transaction_id": "tk", "location": "Tokyo", "timestamp": at(10)}
    ).json()
    assert "geo_velocity" in tokyo["rules"]
    assert "km/h" in next(r["text"] for r in tokyo["reasons"] if r["code"] == "geo_velocity")


def test_compatibility_routes_answer_in_the_shapes_clients_expect(client: TestClient, tmp_path: Path) -> None:
    api_v1 = client.post(
        "/api/v1/transactions",
        json={"userId": "user1", "amount": 100, "currency": "USD", "location": "New York"},
    )
    assert api_v1.status_code == 201
    assert api_v1.json()["status"] == "success"
    assert api_v1.json()["transactionId"]
    for path in ("/api/v1/health", "/health"):
        health = client.get(path).json()
        assert health["status"] == "healthy"
        assert health["database"] == "connected"
    assert client.get("/", headers={"accept": "application/json"}).json()["status"] == "healthy"
    assert "<title>Overview · fraudstream</title>" in client.get("/", headers={"accept": "text/html"}).text
    predicted = client.post("/predict", json={"user_id": "1087", "amount": 25.5}).json()
    assert predicted["prediction"] == "legit"
    recent = client.get("/transactions", params={"n": 20}).json()
    assert recent["meta"]["total"] == 2
    assert {i["user_id"] for i in recent["items"]} == {"user1", "1087"}
    before = rows(tmp_path, "select count(*) from transactions")[0][0]
    check = client.post(
        "/validate-transaction", json={"user_id": "1087", "amount": 1500, "location": "Hyderabad"}
    )
    assert check.status_code == 200
    assert check.json()["verdict"] in {"legit", "fraud"}
    assert [h["amount"] for h in check.json()["user_history"]] == [25.5]
    assert rows(tmp_path, "select count(*) from transactions")[0][0] == before


def test_a_retry_gets_the_stored_decision_and_a_different_body_a_conflict(
    client: TestClient, tmp_path: Path
) -> None:
    payload = seed_tx("retry-1", 12000.0, 0)
    first = client.post("/v1/transactions", json=payload)
    again = client.post("/v1/transactions", json=dict(reversed(list(payload.items()))))
    other = client.post("/v1/transactions", json={**payload, "amount": 1.0})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json() == first.json()
    assert again.content == first.content  # byte for byte: the first answer is the stored decision
    assert first.json()["reasons"]  # a flagged one: reasons, features and all go through storage
    assert "different body" in other.json()["detail"]
    assert rows(tmp_path, "select count(*) from transactions where transaction_id='retry-1'") == [(1,)]
    assert rows(tmp_path, "select count(*) from decisions") == [(1,)]


def test_a_list_scores_the_good_items_and_names_the_bad_ones(client: TestClient) -> None:
    body = [
        {"transaction_id": "l1", "user_id": "u", "amount": 10},
        {"transaction_id": "l2", "user_id": "u", "amount": -3},
        {"transaction_id": "l1", "user_id": "u", "amount": 10},
    ]
    result = client.post("/v1/transactions", json=body).json()
    assert [r["status"] for r in result["results"]] == ["scored", "invalid", "duplicate"]
    assert result["results"][1]["errors"][0]["field"] == "amount"
    assert result["summary"] == {"scored": 1, "duplicate": 1, "conflict": 0, "invalid": 1}


def test_a_zero_amount_card_verification_is_scored_on_every_route_and_a_negative_one_refused(
    client: TestClient, tmp_path: Path
) -> None:
    verification = client.post("/v1/transactions", json=seed_tx("verify-0", 0.00, 0))
    assert verification.status_code == 201, verification.text
    assert verification.json()["decision"] == "approve"
    # The purchase right after it: the user's mean amount so far is 0, which nothing divides by.
    purchase = client.post("/v1/transactions", json=seed_tx("buy-1", 900.00, 1))
    assert purchase.status_code == 201, purchase.text
    assert 0 <= purchase.json()["score"] <= 100
    as_text = client.post(
        "/v1/transactions", json={"transaction_id": "v-t", "user_id": "u2", "amount": "0.00"}
    )
    assert as_text.status_code == 201, as_text.text
    compat = [
        client.post("/transaction", json=seed_tx("seed-0", 0.0, 2)),
        client.post("/api/v1/transactions", json={"userId": "u3", "amount": 0, "location": "New York"}),
        client.post("/predict", json={"user_id": "u4", "amount": 0.0}),
        client.post("/validate-transaction", json={"user_id": "u5", "amount": 0}),
    ]
    assert [r.status_code for r in compat] == [201, 201, 201, 200], [r.text for r in compat]
    stored = {t for (t,) in rows(tmp_path, "select transaction_id from transactions where amount = 0")}
    assert {"verify-0", "v-t", "seed-0"} <= stored
    assert len(stored) == 5  # and the /api/v1 and /predict ones, under the ids the routes gave them
    negative = client.post(
        "/v1/transactions", json={"transaction_id": "neg", "user_id": "u", "amount": -0.01}
    )
    assert negative.status_code == 422
    [problem] = negative.json()["errors"]
    assert (problem["field"], problem["problem"]) == ("amount", "must be >= 0")
    assert problem["allowed"].startswith("a finite number >= 0")


def test_the_api_still_refuses_a_time_without_a_zone(client: TestClient) -> None:
    """--timezone is for files; a live payment must carry its zone."""
    response = client.post(
        "/v1/transactions",
        json={"transaction_id": "n", "user_id": "u", "amount": 5, "timestamp": "2026-11-24 10:00:00"},
    )
    assert response.status_code == 422
    assert "has no time zone" in response.json()["errors"][0]["problem"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"transaction_id": "x", "amount": ', 400, None),
        (json.dumps({"transaction_id": "x", "user_id": "u", "amount": "lots"}).encode(), 422, "amount"),
        (json.dumps({"transaction_id": "x", "amount": 5}).encode(), 422, "user_id"),
        (json.dumps({"transaction_id": "x", "user_id": "u", "amount": -5}).encode(), 422, "amount"),
        (b'{"transaction_id": "x", "user_id": "u", "amount": NaN}', 400, None),
        (json.dumps({"transaction_id": "x", "user_id": "u", "amount": "NaN"}).encode(), 422, "amount"),
        (json.dumps({"transaction_id": "x", "user_id": "u", "amount": 1e15}).encode(), 422, "amount"),
        (
            json.dumps({"transaction_id": "x", "user_id": "u", "amount": 5, "currency": "ABC"}).encode(),
            422,
            "currency",
        ),
        (
            json.dumps({"transaction_id": "x", "user_id": "u", "amount": 5, "timestamp": "noon"}).encode(),
            422,
            "timestamp",
        ),
        (json.dumps({"transaction_id": "x", "user_id": ["u"], "amount": 5}).encode(), 422, "user_id"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field_and_nothing_is_written(
    client: TestClient, tmp_path: Path, body: bytes, status: int, field: str | None
) -> None:
    response = client.post("/v1/transactions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    if field is not None:
        assert field in {e["field"] for e in response.json()["errors"]}
    else:
        assert "not valid JSON" in response.json()["detail"]
    assert rows(tmp_path, "select count(*) from transactions") == [(0,)]


def test_an_oversized_body_is_refused_with_413(client: TestClient) -> None:
    big = [{"transaction_id": f"t{i}", "user_id": "u", "amount": 1, "pad": "x" * 100} for i in range(1000)]
    response = client.post(
        "/v1/transactions", content=json.dumps(big), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    chunked = client.post("/v1/transactions", content=iter([b"[" + b" " * 70_000 + b"]"]))
    assert chunked.status_code == 413
    # One object (the fast path's shape), declared and chunked: the same answer.
    one = json.dumps({"transaction_id": "t", "user_id": "u", "amount": 1, "pad": "x" * 70_000}).encode()
    declared = client.post("/v1/transactions", content=one, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    pieces = client.post("/v1/transactions", content=iter([one[:40_000], one[40_000:]]))
    assert pieces.status_code == 413
    assert client.get("/v1/transactions", params={"user": "u"}).json()["items"] == []


@pytest.mark.parametrize("expression", ["-" * 1990 + "amount > 1", "not " * 490 + "amount > 1"])
def test_a_deeply_nested_rule_is_refused_with_422_not_a_server_error(
    client: TestClient, expression: str
) -> None:
    """Issue 19, item 8: these reached Python's recursion limit in the rule compiler (500)."""
    current = client.get("/v1/rules").json()["version"]
    body = f"version: 9\nrules:\n  - {{code: deep, expression: '{expression}', action: review, weight: 50}}\n"
    response = client.put("/v1/rules", content=body, headers={"content-type": "application/yaml"})
    assert response.status_code == 422, response.text
    assert "nests deeper than 60 levels" in response.text
    checked = client.post(
        "/v1/rules/validate", json={"rule": {"code": "deep", "expression": expression, "action": "review"}}
    )
    assert checked.status_code < 500, checked.text
    assert client.get("/v1/rules").json()["version"] == current


def test_an_invalid_rule_set_is_refused_with_its_position_and_the_old_one_stays(client: TestClient) -> None:
    current = client.get("/v1/rules").json()
    broken = "version: 9\nrules:\n  - {code: oops, expression: 'amount >> 3', action: review, weight: 50}\n"
    response = client.put("/v1/rules", content=broken, headers={"content-type": "application/yaml"})
    assert response.status_code == 422
    assert response.json()["rule"] == "oops"
    assert response.json()["position"] == 8  # the ">>" of "amount >> 3"
    assert client.get("/v1/rules").json()["version"] == current["version"]
    strict = (
        "version: 2\nrules:\n"
        "  - {code: tiny, description: 'any amount', expression: 'amount > 1', action: decline, weight: 90}\n"
    )
    assert client.put("/v1/rules", content=strict).json()["version"] == 2
    decided = client.post(
        "/v1/transactions", json={"transaction_id": "r1", "user_id": "u", "amount": 5}
    ).json()
    assert decided["decision"] == "decline"
    assert decided["ruleset_version"] == 2


def test_a_review_closes_the_alert_stores_a_label_and_is_audited(client: TestClient, tmp_path: Path) -> None:
    client.post(
        "/v1/transactions",
        json={"transaction_id": "big", "user_id": "u", "amount": 20000, "terminal_id": "T9"},
    )
    reviewed = client.post("/v1/alerts/big/review", json={"verdict": "fraud", "note": "customer called"})
    assert reviewed.status_code == 200
    assert reviewed.json()["label"]["terminal_id"] == "T9"
    detail = client.get("/v1/transactions/big").json()
    assert detail["alert"]["status"] == "closed"
    assert detail["alert"]["verdict"] == "fraud"
    assert detail["labels"][0]["source"] == "review"
    assert detail["audit"][0]["action"] == "review_alert"
    before = client.post(
        "/validate-transaction", json={"user_id": "v", "amount": 10, "terminal_id": "T9"}
    ).json()
    assert "risky_terminal" not in before["shadow_rules"]
    client.post(
        "/v1/transactions",
        json={"transaction_id": "big2", "user_id": "w", "amount": 30000, "terminal_id": "T9"},
    )
    client.post("/v1/alerts/big2/review", json={"verdict": "fraud"})
    # Two confirmed frauds among the terminal's transactions: the label-fed shadow rule now hits.
    after = client.post(
        "/validate-transaction", json={"user_id": "v", "amount": 10, "terminal_id": "T9"}
    ).json()
    assert "risky_terminal" in after["shadow_rules"]
    assert after["decision"] == "approve"
    assert client.post("/v1/alerts/nope/review", json={"verdict": "fraud"}).status_code == 404


def test_bulk_labels_report_unknown_transactions(client: TestClient) -> None:
    client.post("/v1/transactions", json={"transaction_id": "c1", "user_id": "u", "amount": 12})
    result = client.post(
        "/v1/labels",
        json=[{"transaction_id": "c1", "is_fraud": True}, {"transaction_id": "zz", "is_fraud": True}],
    ).json()
    assert result["accepted"] == 1
    assert result["unknown_transactions"] == ["zz"]
    stats = client.get("/v1/stats").json()
    assert stats["confirmed_fraud"] == 1
    assert stats["transactions"] == 1


def test_features_continue_after_a_restart(tmp_path: Path) -> None:
    for round_ in range(2):
        with TestClient(create_app(settings(tmp_path))) as test_client:
            for i in range(3):
                test_client.post(
                    "/v1/transactions",
                    json={
                        "transaction_id": f"p{round_}{i}",
                        "user_id": "loyal",
                        "amount": 30,
                        "timestamp": at(round_ * 10 + i),
                    },
                )
            last = test_client.get(f"/v1/transactions/p{round_}2").json()
            assert last["decision"]["features"]["user.count_24h"] == 3 * round_ + 3


def test_api_keys_are_required_and_roles_enforced_outside_demo_mode(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, demo=False, card_key="k" * 32, admin_key="admin-secret"))
    with TestClient(app) as client:
        assert client.get("/v1/stats").status_code == 401
        assert client.get("/v1/stats", headers={"X-API-Key": "wrong"}).status_code == 401
        service = app.state.service
        ingest = service.store.create_api_key("gateway", "ingest", 0)
        viewer = service.store.create_api_key("viewer", "viewer", 0)
        ok = client.post(
            "/v1/transactions",
            json={"transaction_id": "a", "user_id": "u", "amount": 3},
            headers={"X-API-Key": ingest},
        )
        assert ok.status_code == 201
        assert client.get("/v1/stats", headers={"Authorization": f"Bearer {ingest}"}).status_code == 403
        assert client.get("/v1/stats", headers={"X-API-Key": viewer}).status_code == 200
        assert (
            client.put(
                "/v1/rules", content="version: 5\nrules: []\n", headers={"X-API-Key": viewer}
            ).status_code
            == 403
        )
        assert (
            client.put(
                "/v1/rules", content="version: 5\nrules: []\n", headers={"X-API-Key": "admin-secret"}
            ).status_code
            == 200
        )


def test_no_card_number_reaches_the_database_or_the_response(client: TestClient, tmp_path: Path) -> None:
    response = client.post("/transaction", json=seed_tx("pan-1", 20.0, 0, note="4242424242424242"))
    assert "4242424242424242" not in response.text
    dump = "\n".join(sqlite3.connect(tmp_path / "fraudstream.db").iterdump())
    assert "4242424242424242" not in dump
    assert "4242-4242-4242-4242" not in dump


def test_a_backtest_runs_in_the_background_and_compares_rule_sets(client: TestClient) -> None:
    import time

    body = [
        {"transaction_id": f"bt{i}", "user_id": f"u{i % 3}", "amount": 100.0 * (i + 1)} for i in range(30)
    ]
    client.post("/v1/transactions", json=body)
    client.post("/v1/labels", json=[{"transaction_id": "bt29", "is_fraud": True}])
    bad = client.post("/v1/backtests", json={"yaml": "version: 2\nrules: [\n"})
    assert bad.status_code == 422
    candidate = (
        "version: 2\nrules:\n  - {code: over_2k, expression: 'amount > 2000', action: review, weight: 60}\n"
    )
    started = client.post("/v1/backtests", json={"yaml": candidate})
    assert started.status_code == 202
    run = started.json()["id"]
    deadline = time.monotonic() + 30
    while (state := client.get(f"/v1/backtests/{run}").json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state["status"] == "done", state
    result = state["result"]
    assert result["transactions"] == 30
    assert result["candidate"]["rules"]["over_2k"]["hits"] == 10
    assert result["candidate"]["rules"]["over_2k"]["recall"] == 1.0


def test_a_backtest_over_a_window_with_nothing_stored_reports_zero_not_a_numpy_error(
    client: TestClient,
) -> None:
    """Issue 19, item 8: it failed with "need at least one array to concatenate"."""
    import time

    candidate = (
        "version: 2\nrules:\n  - {code: big, expression: 'amount > 2000', action: review, weight: 60}\n"
    )
    run = client.post("/v1/backtests", json={"yaml": candidate, "days": 1}).json()["id"]
    deadline = time.monotonic() + 30
    while (state := client.get(f"/v1/backtests/{run}").json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state["status"] == "done", state
    assert state["result"]["transactions"] == 0
    assert state["result"]["candidate"]["rules"]["big"]["hits"] == 0
    assert state["result"]["candidate"]["policy"]["transactions"] == 0


def test_alerts_stream_as_server_sent_events_on_every_documented_path(client: TestClient) -> None:
    for path in ("/v1/stream/alerts", "/v1/stream/alerts.sse", "/v1/stream/alerts/sse"):
        with client.stream("GET", path, headers={"accept": "text/event-stream"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            first = next(response.iter_lines())
            assert first == ": connected to fraudstream alerts"
