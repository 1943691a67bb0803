"""Decision policy: rule actions and the model's probability become a score 0–100 and a decision.

The score is a noisy-or of the model probability and the weights (in points) of the rules that hit
and act (not shadow, not allow)::

    score = 100 * (1 - (1 - p) * prod(1 - weight_i / 100))

so a rule of weight 60 alone gives 60, two rules of 50 give 75, and the score never passes 100.

The decision is the most severe of the score band (``challenge_threshold``, ``review_threshold``,
``decline_threshold``) and the actions of the acting rules (decline > challenge > review; ``tag``
only records). A hit ``allow`` rule (a trusted user, card or device) overrides both: approve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from fraudstream.errors import ConfigError

__all__ = ["DECISIONS", "PolicyConfig", "decide"]

#: Decision codes, least to most severe; a decision array holds indices into this tuple.
DECISIONS: Final = ("approve", "challenge", "review", "decline")
APPROVE, CHALLENGE, REVIEW, DECLINE = range(4)

#: Rule action name → the decision it asks for (``None``: no decision of its own).
ACTION_DECISION: Final[dict[str, int | None]] = {
    "tag": None,
    "review": REVIEW,
    "challenge": CHALLENGE,
    "decline": DECLINE,
    "allow": APPROVE,
}


@dataclass(frozen=True)
class PolicyConfig:
    """Score bands and which decisions raise an alert.

    >>> PolicyConfig(review_threshold=50, decline_threshold=40)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fraudstream.errors.ConfigError: thresholds must rise: ... < review (50) < decline (40), each in 0..100
    """

    review_threshold: float = 60.0
    decline_threshold: float = 90.0
    challenge_threshold: float | None = None
    alert_decisions: tuple[str, ...] = ("review", "decline")
    max_reasons: int = 5

    def __post_init__(self) -> None:
        low = self.challenge_threshold if self.challenge_threshold is not None else -1.0
        if not (-1.0 <= low < self.review_threshold < self.decline_threshold <= 100.0):
            raise ConfigError(
                "thresholds must rise: challenge "
                f"({self.challenge_threshold}) < review ({self.review_threshold}) < decline "
                f"({self.decline_threshold}), each in 0..100"
            )
        unknown = set(self.alert_decisions) - set(DECISIONS)
        if unknown:
            raise ConfigError(f"alert_decisions {sorted(unknown)}: allowed values are {list(DECISIONS)}")

    def alert_codes(self) -> npt.NDArray[np.bool_]:
        return np.array([d in self.alert_decisions for d in DECISIONS], dtype=np.bool_)


def decide(
    probability: npt.NDArray[np.floating],
    hits: npt.NDArray[np.bool_],
    weights: npt.NDArray[np.floating],
    rule_decisions: npt.NDArray[np.int8],
    config: PolicyConfig,
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.uint8]]:
    """Scores and decision codes for a batch.

    ``hits`` is (rules, rows) for the acting rules only; ``rule_decisions`` gives per rule the
    decision code it asks for, or -1 for none (tag).

    >>> p = np.array([0.1, 0.1, 0.95])
    >>> hits = np.array([[False, True, False]])
    >>> scores, codes = decide(p, hits, np.array([60.0]), np.array([REVIEW], np.int8), PolicyConfig())
    >>> scores.tolist(), [DECISIONS[c] for c in codes]
    ([10, 64, 95], ['approve', 'review', 'decline'])
    """
    n = int(np.asarray(probability).shape[0])
    score = np.empty(n, dtype=np.int16)
    code = np.empty(n, dtype=np.uint8)
    challenge = -1.0 if config.challenge_threshold is None else float(config.challenge_threshold)
    _decide_rows(
        np.asarray(probability, dtype=np.float64),
        np.ascontiguousarray(hits, dtype=np.bool_),
        np.asarray(weights, dtype=np.float64),
        np.asarray(rule_decisions, dtype=np.int8),
        challenge,
        float(config.review_threshold),
        float(config.decline_threshold),
        score,
        code,
    )
    return score, code


@njit(cache=True, nogil=True)
def _decide_rows(p, hits, weights, asks, challenge, review, decline, score, code):  # type: ignore[no-untyped-def]
    """One pass per row over the rules that hit it: the noisy-or score, its band, then the actions.

    Rules are added in their order, so a row's score does not depend on how many rows share its batch.
    A negative ``challenge`` means no challenge band.
    """
    n_rules = hits.shape[0]
    for j in range(p.shape[0]):
        q = p[j]
        if math.isnan(q):
            q = 0.0
        q = min(max(q, 0.0), 1.0 - 1e-12)
        points = 0.0  # sum of log(1 - weight / 100) over the acting rules that hit
        severity = -1
        allowed = False
        for r in range(n_rules):
            if hits[r, j]:
                if asks[r] == APPROVE:
                    allowed = True  # an allow rule adds no points
                else:
                    points += math.log1p(-min(max(weights[r], 0.0), 99.999) / 100.0)
                    severity = max(severity, asks[r])
        value = np.rint(100.0 * -math.expm1(math.log1p(-q) + points))
        score[j] = value
        band = 0
        if challenge >= 0.0 and value >= challenge:
            band = CHALLENGE
        if value >= review:
            band = REVIEW
        if value >= decline:
            band = DECLINE
        code[j] = APPROVE if allowed else max(band, severity)
