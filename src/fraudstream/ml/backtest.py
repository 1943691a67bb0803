"""Backtests: replay history through the engine with a rule set and count what each rule would do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from fraudstream.core.engine import Engine, EngineConfig
from fraudstream.core.models import Model
from fraudstream.core.policy import CHALLENGE, DECLINE, REVIEW
from fraudstream.core.replay import replay
from fraudstream.core.rules import Rule, RuleSet
from fraudstream.ml import Progress
from fraudstream.ml.dataset import History
from fraudstream.ml.metrics import fraud_metrics
from fraudstream.ml.train import engine_config

__all__ = ["COMPARED", "RulesReplay", "backtest", "compare", "replay_rules", "rules_report"]

DAY_MS = 86_400_000


@dataclass(frozen=True)
class RulesReplay:
    """What a replay with a rule set decided, per transaction of the history in its order: each
    evaluated rule's hits (a row per code), the decision codes and the score (the model's probability,
    or the score / 100 without a model)."""

    codes: tuple[str, ...]
    hits: npt.NDArray[np.bool_]
    decision: npt.NDArray[np.int8]
    probability: npt.NDArray[np.floating[Any]]


def backtest(
    history: History,
    rules: RuleSet,
    *,
    model: Model | None = None,
    label_delay_ms: int,
    from_ms: int | None = None,
    config: EngineConfig | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Prequential replay (each transaction scored with only what was known before it): per rule,
    its hits, precision, recall, fraud money it catches and alerts per day; then the policy as a whole.
    ``progress`` hears "replaying" after each chunk of rows."""
    replayed = replay_rules(
        history, rules, model=model, label_delay_ms=label_delay_ms, config=config, progress=progress
    )
    return rules_report(history, rules, replayed, from_ms=from_ms)


def replay_rules(
    history: History,
    rules: RuleSet,
    *,
    model: Model | None = None,
    label_delay_ms: int,
    config: EngineConfig | None = None,
    progress: Progress | None = None,
) -> RulesReplay:
    """Replay ``history`` prequentially with ``rules`` (and ``model``): what each transaction got."""
    engine = Engine(config or engine_config(label_delay_ms), rules=rules, model=model)
    codes: tuple[str, ...]
    probability_parts: list[npt.NDArray[np.floating[Any]]]
    hit_parts, decision_parts, probability_parts, codes = [], [], [], ()
    done = 0
    for _, decisions in replay(engine, history.batch, history.labels(label_delay_ms), batch_size=8192):
        codes = decisions.rule_hits.codes
        hit_parts.append(decisions.rule_hits.hits)
        decision_parts.append(decisions.decision_code)
        score = decisions.probability if model is not None else decisions.score.astype(np.float32) / 100
        probability_parts.append(score)
        done += len(decisions)
        if progress is not None:
            progress("replaying", done, len(history.batch))
    if not hit_parts:  # nothing to replay: every enabled rule with no hit
        codes = tuple(r.code for r in rules.rules if r.enabled)
    # An empty history (nothing stored in the window) gives zero counts, not a NumPy error.
    return RulesReplay(
        codes,
        np.hstack(hit_parts) if hit_parts else np.zeros((len(codes), 0), bool),
        np.concatenate(decision_parts) if decision_parts else np.zeros(0, np.int8),
        np.concatenate(probability_parts) if probability_parts else np.zeros(0, np.float32),
    )


