"""Time to build features by replaying history through the engine, and to train on them.

Run: ``.venv/bin/python bench/train.py`` (``--count 200000`` for a quicker run).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fraudstream.ml.dataset import load_history
from fraudstream.ml.train import replay_training_features, train
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import write_table

DAY = 86_400_000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp()) / "sim.parquet"
    write_table(simulate(SimulationConfig(count=args.count, seed=7, duration_ms=30 * DAY)), path)

    start = time.perf_counter()
    history = load_history(path)
    loaded = time.perf_counter()
    features, names = replay_training_features(history, label_delay_ms=7 * DAY)
    replay_done = time.perf_counter()
    _, summary = train(
        history,
        "lightgbm",
        train_from_ms=None,
        train_to_ms=None,
        label_delay_ms=7 * DAY,
        features=(features, names),
    )
    trained = time.perf_counter()
    rows = summary["training_rows"]
    print(f"{args.count:,} events, {len(names)} features, {rows:,.0f} training rows")
    print(f"load + validate:      {loaded - start:6.1f} s")
    rate = args.count / (replay_done - loaded)
    print(f"feature replay:       {replay_done - loaded:6.1f} s  ({rate:,.0f} events/s; target >= 200,000)")
    print(f"LightGBM fit:         {trained - replay_done:6.1f} s")
    print(f"whole training:       {trained - start:6.1f} s  (target < 120 s)")


if __name__ == "__main__":
    main()
