"""Storage on real SQLite files and a real PostgreSQL database: migrations, atomic idempotent writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from fraudstream.errors import SinkError
from fraudstream.storage import Store
from fraudstream.storage.store import EVENT_COLUMNS

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    found = Store(url)
    found.upgrade()
    with found.engine.begin() as connection:
        for table in ("alerts", "decisions", "labels", "transactions", "audit_log"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
    return found


def stored_transaction(tid: str, user: str = "u1", amount: float = 10.0, ts: int = 1000) -> dict[str, object]:
    """A row of the transactions table as the store writes it (not a request body: see factories)."""
    row: dict[str, object] = dict.fromkeys(EVENT_COLUMNS)
    row.update(
        transaction_id=tid, user_id=user, timestamp_ms=ts, amount=amount, currency="USD", terminal_id="T1"
    )
    return {**row, "body_hash": "h" + tid, "received_at_ms": ts}


def decision(tid: str, score: int = 10, verdict: str = "approve", alert: bool = False) -> dict[str, object]:
    return {
        "transaction_id": tid,
        "decision": verdict,
        "score": score,
        "probability": None,
        "is_alert": alert,
        "reasons": "[]",
        "rules": json.dumps(["large_amount"] if alert else []),
        "shadow_rules": "[]",
        "features": "{}",
        "model_version": None,
        "ruleset_version": 1,
        "latency_ms": 1.5,
        "decided_at_ms": 5000,
    }


def alert(tid: str, score: int) -> dict[str, object]:
    return {
        "transaction_id": tid,
        "user_id": "u1",
        "amount": 10.0,
        "score": score,
        "decision": "review",
        "reasons": "[]",
        "status": "open",
        "assignee": None,
        "verdict": None,
        "note": None,
        "created_at_ms": 5000,
        "updated_at_ms": 5000,
    }


def test_migrations_are_idempotent(store: Store) -> None:
    store.upgrade()
    store.upgrade()
    assert store.last_seq() == 0


def test_a_decision_without_a_latency_is_stored_and_left_out_of_the_latency_figures(store: Store) -> None:
    """Kafka mode: a worker decided, the server did not time it; its latency is unknown, not 0."""
    store.write_scored(
        [stored_transaction("timed", ts=1000), stored_transaction("untimed", ts=2000)],
        [decision("timed"), {**decision("untimed"), "latency_ms": None}],
        [],
    )
    stats = store.stats(10_000)
    assert stats["transactions"] == 2
    assert stats["latency_ms"] == {"p50": 1.5, "p99": 1.5}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upgrading_a_database_of_the_previous_version_keeps_its_decisions(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    if kind == "sqlite":
        older = Store(f"sqlite:///{tmp_path / 'old.db'}")
    else:
        older = Store(request.getfixturevalue("empty_postgres_url"))
    config = Config()
    config.set_main_option("script_location", str(resources.files("fraudstream.storage") / "migrations"))
    with older.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    older.write_scored([stored_transaction("before", ts=1000)], [decision("before")], [])
    # What the Kafka-mode sink stored for a worker's decision then: latency 0, meaning "not timed".
    from_kafka = {**stored_transaction("worker", ts=1200), "body_hash": "kafka"}
    older.write_scored([from_kafka], [{**decision("worker"), "latency_ms": 0.0}], [])
    with pytest.raises(SinkError):  # latency was required then
        older.write_scored([stored_transaction("x", ts=1500)], [{**decision("x"), "latency_ms": None}], [])
    older.upgrade()
    older.write_scored(
        [stored_transaction("after", ts=2000)], [{**decision("after"), "latency_ms": None}], []
    )
    assert older.stats(10_000)["transactions"] == 3
    assert older.stats(10_000)["latency_ms"] == {"p50": 1.5, "p99": 1.5}  # the old 0 became unknown
    assert older.get_transaction("worker")["decision"]["latency_ms"] is None
    older.close()


def test_a_replayed_write_never_duplicates(store: Store) -> None:
    txs = [stored_transaction(f"t{i}", ts=1000 + i) for i in range(1000)]
    store.write_scored(txs, [decision(f"t{i}") for i in range(1000)], [alert("t1", 70)])
    store.write_scored(txs[:10], [decision(f"t{i}") for i in range(10)], [alert("t1", 70)])
    assert store.stats(10_000)["transactions"] == 1000
    assert len(store.list_alerts()) == 1
    # Sequence numbers are the log order (on PostgreSQL they do not restart after a DELETE).
    assert [e["transaction_id"] for e in store.events_after(store.last_seq() - 2, 10)] == ["t998", "t999"]


def test_a_failing_write_leaves_nothing_behind(store: Store) -> None:
    with pytest.raises(SinkError):
        store.write_scored([stored_transaction("ok")], [decision("ok"), {"transaction_id": "bad"}], [])
    assert store.get_transaction("ok") is None


def test_filters_and_cursor_pagination_walk_the_rows_in_order(store: Store) -> None:
    store.write_scored(
        [stored_transaction(f"t{i}", user="a" if i % 2 else "b", ts=1000 + i) for i in range(25)],
        [decision(f"t{i}", score=i * 4, verdict="review" if i % 5 == 0 else "approve") for i in range(25)],
        [],
    )
    seen, cursor = [], None
    while True:
        page, cursor = store.list_transactions(user_id="a", limit=5, cursor=cursor)
        seen += [p["transaction_id"] for p in page]
        if cursor is None:
            break
    assert seen == [f"t{i}" for i in range(23, 0, -2)]
    reviews, _ = store.list_transactions(decision="review", min_score=40)
    assert [r["transaction_id"] for r in reviews] == ["t20", "t15", "t10"]


def test_a_review_writes_status_label_and_audit_together(store: Store) -> None:
    store.write_scored([stored_transaction("t1")], [decision("t1", 80, "review", True)], [alert("t1", 80)])
    label = store.review_alert(
        "t1", verdict="fraud", note="confirmed", actor="ana", status="closed", now_ms=9000
    )
    assert label is not None
    assert label["terminal_id"] == "T1"
    assert label["transaction_time"] == 1000
    found = store.get_transaction("t1")
    assert found is not None
    assert found["alert"]["status"] == "closed"
    assert found["labels"][0]["actor"] == "ana"
    assert store.audit_entries("t1")[0]["action"] == "review_alert"
    assert store.stats(10_000)["confirmed_fraud"] == 1


def test_api_keys_are_stored_as_hashes(store: Store) -> None:
    raw = store.create_api_key("ops", "analyst", 0)
    assert store.authenticate(raw) == ("ops", "analyst")
    with store.engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT key_hash FROM api_keys")).scalars().all()
    assert raw not in stored


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_migrations_build_exactly_the_tables_the_code_declares(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """tables.py (what the code queries) and the migrations (what a database holds) agree: alembic's
    own comparison finds no table, column or index that one has and the other lacks. On an empty
    database of its own: the shared one also holds tables other tests made (Kafka checkpoints)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from fraudstream.storage.tables import metadata

    url = (
        f"sqlite:///{tmp_path / 'fresh.db'}"
        if dialect == "sqlite"
        else request.getfixturevalue("empty_postgres_url")
    )
    store = Store(url)
    store.upgrade()
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    # 0005's expression index behind the minute views on PostgreSQL: SQL only, never queried by name.
    expected = [d for d in differences if d[0] == "remove_index" and d[1].name == "ix_decisions_minute"]
    store.close()
    assert [d for d in differences if d not in expected] == []
