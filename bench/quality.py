"""Detection quality on simulated traffic: LightGBM vs. IsolationForest vs. rules only.

Run: ``.venv/bin/python bench/quality.py`` (``--count 50000`` for a quicker run).

Simulates labelled traffic (stated seed and size; each fraud's label arrives when the simulator says
its victim reported it, days to weeks later, or never), trains each model on the rows of the first 70%
of the time span older than the label delay, and evaluates all three on the last 30% (the history
before it builds the feature state). Prints overall metrics, and per fraud scenario the frauds in the
measured window and the recall at the default review threshold.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from fraudstream.ml.dataset import History, load_history
from fraudstream.ml.train import evaluate, replay_history, train
from fraudstream.sim.generator import SimulationConfig, simulate, with_label_times
from fraudstream.sim.output import write_table

DAY = 86_400_000


def simulation_arguments(description: str | None) -> argparse.Namespace:
    """The command line of the quality benchmarks: how much traffic to simulate, and the label delay."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--label-delay-days", type=float, default=3.0)
    return parser.parse_args()


def simulated_history(args: argparse.Namespace) -> tuple[History, int, int]:
    """Simulated labelled traffic as a history, the time that ends training (70% of the span) and
    starts measurement, and the label delay in milliseconds."""
    path = Path(tempfile.mkdtemp()) / "sim.parquet"
    config = SimulationConfig(count=args.count, seed=args.seed, duration_ms=args.days * DAY)
    write_table(with_label_times(simulate(config), config), path)
    history = load_history(path)
    ts = history.batch.timestamp_ms
    split = int(ts.min() + 0.7 * (ts.max() - ts.min()))
    return history, split, int(args.label_delay_days * DAY)


def main() -> None:
    args = simulation_arguments(__doc__)
    history, split, delay = simulated_history(args)
    replayed = replay_history(history, delay)
    reports = {}
    for kind in ("lightgbm", "isolation_forest"):
        model, _ = train(
            history,
            kind,
            train_from_ms=None,
            train_to_ms=split,
            label_delay_ms=delay,
            features=(replayed.features, replayed.feature_names),
        )
        reports[kind], _, _ = evaluate(history, model, from_ms=split, to_ms=None, label_delay_ms=delay)
    reports["rules only"], _, _ = evaluate(history, None, from_ms=split, to_ms=None, label_delay_ms=delay)

    print(
        f"simulator: {args.count:,} transactions over {args.days} days, seed {args.seed}, "
        f"labels as reported (late or never), training rows older than {args.label_delay_days:g} days; "
        "trained on the first 70%, measured on the last 30%"
    )
    names = list(reports)
    print(f"\n{'metric':<30}" + "".join(f"{n:>18}" for n in names))
    for metric in (
        "roc_auc",
        "average_precision",
        "precision_at_100_per_day",
        "user_precision_at_100_per_day",
        "recall_at_threshold",
        "precision_at_threshold",
        "legit_flagged_share",
        "fraud_amount_caught_share",
    ):
        print(f"{metric:<30}" + "".join(f"{reports[n][metric]:>18}" for n in names))
    print("\nrecall at the review threshold, per scenario (frauds: in the measured window)")
    measured = history.batch.timestamp_ms >= split
    scenarios = np.array(history.scenario or [""] * len(measured), dtype=object)[measured]
    print(f"{'scenario':<24}{'frauds':>6}" + "".join(f"{n:>18}" for n in names))
    for scenario in reports["lightgbm"]["recall_by_scenario"]:
        recalls = "".join(f"{reports[n]['recall_by_scenario'][scenario]:>18}" for n in names)
        print(f"{scenario:<24}{int((scenarios == scenario).sum()):>6}" + recalls)


if __name__ == "__main__":
    main()
