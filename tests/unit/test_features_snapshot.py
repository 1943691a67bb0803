"""Feature snapshots across format versions: the current one round-trips, others are refused clearly."""

from __future__ import annotations

import numpy as np
import pytest

from factories import fraud_labels
from fraudstream.core.batch import TransactionBatch
from fraudstream.core.features import FORMAT_VERSION, EntitySpec, FeatureConfig, FeatureState
from fraudstream.errors import StateError

CONFIG = FeatureConfig(
    entities=(EntitySpec("user", ("30s", "10m", "1h")), EntitySpec("terminal", ("10m", "1h"), labels=True)),
    label_windows=("10m", "1h"),
    idle_expiry="2h",
    buckets=4,
)


def stream() -> TransactionBatch:
    rng = np.random.default_rng(11)
    n = 60
    ts = np.cumsum(rng.exponential(20_000, n)).astype(np.int64) + 1_700_000_000_000
    return TransactionBatch.from_pydict(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "timestamp": ts.tolist(),
            "user_id": [f"u{k}" for k in rng.integers(0, 3, n)],
            "amount": np.round(rng.lognormal(3, 1, n), 2).tolist(),
            "currency": ["USD"] * n,
            "terminal_id": [f"T{k}" for k in rng.integers(0, 3, n)],
            "merchant_id": [f"m{k}" for k in rng.integers(0, 4, n)],
            "device_id": [f"d{k}" for k in rng.integers(0, 5, n)],
            "country": [f"C{k}" for k in rng.integers(0, 3, n)],
            "lat": rng.uniform(-60, 60, n).tolist(),
            "lon": rng.uniform(-170, 170, n).tolist(),
        }
    )


def test_an_older_format_is_refused_with_the_way_out() -> None:
    """Format 3 did not keep when each entity's events reached the runtime, which format 4's idle
    expiry measures (and format 2 kept label windows ending at the entity's clock): an old snapshot
    is refused, and the message says to replay the event log (what the embedded runtime then does by
    itself)."""
    state = FeatureState(CONFIG)
    batch = stream()
    state.compute(batch.slice(0, 40))
    state.apply_labels(fraud_labels(batch, [3], label_time=0))
    data = state.snapshot()
    assert int.from_bytes(data[6:8], "little") == FORMAT_VERSION == 5
    for version in (2, 3):
        older = data[:6] + version.to_bytes(2, "little") + data[8:]
        with pytest.raises(StateError, match=rf"format {version} cannot be read.*replay the event log"):
            FeatureState.restore(older, CONFIG)
    again = FeatureState.restore(data, CONFIG)
    # Format 4 is format 5 without declared aggregations: a state that declares none restores it.
    format_4 = FeatureState.restore(data[:6] + (4).to_bytes(2, "little") + data[8:], CONFIG)
    expected = state.compute(batch.slice(40, 60)).values
    np.testing.assert_array_equal(again.compute(batch.slice(40, 60)).values, expected)
    np.testing.assert_array_equal(format_4.compute(batch.slice(40, 60)).values, expected)


def test_restore_refuses_a_format_newer_than_it_reads() -> None:
    data = FeatureState(CONFIG).snapshot()
    newer = data[:6] + (FORMAT_VERSION + 1).to_bytes(2, "little") + data[8:]
    with pytest.raises(StateError, match="replay the event log"):
        FeatureState.restore(newer, CONFIG)
