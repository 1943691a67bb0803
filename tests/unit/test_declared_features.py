"""Feature aggregations declared in YAML: equal to a pandas reference, the same whatever the batching,
kept by snapshots, and every problem of a file named with its entry and line."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factories import transaction_batch
from fraudstream.core.batch import TransactionBatch
from fraudstream.core.features import FeatureConfig, FeatureState, parse_duration_ms
from fraudstream.core.features.declared import declared_feature_errors, with_declared_features
from fraudstream.errors import ConfigError, StateError


def declared(window: str, buckets: int = 6, limit: int = 16) -> FeatureConfig:
    text = f"""distinct_limit: {limit}
aggregations:
  - {{entity: user, function: count, field: amount, window: {window}}}
  - {{entity: user, function: sum, field: amount, window: {window}}}
  - {{entity: user, function: mean, field: amount, window: {window}}}
  - {{entity: user, function: max, field: amount, window: {window}}}
  - {{entity: user, function: count, field: attributes.points, window: {window}}}
  - {{entity: user, function: sum, field: attributes.points, window: {window}}}
  - {{entity: user, function: max, field: attributes.points, window: {window}}}
  - {{entity: user, function: distinct, field: device, window: {window}}}
  - {{entity: merchant, function: distinct, field: attributes.shop, window: {window}, name: shops}}
"""
    return with_declared_features(text, FeatureConfig(buckets=buckets))


@st.composite
def histories(draw: Any) -> pd.DataFrame:
    """Events of a few users in time order (several at one time too), with amounts, devices, an
    optional numeric attribute and an optional text one."""
    n = draw(st.integers(1, 60))
    gaps = draw(st.lists(st.integers(0, 900_000), min_size=n, max_size=n))
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "timestamp": 1_700_000_000_000 + np.cumsum(gaps),
            "user_id": draw(st.lists(st.sampled_from(["u0", "u1", "u2"]), min_size=n, max_size=n)),
            "merchant_id": draw(st.lists(st.sampled_from(["m0", "m1"]), min_size=n, max_size=n)),
            "amount": [c / 100 for c in draw(st.lists(st.integers(0, 100_000), min_size=n, max_size=n))],
            "device_id": draw(
                st.lists(st.sampled_from(["d0", "d1", "d2", "d3", None]), min_size=n, max_size=n)
            ),
            "points": draw(st.lists(st.none() | st.integers(-50, 500), min_size=n, max_size=n)),
            "shop": draw(st.lists(st.none() | st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n)),
        }
    )


def batch_of(frame: pd.DataFrame) -> TransactionBatch:
    rows = []
    for row in frame.to_dict("records"):
        extras = {
            k: row[k]
            for k in ("points", "shop")
            if isinstance(row[k], str | int | float) and row[k] == row[k]
        }
        rows.append(
            {
                **{k: row[k] for k in ("transaction_id", "timestamp", "user_id", "merchant_id", "amount")},
                "device_id": row["device_id"] if isinstance(row["device_id"], str) else None,
                "attributes": orjson.dumps(extras).decode() if extras else None,
            }
        )
    return transaction_batch(rows)


def bucketed_reference(frame: pd.DataFrame, field: str, window_ms: int, buckets: int) -> pd.DataFrame:
    """count, sum, mean and max of ``field`` per user over the window as the state keeps it: pandas
    rolling over each event's time floored to its bucket (``window / buckets`` long), so that the
    window of an event at bucket b holds the user's events of buckets b - buckets + 1 .. b, up to and
    including itself (the documented edge: between ``window * (buckets - 1) / buckets`` and
    ``window`` of history)."""
    length = window_ms // buckets
    values = pd.to_numeric(frame[field], errors="coerce").astype(float)
    floored = pd.to_datetime((frame["timestamp"] // length) * length, unit="ms")
    out = pd.DataFrame(index=frame.index, columns=["count", "sum", "mean", "max"], dtype=float)
    for _, rows in frame.groupby("user_id", sort=False):
        series = pd.Series(values[rows.index].to_numpy(), index=floored[rows.index])
        rolling = series.rolling(f"{window_ms}ms")
        out.loc[rows.index, "count"] = rolling.count().to_numpy()
        out.loc[rows.index, "sum"] = rolling.sum().fillna(0.0).to_numpy()
        out.loc[rows.index, "mean"] = rolling.mean().to_numpy()
        out.loc[rows.index, "max"] = rolling.max().to_numpy()
    return out


def distinct_reference(frame: pd.DataFrame, key: str, field: str, window_ms: int, limit: int) -> np.ndarray:
    """The different values of ``field`` among each event's entity's events of ``(t - window, t]``,
    itself included, at most ``limit`` (exact, by event time)."""
    out = np.zeros(len(frame))
    times, keys, values = frame["timestamp"].to_numpy(), frame[key].to_numpy(), frame[field].to_numpy()
    for i in range(len(frame)):
        mine = (keys[: i + 1] == keys[i]) & (times[: i + 1] > times[i] - window_ms)
        seen = {v for v in values[: i + 1][mine] if v is not None and v == v}
        out[i] = min(len(seen), limit)
    return out


@settings(max_examples=60, deadline=None)
@given(
    frame=histories(),
    window=st.sampled_from(["1m", "10m", "1h"]),
    buckets=st.sampled_from([2, 6, 12]),
    limit=st.sampled_from([2, 16]),
    cuts=st.lists(st.integers(1, 59), max_size=4),
)
def test_declared_aggregations_equal_a_pandas_rolling_reference(
    frame: pd.DataFrame, window: str, buckets: int, limit: int, cuts: list[int]
) -> None:
    config = declared(window, buckets, limit)
    batch = batch_of(frame)
    state = FeatureState(config)
    bounds = [0, *sorted({c for c in cuts if c < len(batch)}), len(batch)]
    parts = [state.compute(batch.slice(a, b)) for a, b in zip(bounds, bounds[1:])]
    got = pd.DataFrame(np.vstack([p.values for p in parts]), columns=config.feature_names)
    window_ms = parse_duration_ms(window)
    for field, name in (("amount", "amount"), ("points", "attributes_points")):
        expected = bucketed_reference(frame, field, window_ms, buckets)
        functions = ("count", "sum", "mean", "max") if field == "amount" else ("count", "sum", "max")
        for function in functions:
            np.testing.assert_allclose(
                got[f"user.{function}_{name}_{window}"].to_numpy(),
                expected[function].to_numpy(dtype=float).astype(np.float32),
                rtol=1e-6,
                err_msg=f"user.{function}_{name}_{window}",
            )
    np.testing.assert_array_equal(
        got[f"user.distinct_device_{window}"],
        distinct_reference(frame, "user_id", "device_id", window_ms, limit),
    )
    np.testing.assert_array_equal(
        got["merchant.shops"], distinct_reference(frame, "merchant_id", "shop", window_ms, limit)
    )


def test_declared_features_follow_the_built_in_ones_under_their_stable_names() -> None:
    config = declared("10m")
    assert config.feature_names[: len(FeatureConfig().feature_names)] == FeatureConfig().feature_names
    assert config.feature_names[-3:] == (
        "user.max_attributes_points_10m",
        "user.distinct_device_10m",
        "merchant.shops",
    )


def test_a_snapshot_keeps_the_declared_state_and_a_preview_leaves_it_alone() -> None:
    config = declared("1h")
    rng = np.random.default_rng(3)
    n = 400
    stream = pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "timestamp": 1_700_000_000_000 + np.cumsum(rng.integers(0, 60_000, n)),
            "user_id": [f"u{k}" for k in rng.integers(0, 20, n)],
            "merchant_id": [f"m{k}" for k in rng.integers(0, 5, n)],
            "amount": rng.integers(1, 10_000, n) / 100,
            "device_id": [f"d{k}" for k in rng.integers(0, 30, n)],
            "points": rng.integers(0, 100, n).tolist(),
            "shop": [f"s{k}" for k in rng.integers(0, 40, n)],
        }
    )
    batch = batch_of(stream)
    whole = FeatureState(config)
    expected = np.vstack(
        [whole.compute(batch.slice(0, 250)).values, whole.compute(batch.slice(250, n)).values]
    )
    first = FeatureState(config)
    first.compute(batch.slice(0, 250))
    restored = FeatureState.restore(first.snapshot(), config)
    before = restored.snapshot()
    restored.preview(batch.slice(250, n))
    assert restored.snapshot() == before
    np.testing.assert_array_equal(restored.compute(batch.slice(250, n)).values, expected[250:])
    with pytest.raises(StateError, match="declared aggregations"):
        FeatureState.restore(first.snapshot(), FeatureConfig())


def test_every_problem_of_a_declared_features_file_is_named_with_its_entry_and_line() -> None:
    text = """aggregations:
  - {entity: user, function: max, field: amount, window: 1h}
  - {entity: shop, function: max, field: amount, window: 1h}
  - {entity: user, function: median, field: amount, window: 1h}
  - {entity: user, function: max, field: amount, window: 1h}
  - entity: merchant
    function: distinct
    field: amount
    window: 24h
  - {entity: card, function: sum, field: attributes.points, window: 1y, colour: red}
