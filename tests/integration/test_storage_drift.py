"""Drift's stored figures on real SQLite and PostgreSQL: bin counts added up per day, version and
feature with the log position they hold, and the daily score distribution and alert rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from fraudstream.storage import Store
from fraudstream.storage.drift import DAY_MS

pytestmark = pytest.mark.integration

DAY_0 = 20_430 * DAY_MS  # 2025-12-08


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    url = (
        f"sqlite:///{tmp_path / 'test.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    found = Store(url)
    found.upgrade()
    with found.engine.begin() as connection:
        for table in ("drift_counts", "decisions"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
    return found


def test_counts_add_up_per_day_version_and_feature_and_remember_the_log_position(store: Store) -> None:
    assert store.drift_last_seq() == 0
    store.add_drift_counts({("2026-12-07", "m1"): {"amount": [1, 2, 3], "hour": [0, 4]}}, 10, 1)
    store.add_drift_counts(
        {("2026-12-07", "m1"): {"amount": [10, 0, 1]}, ("2026-12-06", "m1"): {"amount": [5, 5, 5]}}, 25, 2
    )
    store.add_drift_counts({("2026-12-07", "m2"): {"amount": [7, 7, 7]}}, 30, 3)
    assert store.drift_counts_of(["2026-12-07"], "m1") == {"amount": [11, 2, 4], "hour": [0, 4]}
    assert store.drift_counts_of(["2026-12-06", "2026-12-07"], "m1") == {"amount": [16, 7, 9], "hour": [0, 4]}
    assert store.drift_counts_of(["2026-12-07"], "m2") == {"amount": [7, 7, 7]}
    assert store.drift_counts_of(["2026-12-05"], "m1") == {}
    assert store.drift_last_seq() == 30
    store.add_drift_counts({}, 99, 4)  # nothing counted: nothing written, not even the position
    assert store.drift_last_seq() == 30


def decision_row(tid: str, score: int, kind: str, alert: bool, at_ms: int) -> dict[str, object]:
    return {
        "transaction_id": tid,
        "decision": kind,
        "score": score,
        "probability": None,
        "is_alert": alert,
        "reasons": "[]",
        "rules": "[]",
        "shadow_rules": "[]",
        "features": "{}",
        "model_version": None,
        "ruleset_version": 1,
        "latency_ms": None,
        "decided_at_ms": at_ms,
        "snoozes": None,
    }


def test_the_daily_figures_bucket_scores_by_ten_points_per_utc_day(store: Store) -> None:
    rows = [
        decision_row("a", 0, "approve", False, DAY_0 + 1),
        decision_row("b", 9, "approve", False, DAY_0 + DAY_MS - 1),  # the last ms of day 0
        decision_row("c", 65, "review", True, DAY_0 + DAY_MS),  # the first of day 1
        decision_row("d", 100, "decline", True, DAY_0 + 2 * DAY_MS + 5),
        decision_row("e", 90, "decline", True, DAY_0 + 2 * DAY_MS + 6),
        decision_row("f", 10, "challenge", False, DAY_0 + 2 * DAY_MS + 7),
        decision_row("old", 50, "review", True, DAY_0 - 1),  # before the first day asked for
    ]
    with store.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM decisions"))
        for row in rows:
            connection.execute(sa.insert(sa.table("decisions", *(sa.column(k) for k in row))), [row])
    days = store.daily_decisions(DAY_0 + 123, DAY_0 + 3 * DAY_MS + 9)
    assert [d["day"] for d in days] == ["2025-12-08", "2025-12-09", "2025-12-10", "2025-12-11"]
    assert [d["decisions"] for d in days] == [2, 1, 3, 0]
    assert [d["alerts"] for d in days] == [0, 1, 2, 0]
    assert [d["alert_rate"] for d in days] == [0.0, 1.0, 0.666667, None]
    assert days[0]["scores"] == [2, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert days[1]["scores"] == [0, 0, 0, 0, 0, 0, 1, 0, 0, 0]
    assert days[2]["scores"] == [0, 1, 0, 0, 0, 0, 0, 0, 0, 2]  # 90 and 100 share the last bucket
    assert days[2]["decisions_by_kind"] == {"approve": 0, "challenge": 1, "review": 0, "decline": 2}
    assert days[3]["day_ms"] == DAY_0 + 3 * DAY_MS
    assert json.dumps(days)  # JSON-ready as the API answers it
