"""Fraud metrics: ranking quality, the review threshold's trade-off, workload and money."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

__all__ = ["THRESHOLDS", "fraud_metrics", "threshold_table"]

#: The score thresholds of the threshold table (probabilities: calibrated models make them comparable).
THRESHOLDS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01)


def fraud_metrics(
    truth: npt.NDArray[np.bool_],
    probability: npt.NDArray[np.floating[Any]],
    flagged: npt.NDArray[np.bool_],
    amount: npt.NDArray[np.floating[Any]],
    day: npt.NDArray[np.integer[Any]],
    k: int = 100,
    user: npt.NDArray[np.object_] | None = None,
) -> dict[str, Any]:
    """Metrics of one evaluation window; ``flagged`` is what the policy sent to review or declined.
    Counts are integers, shares and rates floats.

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
        "transactions": len(truth),
        "frauds": int(truth.sum()),
        "flagged": int(flagged.sum()),
        "frauds_flagged": int(caught.sum()),
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


def threshold_table(
    truth: npt.NDArray[np.bool_],
    probability: npt.NDArray[np.floating[Any]],
    amount: npt.NDArray[np.floating[Any]],
    day: npt.NDArray[np.integer[Any]],
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> list[dict[str, Any]]:
    """What flagging every transaction scored at or above each threshold would have given: how many
    and what share of transactions (the review workload, also per day), precision, recall, and the
    fraud amount caught. The table a team reads to choose its thresholds.

    >>> rows = threshold_table(np.array([0, 0, 1, 1], bool), np.array([.1, .6, .4, .9]),
    ...                        np.array([10., 10, 50, 70]), np.zeros(4, int), (0.5, 0.3))
    >>> [(r["threshold"], r["flagged"], r["precision"], r["recall"], r["fraud_amount_caught"]) for r in rows]
    [(0.5, 2, 0.5, 0.5, 70.0), (0.3, 3, 0.6667, 1.0, 120.0)]
    """
    truth = truth.astype(bool)
    days = max(1, len(np.unique(day)))
    frauds, fraud_amount = int(truth.sum()), float(amount[truth].sum())
    rows = []
    for threshold in thresholds:
        flagged = probability >= threshold
        caught = flagged & truth
        count = int(flagged.sum())
        rows.append(
            {
                "threshold": threshold,
                "flagged": count,
                "review_rate": round(count / max(1, len(truth)), 5),
                "flagged_per_day": round(count / days, 1),
                "frauds_caught": int(caught.sum()),
                "precision": round(int(caught.sum()) / count, 4) if count else float("nan"),
                "recall": round(int(caught.sum()) / frauds, 4) if frauds else float("nan"),
                "fraud_amount_caught": round(float(amount[caught].sum()), 2),
                "fraud_amount_caught_share": round(float(amount[caught].sum()) / fraud_amount, 4)
                if fraud_amount
                else float("nan"),
            }
        )
    return rows
