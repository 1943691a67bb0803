"""Label feedback that respects the label delay: a window ending ``label_delay`` back counts only
transactions at least that old, whatever labels the state has been told."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from factories import fraud_labels
from fraudstream.core.batch import TransactionBatch
from fraudstream.core.features import EntitySpec, FeatureConfig, FeatureState, parse_duration_ms
from fraudstream.errors import ConfigError

DELAYED = FeatureConfig(
    entities=(EntitySpec("user", ("10m", "1h")), EntitySpec("terminal", ("10m", "1h"), labels=True)),
    label_windows=("10m", "1h"),
    label_delay="30m",
    idle_expiry="3h",
    buckets=4,
)


def stream(seed: int, n: int) -> tuple[TransactionBatch, list[bool]]:
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.exponential(60_000, n)).astype(np.int64) + 1_700_000_000_000
    batch = TransactionBatch.from_pydict(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "timestamp": ts.tolist(),
            "user_id": [f"u{k}" for k in rng.integers(0, 5, n)],
            "amount": np.round(rng.lognormal(3, 1, n), 2).tolist(),
            "currency": ["USD"] * n,
            "terminal_id": [f"T{k}" for k in rng.integers(0, 3, n)],
        }
    )
    return batch, (rng.random(n) < 0.3).tolist()


def run(
    batch: TransactionBatch, labelled: list[bool], config: FeatureConfig = DELAYED
) -> dict[str, list[float]]:
    """Score one event at a time; a labelled fraud's label is applied the moment it is scored (the
    earliest a label could ever arrive)."""
    state = FeatureState(config)
    names = [n for n in config.feature_names if ".fraud_" in n]
    out: dict[str, list[float]] = {n: [] for n in names}
    for i in range(len(batch)):
        features = state.compute(batch.slice(i, i + 1))
        for n in names:
            out[n].append(float(features.column(n)[0]))
        if labelled[i]:
            state.apply_labels(fraud_labels(batch, [i]))
    return out


def reference(
    batch: TransactionBatch, labelled: list[bool], config: FeatureConfig = DELAYED
) -> dict[str, list[float]]:
    """Obviously-correct label windows: at time t, the window W holds the terminal's transactions whose
    bucket floor(s / g) (g = W / buckets) is one of the ``buckets`` buckets ending with the last bucket
    that lies wholly at or before t - delay."""
    ts = batch.timestamp_ms.tolist()
    terminals = batch.strings("terminal_id").to_pylist()
    delay = parse_duration_ms(config.label_delay)
    idle = parse_duration_ms(config.idle_expiry)
    past: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    expected: dict[str, list[float]] = defaultdict(list)
    for i, key in enumerate(terminals):
        seen = past[key]
        if seen and ts[i] - max(s for s, _ in seen) >= idle:
            seen.clear()
        seen.append((ts[i], False))
        for w in config.label_windows:
            g = parse_duration_ms(w) // config.buckets
            end = (ts[i] - delay + 1) // g - 1
            inside = [fraud for s, fraud in seen if end - config.buckets < s // g <= end]
            frauds = sum(inside)
            expected[f"terminal.fraud_count_{w}"].append(frauds)
            expected[f"terminal.fraud_rate_{w}"].append(frauds / len(inside) if inside else math.nan)
        if labelled[i]:
            seen[-1] = (ts[i], True)
    return expected


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 150))
def test_delayed_label_windows_match_a_slow_reference(seed: int, n: int) -> None:
    batch, frauds = stream(seed, n)
    got, want = run(batch, frauds), reference(batch, frauds)
    for name, values in want.items():
        np.testing.assert_allclose(got[name], values, rtol=1e-6, equal_nan=True, err_msg=name)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.floats(0.1, 0.9))
def test_label_windows_never_see_a_fraud_younger_than_the_delay(seed: int, cut: float) -> None:
    """Labels that arrive at once, for every fraud, or only for the frauds at least ``label_delay``
    before some time T: every transaction up to T gets the same label-window features. A window that
    counted a transaction younger than the delay (even one within the same bucket) would differ."""
    batch, frauds = stream(seed, 150)
    ts = batch.timestamp_ms
    t_cut = int(ts[0] + cut * (ts[-1] - ts[0]))
    delay = parse_duration_ms(DELAYED.label_delay)
    early_only = [f and int(s) <= t_cut - delay for f, s in zip(frauds, ts.tolist())]
    everything, restricted = run(batch, frauds), run(batch, early_only)
    upto = int(np.searchsorted(ts, t_cut, side="right"))
    # Without a fraud before the cut both runs are trivially equal: such an example proves nothing.
    assume(any(frauds[:upto]))
    for name in everything:
        np.testing.assert_array_equal(everything[name][:upto], restricted[name][:upto], err_msg=name)


def test_a_fraud_counts_once_it_is_older_than_the_delay_and_not_before() -> None:
    state = FeatureState(DELAYED)
    minute = 60_000
    batch = TransactionBatch.from_pydict(
        {
            "transaction_id": ["t0", "t1", "t2"],
            "timestamp": [0, 20 * minute, 46 * minute],
            "user_id": ["a", "b", "c"],
            "amount": [1.0, 2.0, 3.0],
            "terminal_id": ["T"] * 3,
        }
    )
    state.compute(batch.slice(0, 1))
    state.apply_labels(fraud_labels(batch, [0]))  # known at once, yet only 30 minutes later may it count
    at_20 = state.compute(batch.slice(1, 2))
    assert at_20.column("terminal.fraud_count_1h")[0] == 0
    at_46 = state.compute(batch.slice(2, 3))
    assert at_46.column("terminal.fraud_count_1h")[0] == 1
    assert at_46.column("terminal.seconds_since_last_fraud")[0] == 46 * 60


def test_label_delay_is_checked_against_idle_expiry() -> None:
    with pytest.raises(ConfigError, match="shorten the label delay"):
        FeatureConfig(label_delay="30d")  # 30 days + the 28-day window outlive the 45-day expiry
    with pytest.raises(ConfigError, match="unit s, m, h or d"):
        FeatureConfig(label_delay="a week")
