"""List items that expire, snoozes and rule set rollback, through a real `fraudstream serve`: each
change acts on the next transaction, by the transaction's own time, is stored and audited."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from factories import transaction
from fraudstream.storage import Store
from servers import RunningServer, start_server, stop

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
CARD = "4242 4242 4242 4242"
OTHER_CARD = "5555 5555 5555 4444"

RULES = """version: 1
description: The rules of this test
lists:
  blocked_devices: {kind: device_id, values: []}
rules:
- {code: blocked_device, description: blocked device, expression: "device_id in list('blocked_devices')",
   action: decline, weight: 100}
- {code: big, description: big amount, expression: "amount > 1000", action: review, weight: 70}
- {code: huge, description: huge amount, expression: "amount > 50000", action: decline, weight: 95}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    found = start_server(tmp_path_factory.mktemp("lists-snoozes"))
    try:
        yield found
    finally:
        stop(found)


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as found:
        put = found.put("/v1/rules", json={"yaml": RULES})
        assert put.status_code == 200, put.text
        yield found


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def now_ms() -> int:
    return int(time.time() * 1000)


_sent = iter(range(1_000_000))


def decide(client: httpx.Client, at_ms: int, amount: float = 10.0, **fields: Any) -> dict[str, Any]:
    """The decision on one new transaction at ``at_ms`` (a user of its own unless given)."""
    n = next(_sent)
    fields.setdefault("user_id", f"user-{n}")
    body = transaction(f"ls-{n}", amount=amount, timestamp=iso(at_ms), **fields)
    answer = client.post("/v1/transactions", json=body)
    assert answer.status_code == 201, answer.text
    found: dict[str, Any] = answer.json()
    return found


def audited(server: RunningServer, action: str) -> list[dict[str, Any]]:
    """The audit rows of ``action``, from the server's own database."""
    database = Path(server.log_path).parent / "data" / "fraudstream.db"
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            query = sa.text("SELECT actor, subject, details FROM audit_log WHERE action = :a ORDER BY id")
            return [dict(r) for r in connection.execute(query, {"a": action}).mappings()]
    finally:
        engine.dispose()


