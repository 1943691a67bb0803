"""Fitting LightGBM on few frauds: a time-ordered validation split, a small search, early stopping,
and a calibration of its probabilities on the held-out rows.

A training window of a week holds a few hundred frauds. Settings that suit a million positives
(31 leaves, 100 rounds of 0.1) overfit them, and the best number of rounds differs from one data set
to the next. So the training rows are split by time: the model learns on the earlier part and is
judged on the later one (the way it will be used: on days it has not seen), for a handful of
settings, each stopped when the held-out average precision stops improving. The best is refitted on
all the rows, with its number of rounds scaled to the larger set, and a logistic calibration
(Platt) fitted on the held-out rows maps its raw scores to probabilities: a score threshold then
means about the same share of fraud whichever model is champion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from fraudstream.core.models.lightgbm import DEFAULT_PARAMS
from fraudstream.ml import Progress

__all__ = ["CANDIDATES", "Search", "search_lightgbm"]

#: The settings searched: tree size, smallest leaf, learning rate, L2 regularization and the weight
#: of the fraud class. Few, and far apart, because each is judged on a few hundred frauds.
CANDIDATES: Final[tuple[dict[str, Any], ...]] = (
    {
        "num_leaves": 15,
        "min_data_in_leaf": 20,
        "learning_rate": 0.05,
        "lambda_l2": 1.0,
        "scale_pos_weight": 1.0,
    },
    {
        "num_leaves": 7,
        "min_data_in_leaf": 20,
        "learning_rate": 0.05,
        "lambda_l2": 1.0,
        "scale_pos_weight": 1.0,
    },
    {
        "num_leaves": 31,
        "min_data_in_leaf": 50,
        "learning_rate": 0.05,
        "lambda_l2": 1.0,
        "scale_pos_weight": 1.0,
    },
    {
        "num_leaves": 15,
        "min_data_in_leaf": 100,
        "learning_rate": 0.05,
        "lambda_l2": 10.0,
        "scale_pos_weight": 1.0,
    },
    {
        "num_leaves": 15,
        "min_data_in_leaf": 20,
        "learning_rate": 0.05,
        "lambda_l2": 1.0,
        "scale_pos_weight": 10.0,
    },
    {
        "num_leaves": 15,
        "min_data_in_leaf": 20,
        "learning_rate": 0.02,
        "lambda_l2": 1.0,
        "scale_pos_weight": 1.0,
    },
)
#: The later share of the training window's time held out for choosing and calibrating.
VALIDATION_SHARE: Final = 0.25
#: Rounds without a better held-out average precision before a candidate stops.
PATIENCE: Final = 100
#: Rounds a candidate may use: refitted on all rows (x 4/3), a model has at most 500 trees, which
#: bounds what it costs per decision (about 2.5x the 100 trees x 31 leaves of the defaults at 15
#: leaves; bench/README.md).
MAX_ROUNDS: Final = 375
#: Fewer frauds than this on either side of the split: no search, the default settings.
MIN_FRAUDS: Final = 10
#: Rows each side of the split keeps for the search at most: every fraud and a sample of the
#: legitimate rows, weighted up to stand for all of them. A week of a small team's traffic fits whole;
#: on a million rows the search costs what it costs on this many (the refit uses every row).
SEARCH_ROWS: Final = 150_000


@dataclass(frozen=True)
class Search:
    """What the search tried and chose: the settings to refit with (``num_trees`` included), the
    calibration, and one line per candidate for the model card."""

    params: dict[str, Any]
    calibration: tuple[float, float]
    tried: list[dict[str, Any]]
    validation_rows: int
    validation_frauds: int
    #: Rows the search learnt and judged on (all, or every fraud and a weighted sample of the rest).
    searched_rows: int


def _split(times_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Rows in the last ``VALIDATION_SHARE`` of the time span (the held-out ones)."""
    start, stop = int(times_ms.min()), int(times_ms.max())
    return times_ms >= start + (1.0 - VALIDATION_SHARE) * (stop - start)


def _base(seed: int) -> dict[str, Any]:
    params = {k: v for k, v in DEFAULT_PARAMS.items() if k not in ("num_trees",)}
    # Two threads: a fixed count keeps training deterministic for a seed (LightGBM's `deterministic`).
    return {**params, "seed": seed, "metric": "average_precision", "num_threads": 2}