"""
    problems = declared_feature_errors(text, FeatureConfig())
    assert problems == [
        "entry 2 (line 3): entity 'shop' is not one of user, card, merchant, terminal, device, ip",
        "entry 3 (line 4): function 'median' is not one of count, sum, mean, max, distinct",
        "entry 4 (line 5): feature 'user.max_amount_1h' is already defined: give this one another name",
        "entry 5 (line 6): field 'amount': distinct counts one of user, card, merchant, terminal, device, "
        "ip, country, currency, channel, merchant_category, card_bin or an attributes.NAME",
        "entry 6 (line 10): unknown key 'colour'; allowed: name, entity, function, field, window",
    ]
    with pytest.raises(ConfigError, match=r"features file has 5 problems: entry 2 \(line 3\)"):
        with_declared_features(text, FeatureConfig())
    window = "aggregations:\n  - {entity: card, function: sum, field: attributes.points, window: 1y}\n"
    assert declared_feature_errors(window, FeatureConfig()) == [
        "entry 1 (line 2): window '1y': expected a whole number and a unit s, m, h or d, e.g. '30s' or '7d'"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("aggregations: {entity: user}", "'aggregations' must be a YAML list"),
        ("- {entity: user}", "the file is a mapping with 'aggregations:'"),
        ("aggregations: [\n", "not valid YAML (line"),
        ("distinct_limit: 0\naggregations: []", "distinct_limit 0 must be a whole number from 1 to 256"),
    ],
)
def test_a_declared_features_file_of_the_wrong_shape_says_what_is_expected(text: str, problem: str) -> None:
    assert problem in declared_feature_errors(text, FeatureConfig())[-1]
