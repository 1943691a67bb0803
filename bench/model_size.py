"""Model size against detection quality and scoring cost: how many trees and leaves the default needs.

Run: ``.venv/bin/python bench/model_size.py`` (``--count 100000`` for a quicker run).

Simulates labelled traffic as ``bench/quality.py`` does (stated seed and size; trained on the first
70% of the time span with labels known only after a delay, measured on the last 30%), then trains
LightGBM at several sizes on the same features and prints, per size: ranking quality (average
precision, precision of the top 100 alerts per day), recall and precision at the default review
threshold, and the model's own cost per event (the compiled forest's ``predict_proba`` on the
evaluation rows, batches of 1,024, one thread) next to the default's.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from fraudstream.core.models import Model
from fraudstream.ml.train import evaluate, replay_training_features, train
from quality import simulated_history, simulation_arguments  # the same traffic and split

SIZES = ((25, 15), (50, 15), (50, 31), (100, 15), (100, 31), (100, 63), (200, 31), (400, 31))
DEFAULT = (100, 31)


def predict_cost_us(model: Model, matrix: np.ndarray, repeats: int = 3) -> float:
    """Microseconds per event of the model's own ``predict_proba`` at batch 1,024 (best of ``repeats``)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(matrix), 1024):
            model.predict_proba(matrix[i : i + 1024])
        best = min(best, (time.perf_counter() - start) / len(matrix) * 1e6)
    return best


def main() -> None:
    args = simulation_arguments(__doc__)
    history, split, delay = simulated_history(args)
    ts = history.batch.timestamp_ms
    matrix, names = replay_training_features(history, delay)
    evaluation_rows = np.ascontiguousarray(matrix[ts >= split])
    print(
        f"simulator: {args.count:,} transactions over {args.days} days, seed {args.seed}, labels known "
        f"after {args.label_delay_days:g} days; trained on the first 70%, measured on the last 30% "
        f"({len(evaluation_rows):,} events)\n"
    )
    header = (
        f"{'trees x leaves':>14} {'avg precision':>14} {'top100/day prec':>16} {'recall@review':>14} "
        f"{'prec@review':>12} {'us/event':>9} {'cost vs default':>16}"
    )
    print(header)
    rows = []
    for trees, leaves in SIZES:
        model, _ = train(
            history,
            "lightgbm",
            train_from_ms=None,
            train_to_ms=split,
            label_delay_ms=delay,
            params={"num_trees": trees, "num_leaves": leaves},
            features=(matrix, names),
        )
        report, _, _ = evaluate(history, model, from_ms=split, to_ms=None, label_delay_ms=delay)
        cost = predict_cost_us(model, evaluation_rows)
        rows.append((trees, leaves, report, cost))
    default_cost = next(cost for t, lv, _, cost in rows if (t, lv) == DEFAULT)
    for trees, leaves, report, cost in rows:
        mark = " *" if (trees, leaves) == DEFAULT else ""
        print(
            f"{f'{trees} x {leaves}{mark}':>14} {report['average_precision']:>14} "
            f"{report['precision_at_100_per_day']:>16} {report['recall_at_threshold']:>14} "
            f"{report['precision_at_threshold']:>12} {cost:>9.2f} {cost / default_cost:>15.2f}x"
        )
    print("\n* the default (fraudstream.core.models.lightgbm.DEFAULT_PARAMS)")


if __name__ == "__main__":
    main()
