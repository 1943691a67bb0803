"""Reading back through the HTTP API: filters and cursor pages of transactions and alerts, a user's
history, and which role may call which route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from factories import transaction
from fraudstream.api import create_app
from fraudstream.config import Settings

pytestmark = pytest.mark.integration


def minute(m: int) -> str:
    """The ``m``-th minute of the hour the tests' transactions happen in."""
    return f"2026-11-24T10:{m:02d}:00Z"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("reads")
    settings = Settings(demo=True, data_dir=data_dir, batch_wait_ms=1.0)
    with TestClient(create_app(settings)) as test_client:
        # Three users; each jumps from small amounts to a large one, which the default rules flag.
        body = [
            transaction(f"{user}-{i}", user, 40.0 + i, timestamp=minute(i))
            for user in ("ann", "bob", "cid")
            for i in range(4)
        ]
        body += [
            transaction(f"{user}-big", user, 9000.0, timestamp=minute(10)) for user in ("ann", "bob", "cid")
        ]
        result = test_client.post("/v1/transactions", json=body).json()
        assert result["summary"]["scored"] == 15
        yield test_client


def all_pages(client: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor is not None else {})}
        page = client.get(path, params=query).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ran out")


def test_cursor_pages_visit_every_transaction_once_newest_first(client: TestClient) -> None:
    items = all_pages(client, "/v1/transactions", limit=4)
    ids = [i["transaction_id"] for i in items]
    assert len(ids) == 15
    assert len(set(ids)) == 15
    seqs = [i["seq"] for i in items]
    assert seqs == sorted(seqs, reverse=True)
    oldest_first = all_pages(client, "/v1/transactions", limit=4, order="oldest")
    assert [i["transaction_id"] for i in oldest_first] == ids[::-1]


