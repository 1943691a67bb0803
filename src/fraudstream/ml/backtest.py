"""Backtests: replay history through the engine with a rule set and count what each rule would do."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from fraudstream.core.engine import Engine, EngineConfig
from fraudstream.core.models import Model
from fraudstream.core.policy import REVIEW
from fraudstream.core.replay import replay
from fraudstream.core.rules import RuleSet
from fraudstream.ml.dataset import History
from fraudstream.ml.metrics import fraud_metrics
from fraudstream.ml.train import engine_config

__all__ = ["backtest"]

DAY_MS = 86_400_000


def backtest(
    history: History,
    rules: RuleSet,
    *,
    model: Model | None = None,
    label_delay_ms: int,
    from_ms: int | None = None,
    config: EngineConfig | None = None,
) -> dict[str, Any]:
    """Prequential replay (each transaction scored with only what was known before it): per rule,
    its hits, precision, recall, fraud money it catches and alerts per day; then the policy as a whole."""
    engine = Engine(config or engine_config(label_delay_ms), rules=rules, model=model)
    codes: tuple[str, ...]
    probability_parts: list[npt.NDArray[np.floating[Any]]]
    hit_parts, decision_parts, probability_parts, codes = [], [], [], ()
    for _, decisions in replay(engine, history.batch, history.labels(label_delay_ms), batch_size=8192):
        codes = decisions.rule_hits.codes
        hit_parts.append(decisions.rule_hits.hits)
        decision_parts.append(decisions.decision_code)
        score = decisions.probability if model is not None else decisions.score.astype(np.float32) / 100
        probability_parts.append(score)
    if not hit_parts:  # nothing to replay: every enabled rule with no hit
        codes = tuple(r.code for r in rules.rules if r.enabled)
    hits = np.hstack(hit_parts) if hit_parts else np.zeros((len(codes), 0), bool)
    ts = history.batch.timestamp_ms
    window = ts >= from_ms if from_ms is not None else np.ones(len(ts), dtype=bool)
    truth = history.is_fraud[window]
    amount = history.batch.amount[window]
    days = max(1, len(np.unique(ts[window] // DAY_MS)))
    per_rule = {}
    for i, code in enumerate(codes):
        hit = hits[i][window]
        caught = hit & truth
        per_rule[code] = {
            "shadow": bool(rules.rule(code).shadow),
            "hits": int(hit.sum()),
            "precision": round(float(caught.sum() / max(1, hit.sum())), 4),
            "recall": round(float(caught.sum() / max(1, truth.sum())), 4),
            "fraud_amount_caught": round(float(amount[caught].sum()), 2),
            "alerts_per_day": round(float(hit.sum()) / days, 2),
        }
    # An empty history (nothing stored in the window) gives zero counts, not a NumPy error.
    decision = (np.concatenate(decision_parts) if decision_parts else np.zeros(0, np.int8))[window]
    probability = (np.concatenate(probability_parts) if probability_parts else np.zeros(0, np.float32))[
        window
    ]
    policy = fraud_metrics(truth, probability, decision >= REVIEW, amount, ts[window] // DAY_MS)
    return {"rules_version": rules.version, "policy": policy, "rules": per_rule}
