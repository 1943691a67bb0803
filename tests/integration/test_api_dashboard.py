"""The JSON routes the dashboard stands on: trend series, alert counts and order, sorted listings, rule
validation, flags and performance, the model registry, sign-in pages and roles."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from factories import transaction
from fraudstream.api import create_app
from fraudstream.config import Settings
from fraudstream.core.engine import EngineConfig
from fraudstream.core.models import ModelMetadata
from fraudstream.core.models.logistic import LogisticModel
from fraudstream.ml.registry import Registry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("dashboard-api")
    settings = Settings(demo=True, data_dir=data_dir, batch_wait_ms=1.0)
    with TestClient(create_app(settings)) as test_client:
        body = [
            transaction(f"{user}-{i}", user, 20.0 + 7 * i, timestamp=time.time() - (600 - i * 30))
            for user in ("ann", "bob")
            for i in range(6)
        ]
        body += [
            transaction("ann-big", "ann", 12_000.0, timestamp=time.time() - 5),
            transaction("bob-huge", "bob", 60_000.0, timestamp=time.time() - 4),
        ]
        assert test_client.post("/v1/transactions", json=body).json()["summary"]["scored"] == 14
        yield test_client


def test_the_trend_series_has_every_bucket_of_the_window_and_counts_what_was_decided(
    client: TestClient,
) -> None:
    for window, buckets in (("10m", 20), ("1h", 60), ("24h", 96)):
        series = client.get("/v1/stats/series", params={"window": window}).json()
        assert len(series["buckets"]) == buckets
        times = [b["t_ms"] for b in series["buckets"]]
        assert times == sorted(times)
        assert all(b - a == series["bucket_ms"] for a, b in zip(times, times[1:]))
        # Decisions are bucketed by when they were made (now), so all 14 are in every window.
        assert sum(b["transactions"] for b in series["buckets"]) == 14
        assert sum(b["alerts"] for b in series["buckets"]) == client.get("/v1/stats").json()["alerts"]
    assert client.get("/v1/stats/series", params={"window": "2d"}).status_code == 422


def test_alert_counts_and_orders(client: TestClient) -> None:
    counts = client.get("/v1/alerts/summary").json()
    assert counts == {"open": 2, "in_review": 0, "closed": 0}
    risk = [a["transaction_id"] for a in client.get("/v1/alerts").json()["items"]]
    assert risk == ["bob-huge", "ann-big"]  # the higher score first
    newest = client.get("/v1/alerts", params={"order": "newest"}).json()["items"]
    created = [a["created_at_ms"] for a in newest]
    assert created == sorted(created, reverse=True)
    assert client.post("/v1/alerts/ann-big/assign").status_code == 200
    # Issue 19, item 8: a named assignee was ignored and the caller assigned instead.
    named = client.post("/v1/alerts/ann-big/assign", json={"assignee": "alice"})
    assert named.json()["assignee"] == "alice"
    assert (
        next(a for a in client.get("/v1/alerts").json()["items"] if a["transaction_id"] == "ann-big")[
            "assignee"
        ]
        == "alice"
    )
    assert client.post("/v1/alerts/ann-big/assign", json={"assignee": ""}).status_code == 422
    queue = client.get("/v1/alerts", params={"status": "open,in_review"}).json()["items"]
    assert {a["status"] for a in queue} == {"open", "in_review"}
    assert client.get("/v1/alerts/summary").json() == {"open": 1, "in_review": 1, "closed": 0}
    bad = client.get("/v1/alerts", params={"status": "open,lost"})
    assert bad.status_code == 422
    assert "status" in bad.text


def test_transactions_sort_by_amount_and_score_with_offset_pages(client: TestClient) -> None:
    seen: list[float] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"order": "amount_desc", "limit": 5}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get("/v1/transactions", params=params).json()
        seen += [item["amount"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 14
    assert seen == sorted(seen, reverse=True)
    ascending = client.get("/v1/transactions", params={"order": "score_asc", "limit": 50}).json()["items"]
    scores = [item["decision"]["score"] for item in ascending]
    assert scores == sorted(scores)
    assert client.get("/v1/transactions", params={"order": "random"}).status_code == 422


def test_validating_a_rule_names_the_position_and_changes_nothing(client: TestClient) -> None:
    version = client.get("/v1/rules").json()["version"]
    rule = {"code": "large_amount", "description": "Amount over 8,000", "expression": "amount > 8000 and",
            "action": "review", "weight": 60}  # fmt: skip
    wrong = client.post("/v1/rules/validate", json={"rule": rule}).json()
    assert wrong["valid"] is False
    assert wrong["rule"] == "large_amount"
    assert wrong["position"] is not None
    assert wrong["reason"]
    right = client.post("/v1/rules/validate", json={"rule": {**rule, "expression": "amount > 8000"}}).json()
    assert right["valid"] is True
    assert "amount > 8000" in right["yaml"]
    assert client.get("/v1/rules").json()["version"] == version
    # The candidate YAML is what PUT /v1/rules stores.
    saved = client.put("/v1/rules", json={"yaml": right["yaml"]}).json()
    assert saved["version"] == version + 1
    assert next(r for r in saved["rules"] if r["code"] == "large_amount")["expression"] == "amount > 8000"


def test_rule_flags_make_a_new_version(client: TestClient) -> None:
    before = client.get("/v1/rules").json()["version"]
    shadowed = client.patch("/v1/rules/huge_amount", json={"shadow": True}).json()
    assert shadowed["version"] == before + 1
    assert next(r for r in shadowed["rules"] if r["code"] == "huge_amount")["shadow"] is True
    off = client.patch("/v1/rules/huge_amount", json={"enabled": False, "shadow": False}).json()
    rule = next(r for r in off["rules"] if r["code"] == "huge_amount")
    assert (rule["enabled"], rule["shadow"]) == (False, False)
    assert client.patch("/v1/rules/no_such_rule", json={"enabled": False}).status_code == 404


def test_rule_performance_counts_hits_and_precision_from_labels(client: TestClient) -> None:
    before = {r["code"]: r for r in client.get("/v1/rules/performance").json()["rules"]}
    assert before["large_amount"]["hits"] >= 1
    assert before["large_amount"]["labelled"] == 0
    assert before["large_amount"]["precision"] is None
    client.post("/v1/alerts/ann-big/review", json={"verdict": "fraud"})
    after = {r["code"]: r for r in client.get("/v1/rules/performance").json()["rules"]}
    assert after["large_amount"]["labelled"] == 1
    assert after["large_amount"]["fraud"] == 1
    assert after["large_amount"]["precision"] == 1.0
    # A later verdict on the same transaction replaces the earlier one.
    client.post("/v1/alerts/ann-big/review", json={"verdict": "legit"})
    again = {r["code"]: r for r in client.get("/v1/rules/performance").json()["rules"]}
    assert (again["large_amount"]["labelled"], again["large_amount"]["fraud"]) == (1, 0)


def _register(root: Path, version: str) -> None:
    """A tiny logistic model with the engine's feature list, saved in the registry."""
    import numpy as np

    names = EngineConfig().features.feature_names
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, len(names))).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.int8)
    metadata = ModelMetadata("logistic", version, f"2026-11-29T00:00:0{len(version) % 10}Z", names, "test")
    Registry(root).save(LogisticModel.fit(x, y, metadata))


