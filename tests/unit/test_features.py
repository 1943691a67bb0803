"""Feature state: windows against a slow reference, batching, snapshots, labels, bounds."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factories import fraud_labels, one_event
from fraudstream.core.batch import LabelBatch, TransactionBatch
from fraudstream.core.features import EntitySpec, FeatureConfig, FeatureState, kernels, parse_duration_ms
from fraudstream.errors import ConfigError, StateError

SMALL = FeatureConfig(
    entities=(EntitySpec("user", ("30s", "10m", "1h")), EntitySpec("terminal", ("10m", "1h"), labels=True)),
    label_windows=("10m", "1h"),
    idle_expiry="2h",
    buckets=4,
)


def make_stream(seed: int, n: int, users: int = 5, disorder_ms: int = 0) -> TransactionBatch:
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.exponential(20_000, n)).astype(np.int64) + 1_700_000_000_000
    if disorder_ms:
        ts = ts - rng.integers(0, disorder_ms, n)
    return TransactionBatch.from_pydict(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "timestamp": ts.tolist(),
            "user_id": [f"u{k}" for k in rng.integers(0, users, n)],
            "amount": np.round(rng.lognormal(3, 1, n), 2).tolist(),
            "currency": ["USD"] * n,
            "terminal_id": [None if k == 0 else f"T{k}" for k in rng.integers(0, 4, n)],
            "merchant_id": [f"m{k}" for k in rng.integers(0, 6, n)],
            "lat": rng.uniform(-60, 60, n).tolist(),
            "lon": rng.uniform(-170, 170, n).tolist(),
        }
    )


def reference_windows(batch: TransactionBatch, config: FeatureConfig) -> dict[str, list[float]]:
    """Obviously-correct windows: for each event, look at every earlier event of the same entity.

    A window of length W with B buckets of width g = W/B covers the events whose bucket
    floor(t/g) lies in (head - B, head], head being the latest bucket the entity has seen.
    """
    ts = batch.timestamp_ms.tolist()
    amounts = batch.amount.tolist()
    expected: dict[str, list[float]] = defaultdict(list)
    idle = parse_duration_ms(config.idle_expiry)
    for spec in config.entities:
        keys = batch.strings(spec.column).to_pylist()
        history: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, key in enumerate(keys):
            if key is None:
                for name in config.entity_feature_names(spec):
                    if "_mean_" not in name and "zscore" not in name and "fraud" not in name:
                        expected[name].append(math.nan)
                continue
            past = history[key]
            if past and ts[i] - max(t for t, _ in past) >= idle:
                past.clear()
            for window, width in zip(spec.windows, spec.window_ms):
                g = width // config.buckets
                head = max([t // g for t, _ in past] + [ts[i] // g])
                inside = [a for t, a in past if head - config.buckets < t // g <= head]
                if head - config.buckets < ts[i] // g:
                    inside.append(amounts[i])
                expected[f"{spec.name}.count_{window}"].append(len(inside))
                expected[f"{spec.name}.amount_sum_{window}"].append(sum(inside))
                expected[f"{spec.name}.amount_max_{window}"].append(max(inside) if inside else math.nan)
            longest = spec.window_ms[spec.windows.index(spec.longest)] // config.buckets
            head = max([t // longest for t, _ in past] + [ts[i] // longest])
            prior = [a for t, a in past if head - config.buckets < t // longest <= head]
            mean = sum(prior) / len(prior) if prior else math.nan
            expected[f"{spec.name}.amount_ratio_{spec.longest}"].append(
                amounts[i] / mean if prior else math.nan
            )
            expected[f"{spec.name}.seconds_since_last"].append(
                max(0, ts[i] - max(t for t, _ in past)) / 1000 if past else math.nan
            )
            past.append((ts[i], amounts[i]))
    return expected


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 120), disorder=st.sampled_from([0, 5_000, 90_000]))
def test_windows_match_a_slow_reference_on_random_streams(seed: int, n: int, disorder: int) -> None:
    batch = make_stream(seed, n, disorder_ms=disorder)
    features = FeatureState(SMALL).compute(batch)
    for name, values in reference_windows(batch, SMALL).items():
        np.testing.assert_allclose(features.column(name), values, rtol=2e-5, atol=1e-3, err_msg=name)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    cuts=st.lists(st.integers(1, 199), max_size=8),
    disorder=st.sampled_from([0, 30_000]),
)
def test_splitting_a_stream_into_batches_of_any_size_gives_identical_features(
    seed: int, cuts: list[int], disorder: int
) -> None:
    batch = make_stream(seed, 200, disorder_ms=disorder)
    whole = FeatureState(FeatureConfig()).compute(batch).values
    state = FeatureState(FeatureConfig(), capacity=1)
    bounds = [0, *sorted(set(cuts)), 200]
    parts = [state.compute(batch.slice(a, b)).values for a, b in zip(bounds[:-1], bounds[1:])]
    np.testing.assert_array_equal(np.vstack(parts), whole)


def test_a_batch_larger_than_a_kernel_block_gives_the_features_of_small_batches() -> None:
    """The kernels go through a large batch block by block; entities recur across the blocks."""
    batch = make_stream(5, 2_600, users=40, disorder_ms=1_800_000)
    whole = FeatureState(FeatureConfig()).compute(batch)
    state = FeatureState(FeatureConfig())
    parts = [state.compute(batch.slice(a, min(a + 333, 2_600))) for a in range(0, 2_600, 333)]
    np.testing.assert_array_equal(whole.values, np.vstack([p.values for p in parts]))
    np.testing.assert_array_equal(whole.late, np.concatenate([p.late for p in parts]))
    assert whole.late.any()
    assert np.nanmax(whole.column("user.count_24h")) > 50


def test_state_grows_in_place_or_by_copy_without_losing_an_entity() -> None:
    """Growing extends the buffers in place, or copies them while a snapshot's pieces (views of the
    live buffers) pin them; either way every entity's history carries on, and the held pieces stay
    readable."""
    batch = make_stream(3, 600, users=400)
    whole = FeatureState(FeatureConfig()).compute(batch).values
    free = FeatureState(FeatureConfig(), capacity=1)
    pinned = FeatureState(FeatureConfig(), capacity=1)
    held = []
    free_parts, pinned_parts = [], []
    for a in range(0, 600, 50):
        chunk = batch.slice(a, a + 50)
        free_parts.append(free.compute(chunk).values)
        pieces = pinned.snapshot_parts()
        held.append((pieces, len(b"".join(pieces))))
        pinned_parts.append(pinned.compute(chunk).values)
    np.testing.assert_array_equal(np.vstack(free_parts), whole)
    np.testing.assert_array_equal(np.vstack(pinned_parts), whole)
    assert free.entity_counts()["user"] == pinned.entity_counts()["user"] > 300
    assert [len(b"".join(pieces)) for pieces, _ in held] == [size for _, size in held]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), at=st.integers(0, 150))
def test_snapshot_restore_then_continue_equals_an_uninterrupted_run(seed: int, at: int) -> None:
    batch = make_stream(seed, 150, users=8)
    labels = fraud_labels(batch, [0], label_time=0)
    config = FeatureConfig()
    straight = FeatureState(config)
    first = straight.compute(batch.slice(0, at)).values
    straight.apply_labels(labels)
    expected = np.vstack([first, straight.compute(batch.slice(at, 150)).values])

    before = FeatureState(config)
    head = before.compute(batch.slice(0, at)).values
    before.apply_labels(labels)
    after = FeatureState.restore(before.snapshot(), config)
    np.testing.assert_array_equal(np.vstack([head, after.compute(batch.slice(at, 150)).values]), expected)


def test_restore_refuses_another_format_version_or_configuration() -> None:
    data = FeatureState(SMALL).snapshot()
    with pytest.raises(StateError, match="another feature configuration"):
        FeatureState.restore(data, FeatureConfig())
    tampered = data[:6] + (99).to_bytes(2, "little") + data[8:]
    with pytest.raises(StateError, match="format 99"):
        FeatureState.restore(tampered, SMALL)
    with pytest.raises(StateError, match="truncated"):
        FeatureState.restore(data[:5], SMALL)


def test_a_fraud_label_counts_for_its_terminal_only_from_the_moment_it_is_applied() -> None:
    state = FeatureState(FeatureConfig())
    day = 86_400_000
    state.compute(one_event(0, terminal_id="T1", merchant_id="M1"))
    before = state.compute(one_event(day, user_id="v", terminal_id="T1", merchant_id="M1"))
    assert before.column("terminal.fraud_count_7d")[0] == 0
    state.apply_labels(
        LabelBatch.from_pydict(
            {
                "transaction_id": ["u1-0-10.0"],
                "is_fraud": [True],
                "label_time": [day],
                "transaction_time": [0],
                "terminal_id": ["T1"],
                "merchant_id": ["M1"],
            }
        )
    )
    after = state.compute(one_event(day + 1000, user_id="w", terminal_id="T1", merchant_id="M1"))
    assert after.column("terminal.fraud_count_7d")[0] == 1
    assert after.column("terminal.fraud_rate_7d")[0] == pytest.approx(1 / 3)
    assert after.column("merchant.fraud_count_28d")[0] == 1
    # Ten days later the labelled transaction has left the 7-day window but not the 28-day one.
    later = state.compute(one_event(10 * day, user_id="x", terminal_id="T1"))
    assert later.column("terminal.fraud_count_7d")[0] == 0
    assert later.column("terminal.fraud_count_28d")[0] == 1


def test_travel_speed_and_first_seen_flags_follow_the_users_history() -> None:
    state = FeatureState(FeatureConfig())
    ny = state.compute(one_event(0, lat=40.71, lon=-74.01, device_id="d1", country="US", merchant_id="m1"))
    assert math.isnan(ny.column("geo.speed_kmh")[0])
    assert ny.column("user.new_device")[0] == 1
    tokyo = state.compute(
        one_event(600_000, lat=35.68, lon=139.69, device_id="d1", country="JP", merchant_id="m1")
    )
    assert tokyo.column("geo.distance_km")[0] == pytest.approx(10_850, rel=0.01)
    assert tokyo.column("geo.speed_kmh")[0] == pytest.approx(65_100, rel=0.01)
    assert tokyo.column("user.new_device")[0] == 0
    assert tokyo.column("user.new_country")[0] == 1
    assert tokyo.column("user.new_merchant")[0] == 0
    assert tokyo.column("user.distinct_countries_24h")[0] == 2


def test_a_burst_of_six_in_thirty_seconds_counts_six() -> None:
    state = FeatureState(FeatureConfig())
    counts = [state.compute(one_event(1_000_000 + 3000 * i)).column("user.count_30s")[0] for i in range(6)]
    assert counts == [1, 2, 3, 4, 5, 6]


def test_late_events_are_scored_counted_and_flagged() -> None:
    state = FeatureState(FeatureConfig())
    state.compute(one_event(3_600_000))
    late = state.compute(one_event(3_600_000 - 20 * 60_000))
    assert bool(late.late[0])
    assert late.column("user.count_1h")[0] == 2
    assert late.column("user.seconds_since_last")[0] == 0
    on_time = state.compute(one_event(3_600_000 + 1000))
    assert not on_time.late[0]
    assert on_time.column("user.count_1h")[0] == 3


def test_state_per_entity_stays_within_one_kilobyte_for_the_default_windows() -> None:
    sizes = FeatureState(FeatureConfig()).bytes_per_entity()
    assert max(sizes.values()) <= 1024, sizes


def test_idle_entities_expire_and_come_back_as_new() -> None:
    state = FeatureState(FeatureConfig())
    state.compute(one_event(0, user_id="old"))
    state.compute(one_event(50 * 86_400_000, user_id="new"))
    assert state.expire(now_ms=50 * 86_400_000) >= 1
    assert state.entity_counts()["user"] == 1
    again = state.compute(one_event(50 * 86_400_000 + 1, user_id="old"))
    assert math.isnan(again.column("user.seconds_since_last")[0])


def test_a_missing_entity_gives_missing_features_not_errors() -> None:
    features = FeatureState(FeatureConfig()).compute(one_event(0))
    assert math.isnan(features.column("device.count_10m")[0])
    assert math.isnan(features.column("user.new_device")[0])


def test_configuration_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="unit s, m, h or d"):
        parse_duration_ms("10 minutes")
    with pytest.raises(ConfigError, match="'user' is required"):
        FeatureConfig(entities=(EntitySpec("card", ("1h",)),))
    with pytest.raises(ConfigError, match="idle_expiry"):
        FeatureConfig(idle_expiry="1d")


def test_hashing_reads_sliced_arrow_arrays_correctly() -> None:
    from fraudstream.core.features import hash_keys

    values = pa.array(["a", "bb", None, "a", "ccc"])
    assert hash_keys(values.slice(3, 2)).tolist() == hash_keys(pa.array(["a", "ccc"])).tolist()
    assert hash_keys(values)[2] == 0


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), at=st.integers(1, 80), size=st.integers(1, 5))
def test_preview_gives_the_features_of_compute_and_leaves_the_state_untouched(
    seed: int, at: int, size: int
) -> None:
    batch = make_stream(seed, 100, users=6)
    config = FeatureConfig()
    state = FeatureState(config, capacity=2)
    state.compute(batch.slice(0, at))
    before = state.snapshot()
    probe = batch.slice(at, at + size)
    previewed = state.preview(probe)
    assert state.snapshot() == before
    np.testing.assert_array_equal(previewed.values, state.compute(probe).values)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(-(2**53) + 1, 2**53 - 1), min_size=1, max_size=64),
    st.lists(st.integers(1, 10**12), min_size=1, max_size=8),
    st.integers(2, 64),
)
def test_bucket_numbers_are_exact_floor_divisions(times: list[int], lengths: list[int], ring: int) -> None:
    ts = np.array(times, dtype=np.int64)
    length = np.array(lengths, dtype=np.int64)
    numbers, positions = kernels.bucket_numbers(ts, length, ring)
    np.testing.assert_array_equal(numbers, ts[:, None] // length[None, :])
    np.testing.assert_array_equal(positions, numbers % ring)
