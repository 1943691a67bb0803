"""Which feature groups earn their cost: the default model retrained with each group left out.

Run: ``.venv/bin/python bench/ablation.py`` (the handbook benchmark, seed 0, and the simulator, seed 7);
``--data handbook --seeds 0 1`` or ``--data simulator`` for one of them.

For each data set the history is replayed once through the engine (the features `train` and
`evaluate` see, label windows ending at the label delay); then for every group below `train`'s own
LightGBM (settings searched on a time-ordered split, calibrated) is fitted without that group's
columns and scored on the measured rows. The handbook data follows bench/handbook.py's protocol
(train on its training week with labels known 7 days later, measure on its test week without the
customers already known compromised); the simulator follows bench/quality.py (train on the first 70 %
of the time with labels as reported, measure on the rest). Prints average precision with all
features, then per group the features it holds and the change in average precision without it.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.metrics import average_precision_score

import handbook  # bench/handbook.py: the script's folder is on the path
from fraudstream.ml.dataset import History, load_history
from fraudstream.ml.train import replay_training_features, train
from fraudstream.sim.generator import SimulationConfig, simulate, with_label_times
from fraudstream.sim.output import write_table

DAY = 86_400_000

#: Feature groups by name. Label feedback first: the group the label delay is about.
GROUPS: dict[str, Callable[[str], bool]] = {
    "label feedback (merchant, terminal fraud counts, rates, runs)": lambda n: "fraud" in n,
    "customer windows (counts, amounts, ratios, z-scores)": lambda n: bool(
        re.match(r"user\.(count|amount|seconds_since_last)", n)
    ),
    "customer's new and distinct merchants, devices, countries": lambda n: bool(
        re.match(r"user\.(new_|distinct_)", n)
    ),
    "terminal windows": lambda n: n.startswith("terminal.") and "fraud" not in n,
    "merchant windows": lambda n: n.startswith("merchant.") and "fraud" not in n,
    "card, device and ip windows": lambda n: n.startswith(("card.", "device.", "ip.")),
    "travel (distance, speed)": lambda n: n.startswith("geo."),
    "amount and hour of day": lambda n: n in ("amount", "hour_of_day"),
}


def handbook_case(seed: int, folder: Path) -> tuple[History, int, int, int, npt.NDArray[np.bool_]]:
    """The handbook's data as fraudstream reads it, its training window, delay, and measured rows."""
    frame = handbook.simulate(seed)
    _, test = handbook.split(frame)
    path = folder / f"handbook-{seed}.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    history = load_history(path, handbook.FRAUDSTREAM_MAP, timezone="UTC")
    ids = history.batch.transaction_id.to_numpy(zero_copy_only=False).astype(np.int64)
    start_ms = handbook.start_ms()
    train_from = start_ms + handbook.TRAIN_START_DAY * DAY
    train_to = train_from + (handbook.TRAIN_DAYS + handbook.DELAY_DAYS) * DAY
    return history, train_from, train_to, handbook.DELAY_DAYS * DAY, test[ids]


def simulator_case(seed: int, folder: Path) -> tuple[History, int, int, int, npt.NDArray[np.bool_]]:
    """bench/quality.py's simulated history (200,000 transactions over 28 days, labels as reported)."""
    config = SimulationConfig(count=200_000, seed=seed, duration_ms=28 * DAY)
    path = folder / f"simulator-{seed}.parquet"
    write_table(with_label_times(simulate(config), config), path)
    history = load_history(path)
    ts = history.batch.timestamp_ms
    split = int(ts.min() + 0.7 * (ts.max() - ts.min()))
    return history, int(ts.min()), split, 3 * DAY, ts >= split


def ablate(name: str, case: tuple[History, int, int, int, npt.NDArray[np.bool_]]) -> None:
    history, train_from, train_to, delay, measured = case
    began = time.perf_counter()
    matrix, names = replay_training_features(history, delay)
    truth = history.is_fraud[measured]
    print(
        f"\n{name}: {len(names)} features; measured {int(measured.sum()):,} transactions, "
        f"{int(truth.sum()):,} frauds (replayed in {time.perf_counter() - began:.0f} s)",
        flush=True,
    )

    def average_precision(keep: npt.NDArray[np.bool_]) -> float:
        kept = tuple(n for n, k in zip(names, keep) if k)
        model, _ = train(
            history,
            "lightgbm",
            train_from_ms=train_from,
            train_to_ms=train_to,
            label_delay_ms=delay,
            features=(matrix[:, keep], kept),
        )
        return float(average_precision_score(truth, model.predict_proba(matrix[measured][:, keep])))

    everything = average_precision(np.ones(len(names), bool))
    print(f"  {'all features':<62} {len(names):>4}  AP {everything:.4f}", flush=True)
    for group, member in GROUPS.items():
        inside = np.array([member(n) for n in names])
        if not inside.any():
            continue
        without = average_precision(~inside)
        print(
            f"  without {group:<54} {int(inside.sum()):>4}  AP {without:.4f}  {without - everything:+.4f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", choices=["handbook", "simulator", "both"], default="both")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="default: 0 (handbook), 7 (simulator)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.data in ("handbook", "both"):
            for seed in args.seeds or [0]:
                ablate(f"handbook, seed {seed}", handbook_case(seed, Path(folder)))
        if args.data in ("simulator", "both"):
            for seed in args.seeds or [7]:
                ablate(f"simulator, seed {seed}", simulator_case(seed, Path(folder)))


if __name__ == "__main__":
    main()
