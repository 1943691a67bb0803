"""Fraud metrics: ranking quality, the review threshold's trade-off, workload and money."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

__all__ = ["fraud_metrics"]


def fraud_metrics(
    truth: npt.NDArray[np.bool_],
    probability: npt.NDArray[np.floating[Any]],
    flagged: npt.NDArray[np.bool_],
    amount: npt.NDArray[np.floating[Any]],
    day: npt.NDArray[np.integer[Any]],
    k: int = 100,
    user: npt.NDArray[np.object_] | None = None,
) -> dict[str, float]:
    """Metrics of one evaluation window; ``flagged`` is what the policy sent to review or declined.

    >>> m = fraud_metrics(np.array([0, 0, 1, 1], bool), np.array([.1, .4, .35, .8]),
    ...                   np.array([0, 0, 0, 1], bool), np.array([10., 10, 50, 70]), np.zeros(4, int))
    >>> m["roc_auc"], m["recall_at_threshold"], m["fraud_amount_caught_share"]
    (0.75, 0.5, 0.5833)
    """
    truth = truth.astype(bool)
    has_both = 0 < truth.sum() < len(truth)
    fpr, tpr, _ = roc_curve(truth, probability) if has_both else (np.array([0.0]), np.array([0.0]), None)
    caught = flagged & truth
    precisions = []
    for d in np.unique(day):
        today = np.flatnonzero(day == d)
        top = today[np.argsort(-probability[today], kind="stable")[:k]]
        precisions.append(truth[top].mean())
    days = max(1, len(np.unique(day)))
    fraud_amount = float(amount[truth].sum())
    user_precision = (
        _user_precision_at_k(truth, probability, day, user, k) if user is not None else float("nan")
    )
    return {
        "transactions": float(len(truth)),
        "frauds": float(truth.sum()),
        "roc_auc": round(float(roc_auc_score(truth, probability)), 4) if has_both else float("nan"),
        "average_precision": round(float(average_precision_score(truth, probability)), 4)
        if has_both
        else float("nan"),
        "precision_at_threshold": round(float(caught.sum() / max(1, flagged.sum())), 4),
        "recall_at_threshold": round(float(caught.sum() / max(1, truth.sum())), 4),
        "legit_flagged_share": round(float((flagged & ~truth).sum() / max(1, (~truth).sum())), 5),
        "recall_at_1pct_fpr": round(float(np.interp(0.01, fpr, tpr)), 4),
        f"precision_at_{k}_per_day": round(float(np.mean(precisions)) if precisions else float("nan"), 4),
        f"user_precision_at_{k}_per_day": round(user_precision, 4),
        "fraud_amount_caught_share": round(float(amount[caught].sum()) / fraud_amount, 4)
        if fraud_amount
        else 0.0,
        "reviews_per_day": round(float(flagged.sum()) / days, 2),
    }


def _user_precision_at_k(
    truth: npt.NDArray[np.bool_],
    probability: npt.NDArray[np.floating[Any]],
    day: npt.NDArray[np.integer[Any]],
    user: npt.NDArray[np.object_],
    k: int,
) -> float:
    """Card (user) precision@k: each day, the k users with the highest score that day; the share of
    them with at least one fraud that day (what an analyst team checking k accounts a day finds)."""
    import pandas as pd

    frame = pd.DataFrame({"day": day, "user": user, "p": probability, "fraud": truth})
    per_user = (
        frame.groupby(["day", "user"], sort=False).agg(p=("p", "max"), fraud=("fraud", "any")).reset_index()
    )
    top = per_user.sort_values("p", ascending=False, kind="stable").groupby("day").head(k)
    return float(top.groupby("day")["fraud"].mean().mean()) if len(top) else float("nan")