def field_errors(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 422, answer.text
    return [str(e["field"]) for e in answer.json()["errors"]]


# --- storage, on SQLite and PostgreSQL ----------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    url = (
        f"sqlite:///{tmp_path / 'lists.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    found = Store(url)
    found.upgrade()
    with found.engine.begin() as connection:
        for table in ("snoozes", "lists", "rule_sets", "audit_log"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
    return found


def test_stored_lists_keep_expiries_and_snoozes_their_state(store: Store) -> None:
    store.save_list("blocked_devices", "device_id", ["b", "a", "b"], "admin", 1, {"a": 500, "zz": 9})
    assert store.saved_lists() == {"blocked_devices": ("device_id", ["a", "b"], {"a": 500})}
    row = {"entity_kind": "user", "entity_id": "u1", "rule_code": None, "reason": "vip"}
    store.create_snooze({**row, "id": "s1", "until_ms": 1_000}, "alice", 100)
    store.create_snooze({**row, "id": "s2", "until_ms": 2_000, "rule_code": "big"}, "alice", 100)
    store.create_snooze({**row, "id": "s3", "until_ms": 3_000}, "alice", 100)
    assert store.cancel_snooze("s3", "bob", 200)["state"] == "cancelled"  # type: ignore[index]
    assert store.cancel_snooze("nope", "bob", 200) is None
    assert [s["id"] for s in store.snoozes_in_force(1_000)] == ["s2"]  # s1 ends at 1,000; s3 cancelled
    assert [(s["id"], s["rule"]) for s in store.list_snoozes(500)] == [("s1", None), ("s2", "big")]
    states = {s["id"]: s["state"] for s in store.list_snoozes(1_500, everything=True)}
    assert states == {"s1": "expired", "s2": "active", "s3": "cancelled"}
    store.save_ruleset(1, "version: 1\nrules: []\n", "system", 1)
    store.save_ruleset(
        2, "version: 2\nrules: []\n", "admin", 2, action="rollback_rules", details={"restored": 1}
    )
    assert store.ruleset_yaml(1) == "version: 1\nrules: []\n"
    assert store.ruleset_yaml(9) is None
    with store.engine.connect() as connection:
        actions = connection.execute(sa.text("SELECT action, subject FROM audit_log ORDER BY id")).all()
    assert [tuple(a) for a in actions] == [
        ("update_list", "blocked_devices"),
        ("create_snooze", "s1"),
        ("create_snooze", "s2"),
        ("create_snooze", "s3"),
        ("cancel_snooze", "s3"),
        ("save_rules", "version 1"),
        ("rollback_rules", "version 2"),
    ]


# --- lists -------------------------------------------------------------------------------------


def test_a_list_item_matches_until_its_expiry_by_the_transactions_time(
    client: httpx.Client, server: RunningServer
) -> None:
    expiry = now_ms() + 2 * HOUR_MS
    put = client.put(
        "/v1/lists/blocked_devices",
        json={"items": [{"value": "dev-exp", "expires_at": iso(expiry)}, "dev-perm"]},
    )
    assert put.json() == {"name": "blocked_devices", "size": 2}
    shown = client.get("/v1/lists/blocked_devices").json()
    assert shown["items"] == [
        {"value": "dev-exp", "expires_at_ms": expiry},
        {"value": "dev-perm", "expires_at_ms": None},
    ]
    assert decide(client, expiry - 60_000, device_id="dev-exp")["decision"] == "decline"
    after = decide(client, expiry + 60_000, device_id="dev-exp")
    assert after["decision"] == "approve"
    assert after["rules"] == []
    assert decide(client, expiry + 60_000, device_id="dev-perm")["decision"] == "decline"
    assert audited(server, "update_list")[-1]["subject"] == "blocked_devices"


def test_list_items_are_added_with_an_expiry_and_removed_one_at_a_time(client: httpx.Client) -> None:
    client.put("/v1/lists/blocked_devices", json={"items": []})
    expiry = now_ms() + HOUR_MS
    added = client.post(
        "/v1/lists/blocked_devices/items",
        json={"items": [{"value": "dev-a", "expires_at": iso(expiry)}, "dev-b"]},
    )
    assert added.status_code == 200, added.text
    assert added.json()["items"] == [
        {"value": "dev-a", "expires_at_ms": expiry},
        {"value": "dev-b", "expires_at_ms": None},
    ]
    assert decide(client, now_ms(), device_id="dev-a")["decision"] == "decline"
    removed = client.delete("/v1/lists/blocked_devices/items/dev-a")
    assert removed.json()["items"] == [{"value": "dev-b", "expires_at_ms": None}]
    assert decide(client, now_ms(), device_id="dev-a")["decision"] == "approve"
    assert client.delete("/v1/lists/blocked_devices/items/dev-a").status_code == 404
    assert client.get("/v1/lists/nope").status_code == 404
    bad = client.post(
        "/v1/lists/blocked_devices/items", json={"items": ["x", {"value": "y", "expires_at": "soon"}]}
    )
    assert field_errors(bad) == ["items[1].expires_at"]


# --- snoozes -----------------------------------------------------------------------------------


def test_a_snooze_silences_exactly_its_rule_for_its_card_until_its_time(
    client: httpx.Client, server: RunningServer
) -> None:
    now = now_ms()
    until = now + HOUR_MS
    created = client.post(
        "/v1/snoozes",
        json={
            "entity_kind": "card",
            "card_number": CARD,
            "rule": "big",
            "until": iso(until),
            "reason": "called in",
        },
    )
    assert created.status_code == 201, created.text
    snooze = created.json()
    assert snooze["rule"] == "big"
    assert len(snooze["entity_id"]) == 32
    assert "4242" not in snooze["entity_id"]  # the fingerprint, never the number
    try:
        silenced = decide(client, now, 2000, card_number=CARD)
        assert silenced["decision"] == "approve"
        assert silenced["rules"] == []
        assert silenced["shadow_rules"] == ["big"]
        assert silenced["snoozes"] == [snooze["id"]]
        text = next(r["text"] for r in silenced["reasons"] if r["kind"] == "snooze")
        assert text.startswith(f"snoozed: rule big for card {snooze['entity_id'][:8]}")
        assert "called in" in text
        stored = client.get(f"/v1/transactions/{silenced['transaction_id']}").json()["decision"]
        assert stored["snoozes"] == [snooze["id"]]
        assert stored["shadow_rules"] == ["big"]
        other_card = decide(client, now, 2000, card_number=OTHER_CARD)
        assert (other_card["decision"], other_card["snoozes"]) == ("review", [])
        after = decide(client, until + 60_000, 2000, card_number=CARD)
        assert (after["decision"], after["snoozes"]) == ("review", [])
        other_rule = decide(client, now, 60000, card_number=CARD)
        assert other_rule["decision"] == "decline"
        assert other_rule["rules"] == ["huge"]
        assert [s["id"] for s in client.get("/v1/snoozes").json()["items"]] == [snooze["id"]]
        assert audited(server, "create_snooze")[-1]["subject"] == snooze["id"]
    finally:
        cancelled = client.delete(f"/v1/snoozes/{snooze['id']}")
    assert cancelled.json()["state"] == "cancelled"
    assert decide(client, now_ms(), 2000, card_number=CARD)["decision"] == "review"
    assert client.get("/v1/snoozes").json()["items"] == []
    everything = client.get("/v1/snoozes", params={"all": "true"}).json()["items"]
    assert [(s["id"], s["state"]) for s in everything] == [(snooze["id"], "cancelled")]
    assert audited(server, "cancel_snooze")[-1]["subject"] == snooze["id"]
    assert client.delete("/v1/snoozes/snz_nope").status_code == 404


def test_a_review_snooze_turns_review_into_approve_but_not_decline(client: httpx.Client) -> None:
    now = now_ms()
    snooze = client.post(
        "/v1/snoozes", json={"entity_kind": "user", "entity_id": "vip", "until": iso(now + HOUR_MS)}
    ).json()
    try:
        reviewed = decide(client, now, 2000, user_id="vip")
        assert (reviewed["decision"], reviewed["is_alert"], reviewed["snoozes"]) == (
            "approve",
            False,
            [snooze["id"]],
        )
        assert reviewed["rules"] == ["big"]
        declined = decide(client, now, 60000, user_id="vip")
        assert (declined["decision"], declined["snoozes"]) == ("decline", [])
        assert decide(client, now, 2000, user_id="not-vip")["decision"] == "review"
    finally:
        client.delete(f"/v1/snoozes/{snooze['id']}")


def test_snooze_requests_that_cannot_be_kept_name_the_field(client: httpx.Client) -> None:
    later = iso(now_ms() + HOUR_MS)
    base = {"entity_kind": "user", "entity_id": "u1", "until": later}
    assert field_errors(client.post("/v1/snoozes", json={**base, "until": "2020-01-01T00:00:00Z"})) == [
        "until"
    ]
    assert field_errors(
        client.post("/v1/snoozes", json={**base, "until": iso(now_ms() + 91 * 24 * HOUR_MS)})
    ) == ["until"]
    assert field_errors(client.post("/v1/snoozes", json={**base, "until": "2030-01-01T00:00:00"})) == [
        "until"
    ]
    assert field_errors(client.post("/v1/snoozes", json={**base, "rule": "no_such_rule"})) == ["rule"]
    assert field_errors(client.post("/v1/snoozes", json={**base, "entity_kind": "planet"})) == ["entity_kind"]
    card = {**base, "entity_kind": "card", "entity_id": CARD.replace(" ", "")}
    assert field_errors(client.post("/v1/snoozes", json=card)) == ["entity_id"]
    assert field_errors(client.post("/v1/snoozes", json={**base, "entity_id": None})) == ["entity_id"]
    assert field_errors(client.post("/v1/snoozes", json={**base, "card_number": CARD})) == ["card_number"]
    stored = [s["entity_id"] for s in client.get("/v1/snoozes", params={"all": "true"}).json()["items"]]
    assert CARD.replace(" ", "") not in stored  # a number sent as an id is refused, never stored


# --- rule set rollback -------------------------------------------------------------------------


def test_rollback_restores_an_earlier_rule_set_as_the_next_version(
    client: httpx.Client, server: RunningServer
) -> None:
    before = client.get("/v1/rules").json()["version"]
    lenient = RULES.replace('"amount > 1000"', '"amount > 5000"')
    assert client.put("/v1/rules", json={"yaml": lenient}).json()["version"] == before + 1
    assert decide(client, now_ms(), 2000)["decision"] == "approve"
    restored = client.post(f"/v1/rules/versions/{before}/activate")
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"] == before + 2
    assert restored.json()["restored"] == before
    again = decide(client, now_ms(), 2000)
    assert (again["decision"], again["rules"], again["ruleset_version"]) == ("review", ["big"], before + 2)
    versions = {v["version"]: v["active"] for v in client.get("/v1/rules").json()["versions"]}
    assert versions[before + 2] is True
    assert versions[before] is False
    last = audited(server, "rollback_rules")[-1]
    assert last["subject"] == f"version {before + 2}"
    assert f'"restored": {before}' in last["details"]
    assert client.post("/v1/rules/versions/999/activate").status_code == 404
