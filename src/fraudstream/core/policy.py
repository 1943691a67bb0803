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

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

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
    p = np.nan_to_num(np.asarray(probability, dtype=np.float64), nan=0.0)
    keep = np.log1p(-np.clip(p, 0.0, 1.0 - 1e-12))
    if hits.shape[0]:
        points = np.where(rule_decisions == APPROVE, 0.0, np.asarray(weights, dtype=np.float64))
        factors = np.log1p(-np.clip(points, 0.0, 99.999) / 100.0)
        keep = keep + factors @ hits.astype(np.float64)
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
        allowed = (hits & (rule_decisions[:, None] == APPROVE)).any(axis=0)
        code[allowed] = APPROVE
    return score, code
