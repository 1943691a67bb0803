"""Compiled forest against LightGBM: predictions and per-feature contributions, rows per second.

Run: ``.venv/bin/python bench/trees.py`` (about a minute; ``--rows 20000`` trains on fewer rows).

Trains the default LightGBM model (100 trees x 31 leaves, ``DEFAULT_PARAMS``) on 136 random
features (5% NaN, some exact zeros) with a learnable label, then measures on unseen rows, at batch
1024 and 8192, one thread each: LightGBM ``predict(raw_score=True)`` against the compiled
``raw_score``, and LightGBM ``predict(pred_contrib=True)`` (TreeSHAP) against the compiled
``path_contributions``. Also prints how far the compiled scores are from LightGBM's (should be 0)
and how often the path attributions and SHAP name the same feature first on the most suspicious
rows.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import numpy.typing as npt

from fraudstream.core.models import fit_model
from fraudstream.core.models.lightgbm import LightGBMModel
from fraudstream.core.models.trees import CompiledForest

N_FEATURES = 136
BATCHES = (1024, 8192)


def synthetic(n: int, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int8]]:
    """136 features; fraud (~3%) depends non-linearly on a dozen of them, with noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    x[:, 100:] = np.abs(x[:, 100:]).round(1)  # count-like columns with exact zeros
    signal = (
        1.5 * (x[:, 0] > 1.0)
        + x[:, 1] * x[:, 2]
        + np.where(x[:, 3] > 0, x[:, 4], -x[:, 5])
        + 0.8 * np.sin(2 * x[:, 6])
        + 0.5 * (x[:, 7] + x[:, 8] - x[:, 9])
        + (x[:, 100] < 0.2) * x[:, 101]
        + rng.normal(scale=0.7, size=n)
    )
    y = (signal > np.quantile(signal, 0.97)).astype(np.int8)
    x[rng.random(x.shape) < 0.05] = np.nan
    return x, y


def rows_per_second(
    score: Callable[[npt.NDArray[np.float32]], object], x: npt.NDArray[np.float32], batch: int, budget: float
) -> float:
    """Rows/s over consecutive batches of ``x``, best of repeated passes within ``budget`` seconds."""
    best = 0.0
    deadline = time.perf_counter() + budget
    while True:
        start = time.perf_counter()
        done = 0
        for offset in range(0, len(x) - batch + 1, batch):
            score(x[offset : offset + batch])
            done += batch
            if time.perf_counter() > deadline and done >= batch:
                break
        best = max(best, done / (time.perf_counter() - start))
        if time.perf_counter() > deadline:
            return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="training rows (default 100,000)")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per measurement (default 3)")
    args = parser.parse_args()

    x, y = synthetic(args.rows, seed=1)
    names = tuple(f"f{i:03d}" for i in range(N_FEATURES))
    started = time.perf_counter()
    model = fit_model("lightgbm", x, y, names, version="bench", created="bench", training_fingerprint="bench")
    assert isinstance(model, LightGBMModel)
    trained = time.perf_counter() - started
    started = time.perf_counter()
    again = LightGBMModel(model.booster, model.metadata)
    compile_ms = 1000 * (time.perf_counter() - started)
    forest = again.forest
    assert isinstance(forest, CompiledForest)
    booster = model.booster
    test_x, _ = synthetic(max(BATCHES) * 8, seed=2)

    # Warm numba (compiled on first call, or loaded from its cache) before any timing.
    forest.raw_score(test_x[:8])
    forest.path_contributions(test_x[:8])

    reference = booster.predict(test_x, raw_score=True, num_threads=1)
    difference = float(np.max(np.abs(forest.raw_score(test_x) - reference)))
    suspicious = test_x[reference >= np.quantile(reference, 0.98)][:1000]
    shap = booster.predict(suspicious, pred_contrib=True, num_threads=1)[:, :-1]
    path = forest.path_contributions(suspicious)
    same_first = float(np.mean(np.argmax(shap, axis=1) == np.argmax(path, axis=1)))
    shap_first_in_five = float(
        np.mean([np.argmax(s) in np.argsort(-p)[:5] for s, p in zip(shap, path, strict=True)])
    )

    def lightgbm_predict(rows: npt.NDArray[np.float32]) -> object:
        return booster.predict(rows, raw_score=True, num_threads=1)

    def lightgbm_contrib(rows: npt.NDArray[np.float32]) -> object:
        return booster.predict(rows, pred_contrib=True, num_threads=1)

    print(
        f"model: {forest.n_trees} trees, {int(np.sum(forest.feature < 0))} leaves, {N_FEATURES} features; "
        f"trained on {args.rows:,} rows in {trained:.1f} s; compiled in {compile_ms:.0f} ms"
    )
    print(f"max |compiled raw_score - LightGBM raw_score| on {len(test_x):,} rows: {difference:.3g}")
    print(
        f"top 2% rows ({len(suspicious)}): path attributions name SHAP's first feature first in "
        f"{same_first:.0%}, among their first five in {shap_first_in_five:.0%}"
    )
    print()
    columns = ["batch", "LightGBM predict", "compiled raw_score", "ratio"]
    columns += ["LightGBM pred_contrib", "compiled path_contributions", "ratio"]
    print("| " + " | ".join(columns) + " |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for batch in BATCHES:
        predict = rows_per_second(lightgbm_predict, test_x, batch, args.budget)
        compiled = rows_per_second(forest.raw_score, test_x, batch, args.budget)
        contrib = rows_per_second(lightgbm_contrib, test_x, batch, args.budget)
        paths = rows_per_second(forest.path_contributions, test_x, batch, args.budget)
        print(
            f"| {batch:,} | {predict:,.0f} rows/s | {compiled:,.0f} rows/s | {compiled / predict:.1f}x "
            f"| {contrib:,.0f} rows/s | {paths:,.0f} rows/s | {paths / contrib:.0f}x |"
        )
    print()
    print("rows/s on one thread, best pass within the time budget; ratio = compiled / LightGBM")


if __name__ == "__main__":
    main()