def test_models_list_promote_and_shadow(client: TestClient) -> None:
    service = client.app.state.service  # type: ignore[attr-defined]
    root = service.settings.models_dir
    assert client.get("/v1/models").json()["versions"] == []
    _register(root, "m-old")
    _register(root, "m-new")
    listed = client.get("/v1/models").json()
    assert {m["version"] for m in listed["versions"]} == {"m-old", "m-new"}
    assert listed["champion"] is None
    promoted = client.post("/v1/models/m-old/promote").json()
    assert promoted["champion"] == promoted["scoring"] == "m-old"
    shadowed = client.post("/v1/models/m-new/shadow").json()
    assert shadowed["challengers"] == ["m-new"]
    assert [c.metadata.version for c in service.engine.challengers] == ["m-new"]
    missing = client.post("/v1/models/nope/promote")
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]
    audit = service.store.audit_entries(subject="m-old")
    assert audit[0]["action"] == "model_champion"


def test_pages_render_for_browsers_and_json_stays_json(client: TestClient) -> None:
    for path in ("/", "/ui/transactions", "/ui/transactions/ann-big", "/ui/queue", "/ui/check", "/ui/rules",
                 "/ui/models"):  # fmt: skip
        page = client.get(path, headers={"Accept": "text/html"})
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        assert '<script src="/static/app.js"' in page.text
    assert (
        client.get("/", headers={"Accept": "application/json"}).json()["message"] == "fraudstream is running"
    )
    script = client.get("/static/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]


def test_sign_in_sets_a_strict_cookie_and_roles_limit_pages(tmp_path: Path) -> None:
    settings = Settings(
        demo=True, data_dir=tmp_path, api_keys_enabled=True, admin_key="fs_admin_test_key_123456"
    )
    with TestClient(create_app(settings), follow_redirects=False) as anonymous:
        store = anonymous.app.state.service.store  # type: ignore[attr-defined]
        viewer = store.create_api_key("vic", "viewer", 0)
        ingest = store.create_api_key("feed", "ingest", 0)
        page = anonymous.get("/ui/queue")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/ui/queue"
        refused = anonymous.post("/login", content="key=wrong&next=/ui/queue",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert refused.status_code == 401
        assert "not valid" in refused.text
        # An outside address in `next` is ignored: sign-in never sends the analyst elsewhere.
        signed = anonymous.post("/login", content=f"key={viewer}&next=//evil.example/",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert signed.status_code == 303
        assert signed.headers["location"] == "/"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert anonymous.get("/ui/queue").status_code == 200
        assert 'data-can-review="no"' in anonymous.get("/ui/queue").text
        assert anonymous.post("/v1/alerts/x/review", json={"verdict": "fraud"}).status_code == 403
        anonymous.post("/logout")
        anonymous.cookies.clear()
        anonymous.cookies.set("fraudstream_key", ingest)
        assert anonymous.get("/ui/queue").status_code == 403  # an ingest key cannot read the dashboard
