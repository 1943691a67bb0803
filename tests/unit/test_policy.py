"""The decision policy's compiled pass against the plain array formulas it replaced."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.core.policy import APPROVE, CHALLENGE, DECLINE, REVIEW, PolicyConfig, decide


def reference(
    probability: npt.NDArray[np.float64],
    hits: npt.NDArray[np.bool_],
    weights: npt.NDArray[np.float32],
    rule_decisions: npt.NDArray[np.int8],
    config: PolicyConfig,
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.uint8]]:
    """The noisy-or score, its band and the rule actions, written as whole-array operations."""
    p = np.nan_to_num(np.asarray(probability, dtype=np.float64), nan=0.0)
    keep = np.log1p(-np.clip(p, 0.0, 1.0 - 1e-12))
    if hits.shape[0]:
        points = np.where(rule_decisions == APPROVE, 0.0, np.asarray(weights, dtype=np.float64))
        keep = keep + np.log1p(-np.clip(points, 0.0, 99.999) / 100.0) @ hits.astype(np.float64)
    score = np.rint(100.0 * -np.expm1(keep)).astype(np.int16)
    code = np.zeros(score.shape[0], dtype=np.uint8)
    if config.challenge_threshold is not None:
        code[score >= config.challenge_threshold] = CHALLENGE
    code[score >= config.review_threshold] = REVIEW
    code[score >= config.decline_threshold] = DECLINE
    if hits.shape[0]:
        asks = np.where(hits, rule_decisions[:, None].astype(np.int16), -1)
        severity = np.where(rule_decisions[:, None] == APPROVE, -1, asks).max(axis=0)
        code = np.maximum(code, np.clip(severity, 0, None).astype(np.uint8))
        code[(hits & (rule_decisions[:, None] == APPROVE)).any(axis=0)] = APPROVE
    return score, code


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(0, 200),
    rules=st.integers(0, 16),
    hit_rate=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
    challenge=st.sampled_from([None, 20.0, 40.0]),
)
def test_scores_and_decisions_equal_the_array_formulas(
    seed: int, rows: int, rules: int, hit_rate: float, challenge: float | None
) -> None:
    rng = np.random.default_rng(seed)
    probability = rng.random(rows)
    probability[rng.random(rows) < 0.1] = np.nan  # no model, or a model that could not score
    probability[rng.random(rows) < 0.05] = 1.0
    hits = rng.random((rules, rows)) < hit_rate
    weights = rng.choice([0, 5, 10, 25, 50, 60, 80, 99, 100, 150], rules).astype(np.float32)
    rule_decisions = rng.choice([-1, APPROVE, CHALLENGE, REVIEW, DECLINE], rules).astype(np.int8)
    config = PolicyConfig(challenge_threshold=challenge)
    score, code = decide(probability, hits, weights, rule_decisions, config)
    expected_score, expected_code = reference(probability, hits, weights, rule_decisions, config)
    assert score.dtype == np.int16
    assert code.dtype == np.uint8
    np.testing.assert_array_equal(score, expected_score)
    np.testing.assert_array_equal(code, expected_code)