def search_lightgbm(
    features: npt.NDArray[np.float32],
    labels: npt.NDArray[np.integer[Any]],
    times_ms: npt.NDArray[np.int64],
    seed: int = 7,
    progress: Progress | None = None,
) -> Search | None:
    """Choose LightGBM settings on a time-ordered split; None when too few frauds fall on either
    side of it (the caller then fits the defaults, uncalibrated). ``progress`` hears "choosing
    LightGBM settings" before each candidate and once all are tried."""
    held = _split(times_ms)
    y = labels.astype(np.int8)
    if min(int(y[held].sum()), int(y[~held].sum())) < MIN_FRAUDS:
        return None
    rng = np.random.default_rng(seed)
    learn_rows, learn_weight = _sample(np.flatnonzero(~held), y, rng)
    held_rows, held_weight = _sample(np.flatnonzero(held), y, rng)
    learn = lgb.Dataset(features[learn_rows], label=y[learn_rows], weight=learn_weight, free_raw_data=False)
    check = lgb.Dataset(
        features[held_rows], label=y[held_rows], weight=held_weight, reference=learn, free_raw_data=False
    )
    tried = []
    best: tuple[float, int, dict[str, Any], npt.NDArray[np.float64]] | None = None
    for tried_so_far, candidate in enumerate(CANDIDATES):
        if progress is not None:
            progress("choosing LightGBM settings", tried_so_far, len(CANDIDATES))
        booster = lgb.train(
            {**_base(seed), **candidate},
            learn,
            num_boost_round=MAX_ROUNDS,
            valid_sets=[check],
            callbacks=[lgb.early_stopping(PATIENCE, first_metric_only=True, verbose=False)],
        )
        rounds = max(1, int(booster.best_iteration))
        raw = np.asarray(booster.predict(features[held_rows], raw_score=True, num_iteration=rounds))
        score = float(average_precision_score(y[held_rows], raw, sample_weight=held_weight))
        tried.append({**candidate, "rounds": rounds, "validation_average_precision": round(score, 4)})
        # Ties go to the earlier (simpler) candidate.
        if best is None or score > best[0] + 1e-9:
            best = (score, rounds, candidate, raw)
    assert best is not None
    if progress is not None:
        progress("choosing LightGBM settings", len(CANDIDATES), len(CANDIDATES))
    _, rounds, chosen, raw = best
    calibration = _platt(raw, y[held_rows], held_weight)
    scaled = round(rounds / (1.0 - VALIDATION_SHARE))
    return Search(
        params={**chosen, "num_trees": scaled, "seed": seed, "num_threads": 2},
        calibration=calibration,
        tried=tried,
        validation_rows=int(held.sum()),
        searched_rows=len(learn_rows) + len(held_rows),
        validation_frauds=int(y[held].sum()),
    )


def _sample(
    rows: npt.NDArray[np.int64], y: npt.NDArray[np.int8], rng: np.random.Generator, cap: int = SEARCH_ROWS
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """``rows`` whole when they are at most ``cap``, else every fraud among them and a uniform
    sample of the others; each kept row's weight is how many rows it stands for.

    >>> y = np.array([1] + [0] * 9, np.int8)
    >>> kept, weight = _sample(np.arange(10), y, np.random.default_rng(0), cap=4)
    >>> int(y[kept].sum()), len(kept), weight.tolist(), float(weight.sum())
    (1, 4, [1.0, 3.0, 3.0, 3.0], 10.0)
    """
    weight = np.ones(len(rows))
    if len(rows) <= cap:
        return rows, weight
    frauds, others = rows[y[rows] == 1], rows[y[rows] == 0]
    keep = max(cap - len(frauds), 1)
    chosen = np.sort(rng.choice(others, size=min(keep, len(others)), replace=False))
    kept = np.sort(np.concatenate([frauds, chosen]))
    weight = np.where(y[kept] == 1, 1.0, len(others) / len(chosen))
    return kept, weight


def _platt(
    raw: npt.NDArray[np.float64], truth: npt.NDArray[np.int8], weight: npt.NDArray[np.float64]
) -> tuple[float, float]:
    """Slope and intercept of a logistic fit of the truth on the raw scores (barely regularized)."""
    fit = LogisticRegression(C=1e4, max_iter=1000).fit(raw.reshape(-1, 1), truth, sample_weight=weight)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])
