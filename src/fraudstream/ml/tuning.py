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
MAX_ROUNDS: Final = 2000
#: Fewer frauds than this on either side of the split: no search, the default settings.
MIN_FRAUDS: Final = 10


@dataclass(frozen=True)
class Search:
    """What the search tried and chose: the settings to refit with (``num_trees`` included), the
    calibration, and one line per candidate for the model card."""

    params: dict[str, Any]
    calibration: tuple[float, float] | None
    tried: list[dict[str, Any]]
    validation_rows: int
    validation_frauds: int


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
) -> Search | None:
    """Choose LightGBM settings on a time-ordered split; None when too few frauds fall on either
    side of it (the caller then fits the defaults, uncalibrated)."""
    held = _split(times_ms)
    y = labels.astype(np.int8)
    if min(int(y[held].sum()), int(y[~held].sum())) < MIN_FRAUDS:
        return None
    learn = lgb.Dataset(features[~held], label=y[~held], free_raw_data=False)
    check = lgb.Dataset(features[held], label=y[held], reference=learn, free_raw_data=False)
    tried = []
    best: tuple[float, int, dict[str, Any], npt.NDArray[np.float64]] | None = None
    for candidate in CANDIDATES:
        booster = lgb.train(
            {**_base(seed), **candidate},
            learn,
            num_boost_round=MAX_ROUNDS,
            valid_sets=[check],
            callbacks=[lgb.early_stopping(PATIENCE, first_metric_only=True, verbose=False)],
        )
        rounds = max(1, int(booster.best_iteration))
        raw = np.asarray(booster.predict(features[held], raw_score=True, num_iteration=rounds))
        score = float(average_precision_score(y[held], raw))
        tried.append({**candidate, "rounds": rounds, "validation_average_precision": round(score, 4)})
        # Ties go to the earlier (simpler) candidate.
        if best is None or score > best[0] + 1e-9:
            best = (score, rounds, candidate, raw)
    assert best is not None
    _, rounds, chosen, raw = best
    calibration = _platt(raw, y[held])
    scaled = round(rounds / (1.0 - VALIDATION_SHARE))
    return Search(
        params={**chosen, "num_trees": scaled, "seed": seed, "num_threads": 2},
        calibration=calibration,
        tried=tried,
        validation_rows=int(held.sum()),
        validation_frauds=int(y[held].sum()),
    )


def _platt(raw: npt.NDArray[np.float64], truth: npt.NDArray[np.int8]) -> tuple[float, float]:
    """Slope and intercept of a logistic fit of the truth on the raw scores (barely regularized)."""
    fit = LogisticRegression(C=1e4, max_iter=1000).fit(raw.reshape(-1, 1), truth)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])