@pytest.mark.parametrize("path", ["/v1/transactions", "/v1/alerts"])
@pytest.mark.parametrize("cursor", ["99999999999999999999", "-1"])
def test_a_cursor_out_of_range_is_refused_with_422_not_a_server_error(
    client: TestClient, path: str, cursor: str
) -> None:
    """Issue 19, item 8: a cursor past 64 bits reached SQLite and answered 500."""
    response = client.get(path, params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert "cursor" in response.text
    assert client.get(path, params={"cursor": str(2**63 - 1)}).status_code == 200


def test_filters_narrow_the_list_to_what_was_asked(client: TestClient) -> None:
    by_user = all_pages(client, "/v1/transactions", user="bob", limit=2)
    assert {i["user_id"] for i in by_user} == {"bob"}
    assert len(by_user) == 5
    flagged = all_pages(client, "/v1/transactions", min_score=50)
    assert {i["transaction_id"] for i in flagged} == {"ann-big", "bob-big", "cid-big"}
    assert all(i["decision"]["score"] >= 50 for i in flagged)
    reviewed = all_pages(client, "/v1/transactions", decision="review")
    assert {i["decision"]["decision"] for i in reviewed} == {"review"}
    by_rule = all_pages(client, "/v1/transactions", rule="amount_spike")
    assert {i["transaction_id"] for i in by_rule} == {"ann-big", "bob-big", "cid-big"}
    window = all_pages(
        client, "/v1/transactions", **{"from": "2026-11-24T10:01:00Z", "to": "2026-11-24T10:03:00+00:00"}
    )
    assert sorted(i["transaction_id"] for i in window) == sorted(
        f"{u}-{i}" for u in ("ann", "bob", "cid") for i in (1, 2)
    )


def test_alerts_come_riskiest_first_in_pages(client: TestClient) -> None:
    alerts = all_pages(client, "/v1/alerts", limit=2)
    assert {a["transaction_id"] for a in alerts} == {"ann-big", "bob-big", "cid-big"}
    assert [a["score"] for a in alerts] == sorted((a["score"] for a in alerts), reverse=True)
    assert all(a["reasons"] for a in alerts)
    assert client.get("/v1/alerts", params={"status": "closed"}).json()["items"] == []


def test_a_users_history_is_theirs_newest_first(client: TestClient) -> None:
    history = client.get("/v1/users/cid/history", params={"limit": 3}).json()
    assert [i["transaction_id"] for i in history["items"]] == ["cid-big", "cid-3", "cid-2"]


def test_a_transaction_reads_back_with_its_decision_and_alert(client: TestClient) -> None:
    found = client.get("/v1/transactions/ann-big").json()
    assert found["decision"]["decision"] in {"review", "decline"}
    assert found["alert"]["status"] == "open"
    assert found["labels"] == []
    assert client.get("/v1/transactions/nobody").status_code == 404


# Which role may do what. Health, docs and metrics need no key.
ROUTES: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/v1/transactions", None, {"viewer", "analyst", "admin"}),
    ("GET", "/v1/alerts", None, {"viewer", "analyst", "admin"}),
    ("GET", "/v1/stats", None, {"viewer", "analyst", "admin"}),
    ("GET", "/v1/rules", None, {"viewer", "analyst", "admin"}),
    ("GET", "/transactions", None, {"viewer", "analyst", "admin"}),
    ("POST", "/validate-transaction", {"user_id": "u", "amount": 5}, {"viewer", "analyst", "admin"}),
    (
        "POST",
        "/v1/transactions",
        transaction("r-{role}", "u", 5, timestamp=minute(0)),
        {"ingest", "analyst", "admin"},
    ),
    (
        "POST",
        "/transaction",
        transaction("c-{role}", "u", 5, timestamp=minute(0)),
        {"ingest", "analyst", "admin"},
    ),
    ("POST", "/predict", {"user_id": "u", "amount": 5}, {"ingest", "analyst", "admin"}),
    ("POST", "/v1/labels", [{"transaction_id": "seed", "is_fraud": False}], {"ingest", "analyst", "admin"}),
    ("POST", "/v1/alerts/seed-big/assign", None, {"analyst", "admin"}),
    ("POST", "/v1/alerts/seed-big/review", {"note": "looking"}, {"analyst", "admin"}),
    ("PUT", "/v1/lists/blocked_countries", {"items": []}, {"admin"}),
]
ROLES = ("viewer", "ingest", "analyst", "admin")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("roles")
    settings = Settings(data_dir=data_dir, card_key="c" * 32, admin_key="the-admin-key", batch_wait_ms=1.0)
    app = create_app(settings)
    with TestClient(app) as test_client:
        store = app.state.service.store
        keys = {role: store.create_api_key(f"{role}-key", role, 0) for role in ROLES if role != "admin"}
        keys["admin"] = "the-admin-key"
        for tid, amount in (("seed", 30.0), ("seed-big", 30000.0)):
            test_client.post(
                "/v1/transactions",
                json=transaction(tid, "s", amount, timestamp=minute(0)),
                headers={"x-api-key": keys["admin"]},
            ).raise_for_status()
        yield test_client, keys


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), ROUTES, ids=[f"{m} {p}" for m, p, *_ in ROUTES]
)
def test_each_role_reaches_exactly_its_routes(
    secured: tuple[TestClient, dict[str, str]], method: str, path: str, body: Any, allowed: set[str]
) -> None:
    client, keys = secured
    anonymous = client.request(method, path, json=body)
    assert anonymous.status_code == 401
    assert "API key" in anonymous.json()["detail"]
    for role in ROLES:
        payload = {**body, "transaction_id": body["transaction_id"].format(role=role)} if (
            isinstance(body, dict) and "transaction_id" in body) else body  # fmt: skip
        response = client.request(
            method, path, json=payload, headers={"authorization": f"Bearer {keys[role]}"}
        )
        if role in allowed:
            assert response.status_code < 400, (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert role in response.json()["detail"]


def test_health_docs_and_metrics_need_no_key(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = secured
    for path in ("/healthz", "/readyz", "/health", "/api/v1/health", "/docs", "/openapi.json", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_the_openapi_page_documents_decisions_and_every_error(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    answers = spec["paths"]["/v1/transactions"]["post"]["responses"]
    assert {"200", "201", "400", "401", "403", "409", "413", "422"} <= set(answers)
    decision = spec["components"]["schemas"]["Decision"]
    assert {"transaction_id", "decision", "score", "reasons", "latency_ms"} <= set(decision["required"])
    assert "/v1/stream/alerts.sse" in spec["paths"]
