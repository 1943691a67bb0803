"""Idle expiry: measured on each entity's own arrival times, it bounds memory and changes no feature."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.core.batch import TransactionBatch
from fraudstream.core.features import EntitySpec, FeatureConfig, FeatureState
from fraudstream.errors import StateError

DAY_MS = 86_400_000
#: 2026-07-01 and 2025-03-01 (UTC): today's traffic, and a user whose payments carry old dates.
NOW_MS = 1_782_864_000_000
DATED_2025_MS = 1_740_787_200_000

SMALL = FeatureConfig(
    entities=(EntitySpec("user", ("30s", "10m", "1h")), EntitySpec("terminal", ("10m", "1h"), labels=True)),
    label_windows=("10m", "1h"),
    idle_expiry="2h",
    buckets=4,
)


def payments(times: list[int], users: list[str], terminals: list[str] | None = None) -> TransactionBatch:
    return TransactionBatch.from_pydict(
        {
            "transaction_id": [f"{user}-{k}" for k, user in enumerate(users)],
            "timestamp": times,
            "user_id": users,
            "amount": [10.0 + k for k in range(len(users))],
            "currency": ["USD"] * len(users),
            "terminal_id": terminals or [f"T-{user}" for user in users],
            "merchant_id": ["m1"] * len(users),
        }
    )


def test_an_entity_with_old_dated_events_keeps_its_history_when_others_send_current_ones() -> None:
    """Two 2025-dated payments of one user, then current-dated payments of another, all arriving
    now; expiry then runs. The 2025 user's third payment gets the features it gets with no expiry at
    all: its history does not depend on the other user's event times."""
    history = payments(
        [DATED_2025_MS, DATED_2025_MS + 60_000, NOW_MS], ["dated-2025", "dated-2025", "current"]
    )
    arrived = [NOW_MS, NOW_MS + 1_000, NOW_MS + 2_000]
    then = payments([DATED_2025_MS + 120_000], ["dated-2025"])
    expired, kept = FeatureState(FeatureConfig()), FeatureState(FeatureConfig())
    for state in (expired, kept):
        state.compute(history, seen_ms=arrived)
    assert expired.expire(now_ms=NOW_MS + 60_000) == 0
    features = expired.compute(then, seen_ms=[NOW_MS + 120_000])
    np.testing.assert_array_equal(features.values, kept.compute(then, seen_ms=[NOW_MS + 120_000]).values)
    assert features.column("user.count_24h")[0] == 3


def test_an_entity_unseen_for_longer_than_idle_expiry_is_forgotten() -> None:
    state = FeatureState(FeatureConfig())
    state.compute(payments([DATED_2025_MS], ["gone"]), seen_ms=[NOW_MS])
    state.compute(payments([NOW_MS + 50 * DAY_MS], ["active"]), seen_ms=[NOW_MS + 50 * DAY_MS])
    assert state.expire(now_ms=NOW_MS + 50 * DAY_MS) >= 1
    assert state.entity_counts()["user"] == 1
    again = state.compute(payments([DATED_2025_MS + 1], ["gone"]), seen_ms=[NOW_MS + 50 * DAY_MS + 1])
    assert np.isnan(again.column("user.seconds_since_last")[0])
    assert again.column("user.count_24h")[0] == 1


def test_an_entity_seen_again_after_idle_expiry_starts_afresh_even_if_not_yet_forgotten() -> None:
    """The same features whether or not expiry ran in between: the kernel starts the entity over."""
    state = FeatureState(FeatureConfig())
    state.compute(payments([DATED_2025_MS], ["back"]), seen_ms=[NOW_MS])
    again = state.compute(payments([DATED_2025_MS + 60_000], ["back"]), seen_ms=[NOW_MS + 46 * DAY_MS])
    assert np.isnan(again.column("user.seconds_since_last")[0])
    assert again.column("user.count_24h")[0] == 1


def expire_while_scoring(seed: int, expiries: list[int]) -> int:
    """Score a stream twice, one state expiring after the events at ``expiries``, the other never;
    assert they give the same features; return how many entities the expiring one forgot.

    Events are dated anywhere (two users' payments are dated days or a year back) and arrive a few
    minutes apart, now and then after a pause longer than ``idle_expiry``.
    """
    rng = np.random.default_rng(seed)
    n = 200
    users = rng.integers(0, 6, n)
    dated_back = np.array([0, 400, 0, 3, 0, 0])[users] * DAY_MS
    pauses = np.where(rng.random(n) < 0.05, 3 * 3_600_000, 0)
    arrived = NOW_MS + np.cumsum(rng.exponential(10 * 60_000, n).astype(np.int64) + pauses)
    times = arrived - dated_back - rng.integers(0, 60_000, n)
    batch = payments(times.tolist(), [f"u{k}" for k in users], [f"T{k % 3}" for k in users])
    expiring, kept = FeatureState(SMALL), FeatureState(SMALL)
    cuts = sorted({0, *(k % n + 1 for k in expiries), n})
    dropped = 0
    for start, stop in zip(cuts, cuts[1:]):
        part, seen = batch.slice(start, stop), arrived[start:stop]
        np.testing.assert_array_equal(expiring.compute(part, seen).values, kept.compute(part, seen).values)
        dropped += expiring.expire(now_ms=int(arrived[stop - 1]))
    return dropped


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), expiries=st.lists(st.integers(0, 199), max_size=8))
def test_expiry_at_any_moment_changes_no_feature(seed: int, expiries: list[int]) -> None:
    expire_while_scoring(seed, expiries)


def test_expiry_while_scoring_forgets_idle_entities_and_changes_no_feature() -> None:
    assert expire_while_scoring(7, list(range(0, 200, 10))) > 0


def test_seen_times_must_be_one_per_transaction() -> None:
    with pytest.raises(StateError, match="one per transaction"):
        FeatureState(SMALL).compute(payments([NOW_MS, NOW_MS], ["a", "b"]), seen_ms=[NOW_MS])


def test_without_seen_times_expiry_follows_event_times_as_before() -> None:
    """Replays of history (training, backtests) pass no arrival times: the events' own times stand in."""
    state = FeatureState(FeatureConfig())
    state.compute(payments([0, 50 * DAY_MS], ["old", "new"]))
    assert state.expire(now_ms=50 * DAY_MS) == 2  # user "old", its terminal
    assert state.entity_counts()["user"] == 1