def rules_report(
    history: History, rules: RuleSet, replayed: RulesReplay, *, from_ms: int | None = None
) -> dict[str, Any]:
    """The backtest figures of a replay, counted from ``from_ms`` on: per rule and for the policy."""
    ts = history.batch.timestamp_ms
    window = ts >= from_ms if from_ms is not None else np.ones(len(ts), dtype=bool)
    truth = history.is_fraud[window]
    amount = history.batch.amount[window]
    days = max(1, len(np.unique(ts[window] // DAY_MS)))
    per_rule = {}
    for i, code in enumerate(replayed.codes):
        hit = replayed.hits[i][window]
        caught = hit & truth
        per_rule[code] = {
            "shadow": bool(rules.rule(code).shadow),
            "hits": int(hit.sum()),
            "precision": round(float(caught.sum() / max(1, hit.sum())), 4),
            "recall": round(float(caught.sum() / max(1, truth.sum())), 4),
            "fraud_amount_caught": round(float(amount[caught].sum()), 2),
            "alerts_per_day": round(float(hit.sum()) / days, 2),
        }
    decision = replayed.decision[window]
    probability = replayed.probability[window]
    policy = fraud_metrics(truth, probability, decision >= REVIEW, amount, ts[window] // DAY_MS)
    policy.update(
        challenges=int((decision == CHALLENGE).sum()),
        reviews=int((decision == REVIEW).sum()),
        declines=int((decision == DECLINE).sum()),
        fraud_amount_caught=round(float(amount[(decision >= REVIEW) & truth].sum()), 2),
    )
    return {"rules_version": rules.version, "policy": policy, "rules": per_rule}


#: The figures of the policy as a whole that a comparison of two backtests shows, in its order:
#: flagged is reviews and declines (the alerts an analyst sees), frauds_flagged the frauds among them.
COMPARED: Final = (
    "flagged",
    "frauds_flagged",
    "reviews",
    "declines",
    "challenges",
    "precision_at_threshold",
    "recall_at_threshold",
    "legit_flagged_share",
    "fraud_amount_caught",
    "fraud_amount_caught_share",
    "reviews_per_day",
)
#: What a rule is made of, for telling a changed rule from an unchanged one.
_RULE_PARTS: Final = ("expression", "action", "weight", "enabled", "shadow", "description")


def compare(
    current: dict[str, Any], candidate: dict[str, Any], current_rules: RuleSet, candidate_rules: RuleSet
) -> dict[str, Any]:
    """Two backtests of one history side by side: for each figure of `COMPARED`, the current value,
    the candidate's and the change (candidate minus current); for each rule of either set, what
    changed (added, removed, changed with the parts that did, or unchanged) and its results on each
    side (None where the set has no such rule; a disabled rule has no hits). A changed rule names
    its changed parts (expression, action, weight, description) and flags (disabled, enabled,
    shadow on, shadow off).

    >>> from fraudstream.core.rules import load_ruleset
    >>> one = load_ruleset("version: 1\\nrules:\\n  - {code: big, expression: 'amount > 5', action: review}",
    ...                    {"amount": "number"})
    >>> two = one.with_flags("big", {"amount": "number"}, enabled=False)
    >>> hit = {"hits": 3, "precision": 0.5}
    >>> side = lambda hits, rules: {"policy": dict.fromkeys(COMPARED, hits), "rules": rules}
    >>> compared = compare(side(3, {"big": hit}), side(0, {}), one, two)
    >>> compared["policy"]["flagged"]
    {'current': 3, 'candidate': 0, 'delta': -3}
    >>> compared["rules"][0]["change"], compared["rules"][0]["changed"], compared["rules"][0]["delta_hits"]
    ('changed', ['disabled'], -3)
    """
    policy = {
        name: {
            "current": current["policy"][name],
            "candidate": candidate["policy"][name],
            "delta": _delta(current["policy"][name], candidate["policy"][name]),
        }
        for name in COMPARED
    }
    before = {r.code: r for r in current_rules.rules}
    after = {r.code: r for r in candidate_rules.rules}
    rules = []
    for code in [*before, *(c for c in after if c not in before)]:
        old, new = before.get(code), after.get(code)
        ours = _rule_result(old, current["rules"].get(code))
        theirs = _rule_result(new, candidate["rules"].get(code))
        changed = [] if old is None or new is None else _changed_parts(old, new)
        rules.append(
            {
                "code": code,
                "change": "added"
                if old is None
                else "removed"
                if new is None
                else "changed"
                if changed
                else "unchanged",
                "changed": changed,
                "current": ours,
                "candidate": theirs,
                "delta_hits": (theirs or {}).get("hits", 0) - (ours or {}).get("hits", 0),
            }
        )
    return {"policy": policy, "rules": rules}


def _delta(current: float, candidate: float) -> float:
    """Candidate minus current: an integer for counts, a float rounded as the figures are otherwise."""
    if isinstance(current, int) and isinstance(candidate, int):
        return candidate - current
    return round(float(candidate) - float(current), 5)


def _changed_parts(old: Rule, new: Rule) -> list[str]:
    """What changed in a rule: its parts by name, the flags by what they became ("disabled")."""
    flags = {
        "enabled": "enabled" if new.enabled else "disabled",
        "shadow": "shadow on" if new.shadow else "shadow off",
    }
    return [flags.get(part, part) for part in _RULE_PARTS if getattr(old, part) != getattr(new, part)]


def _rule_result(rule: Rule | None, result: dict[str, Any] | None) -> dict[str, Any] | None:
    """A rule's backtest figures; a rule that is in the set but not evaluated (disabled) hit nothing."""
    if rule is None:
        return None
    if result is not None:
        return result
    return {
        "shadow": rule.shadow,
        "hits": 0,
        "precision": 0.0,
        "recall": 0.0,
        "fraud_amount_caught": 0.0,
        "alerts_per_day": 0.0,
    }
