"""PSI against a reference computation written from the textbook formula, and bin counts against
np.histogram."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.core.drift import EPSILON, Binning, drift_status, feature_drift, psi, reference_of


def textbook_psi(expected: list[float], actual: list[float], epsilon: float) -> float:
    """PSI = sum over bins of (a - e) x ln(a / e), with a and e each bin's share of its side, and a
    share below epsilon taken as epsilon (an empty bin would make its term infinite)."""
    e_total, a_total = sum(expected), sum(actual)
    total = 0.0
    for e_count, a_count in zip(expected, actual):
        e = max(e_count / e_total, epsilon)
        a = max(a_count / a_total, epsilon)
        total += (a - e) * math.log(a / e)
    return total


def test_psi_of_a_worked_example_with_an_empty_bin() -> None:
    # Training: 40/30/20/10 %; live: 10/20/30/40 % in the same bins, and one bin empty in training.
    expected, actual = [40, 30, 20, 10, 0], [10, 20, 30, 40, 5]
    a = [n / 105 for n in actual]
    e = [0.4, 0.3, 0.2, 0.1, 1e-4]
    by_hand = sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e))
    assert math.isclose(psi(expected, actual), by_hand, rel_tol=1e-12)
    assert psi(expected, actual) > 0.25


def test_psi_is_zero_for_the_same_distribution_and_nan_without_traffic() -> None:
    assert psi([1, 2, 3], [10, 20, 30]) == 0.0
    assert math.isnan(psi([1, 2, 3], [0, 0, 0]))


counts = st.lists(st.integers(0, 10_000), min_size=2, max_size=14)


@settings(max_examples=300, deadline=None)
@given(
    counts.flatmap(
        lambda e: st.tuples(st.just(e), st.lists(st.integers(0, 10_000), min_size=len(e), max_size=len(e)))
    )
)
def test_psi_equals_the_textbook_computation(pair: tuple[list[int], list[int]]) -> None:
    expected, actual = pair
    if not sum(expected) or not sum(actual):
        assert math.isnan(psi(expected, actual))
        return
    reference = textbook_psi([float(n) for n in expected], [float(n) for n in actual], EPSILON)
    assert math.isclose(psi(expected, actual), reference, rel_tol=1e-9, abs_tol=1e-12)
    assert psi(expected, actual) >= -1e-12  # each term is >= 0 when neither side is clipped


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(-1e6, 1e6, allow_nan=False, width=32),
            st.just(float("nan")),
            st.sampled_from([0.0, 1.0]),
        ),
        min_size=1,
        max_size=300,
    ),
    st.integers(1, 12),
)
def test_bin_counts_equal_np_histogram(values: list[float], bins: int) -> None:
    column = np.array(values, dtype=np.float32)
    matrix = np.stack([column, column[::-1]], axis=1)
    reference = reference_of(matrix, ("a", "b"), bins=bins)
    binning = Binning.of(reference, ("a", "b"))
    found = binning.split(binning.counts(matrix))
    for j, name in enumerate(("a", "b")):
        edges = reference["features"][name]["edges"]
        data = matrix[:, j].astype(np.float64)
        histogram, _ = np.histogram(data[~np.isnan(data)], bins=[-np.inf, *edges, np.inf])
        assert found[name] == [*histogram.tolist(), int(np.isnan(data).sum())]
        # The training proportions are the same counts over the rows.
        assert reference["features"][name]["proportions"] == [round(n / len(data), 6) for n in found[name]]
    assert len(edges) <= bins


def test_a_flag_gets_a_bin_per_value_and_a_continuous_feature_deciles() -> None:
    rng = np.random.default_rng(3)
    flag = (rng.random(10_000) < 0.05).astype(np.float32)
    amount = rng.lognormal(3, 1, 10_000).astype(np.float32)
    reference = reference_of(np.stack([flag, amount], axis=1), ("user.new_device", "amount"))
    assert reference["features"]["user.new_device"]["edges"] == [0.0, 1.0]
    assert len(reference["features"]["amount"]["edges"]) == 9
    shares = reference["features"]["amount"]["proportions"]
    assert all(abs(p - 0.1) < 0.002 for p in shares[1:-2])
    # New devices from 5 % to 50 %: deciles alone would have put 0 and 1 in one bin and seen nothing.
    live = np.stack([(rng.random(2_000) < 0.5).astype(np.float32), amount[:2_000]], axis=1)
    binning = Binning.of(reference, ("user.new_device", "amount"))
    found = feature_drift(reference, binning.split(binning.counts(live)), watch=0.1, drifted=0.25)
    assert [f["feature"] for f in found] == ["user.new_device", "amount"]
    assert found[0]["status"] == "drifted"
    assert found[1]["status"] == "stable"


def test_statuses_follow_the_thresholds() -> None:
    assert [drift_status(v, 0.1, 0.25) for v in (0.0, 0.0999, 0.1, 0.2499, 0.25, 3.0)] == [
        "stable",
        "stable",
        "watch",
        "watch",
        "drifted",
        "drifted",
    ]
