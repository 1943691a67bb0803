"""LightGBM gradient boosting: the default supervised model, stored as LightGBM's text format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from fraudstream.core.models.base import (
    F32,
    F64,
    METADATA_FILE,
    ModelMetadata,
    corrected_probability,
    log_odds_points,
    positive_weight,
    read_files,
)
from fraudstream.core.models.trees import CompiledForest, compile_forest
from fraudstream.errors import ModelError

__all__ = ["DEFAULT_PARAMS", "Explainer", "LightGBMModel"]

#: How ``LightGBMModel.contributions`` explains a score: compiled path attributions or TreeSHAP.
Explainer = Literal["path", "shap"]

MODEL_FILE = "model.txt"

#: The settings a model is fitted with when nothing is searched (``fraudstream.ml.tuning`` searches the
#: few that matter on a time-ordered validation split and passes its choice). ``max_bin`` 1023: amounts
#: span cents to millions, and 255 quantile bins left thresholds such as "over 220" between two bins
#: (bench/README.md, detection quality).
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "num_trees": 100,
    "num_leaves": 31,
    "learning_rate": 0.1,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 1023,
    "seed": 7,
    "deterministic": True,
    "num_threads": 1,
    "verbose": -1,
}


class LightGBMModel:
    """A LightGBM booster; probabilities corrected for the fraud-class weight used in training.

    The booster is compiled once into a numba forest (``fraudstream.core.models.trees``) that
    predicts the same raw scores as ``Booster.predict`` (to the bit), 1.0-1.2x its speed on one thread.
    Models the compiled forest does not reproduce exactly (categorical splits, linear trees,
    multiclass) keep LightGBM's own predictor; ``fallback_reason`` then says why.

    Probabilities: when the model carries a calibration (``params["calibration"] = [a, b]``, fitted on
    held-out rows by ``fraudstream.ml.tuning``) the probability is ``1 / (1 + exp(-(a * raw + b)))``, so
    that a score threshold means the same share of fraud whatever model is champion; otherwise the
    raw log-odds are corrected for the fraud-class weight used in training.

    ``explainer`` chooses the contributions behind model reasons:

    - ``"path"`` (default): path attributions from the compiled forest, one tree walk per row,
      90-500x cheaper than TreeSHAP (``bench/trees.py``). Each tree credits a feature with the change
      of expected score where the row's path splits on it. They add up to the same total as SHAP
      values (score minus expected score) but are not SHAP values: a feature gets no credit in a
      tree unless the row's path splits on it, and splits near the leaves weigh more than in SHAP.
      On the most suspicious rows of the default model they name SHAP's first feature first for
      ~3 rows in 4 and among their first five for ~19 in 20; the features they put first push
      towards fraud by SHAP's account too.
    - ``"shap"``: exact TreeSHAP from LightGBM (``shap_contributions``), 80-270x a prediction.
    """

    kind = "lightgbm"

    def __init__(self, booster: lgb.Booster, metadata: ModelMetadata, explainer: Explainer = "path") -> None:
        self.booster = booster
        self.metadata = metadata
        self.explainer: Explainer = explainer
        self._weight = float(metadata.params.get("positive_weight", 1.0))
        calibration = metadata.params.get("calibration")
        self._calibration: tuple[float, float] | None = None
        if calibration is not None:
            try:
                slope, intercept = (float(v) for v in calibration)
            except (TypeError, ValueError) as exc:
                raise ModelError(f"calibration {calibration!r} is not [slope, intercept]: {exc}") from exc
            self._calibration = (slope, intercept)
        self.forest: CompiledForest | None = None
        self.fallback_reason: str | None = None
        try:
            self.forest = compile_forest(booster.model_to_string())
        except ModelError as exc:
            # Not an error for the caller: LightGBM's predictor handles every model it can load.
            self.fallback_reason = str(exc)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.metadata.feature_names

    @classmethod
    def fit(
        cls,
        features: F32,
        labels: npt.NDArray[np.integer[Any]],
        metadata: ModelMetadata,
        params: Mapping[str, object] | None = None,
        sample_weight: F64 | None = None,
    ) -> LightGBMModel:
        given = dict(params or {})
        weight = float(given.pop("scale_pos_weight", positive_weight(labels)))  # type: ignore[arg-type]
        calibration = given.pop("calibration", None)
        extra = {k: given.pop(k) for k in ("search",) if k in given}
        merged = {**DEFAULT_PARAMS, **given, "scale_pos_weight": weight}
        rounds = int(merged.pop("num_trees"))
        data = lgb.Dataset(features, label=labels, weight=sample_weight, free_raw_data=True)
        booster = lgb.train(merged, data, num_boost_round=rounds)
        stored = {**metadata.params, **merged, "num_trees": rounds, "positive_weight": weight, **extra}
        if calibration is not None:
            stored["calibration"] = [float(v) for v in calibration]  # type: ignore[attr-defined]
        return cls(booster, _with_params(metadata, stored))

    def raw_score(self, features: F32) -> F64:
        if self.forest is None:
            return np.asarray(self.booster.predict(features, raw_score=True, num_threads=1), dtype=np.float64)
        return self.forest.raw_score(features)

    def predict_proba(self, features: F32) -> F64:
        raw = self.raw_score(features)
        if self._calibration is None:
            return corrected_probability(raw, self._weight)
        slope, intercept = self._calibration
        result: F64 = 1.0 / (1.0 + np.exp(-(slope * raw + intercept)))
        return result

    def log_odds(self, features: F32) -> F64:
        """The log-odds behind ``predict_proba``: calibrated, or corrected for the class weight."""
        raw = self.raw_score(features)
        if self._calibration is None:
            corrected: F64 = raw - np.log(self._weight)
            return corrected
        slope, intercept = self._calibration
        result: F64 = slope * raw + intercept
        return result

    def contributions(self, features: F32) -> F64:
        """Per-feature contributions in log-odds, by the model's ``explainer`` (see the class); with
        a calibration, in the calibrated log-odds (scaled by its slope)."""
        if self.explainer == "shap" or self.forest is None:
            values = self.shap_contributions(features)
        else:
            values = self.forest.path_contributions(features)
        return values if self._calibration is None else values * self._calibration[0]

    def score_points(self, features: F32) -> F64:
        """``contributions`` in score points (``log_odds_points``): the baseline is the probability
        of the forest's expected raw score."""
        return log_odds_points(self.log_odds(features), self.contributions(features))

    def shap_contributions(self, features: F32) -> F64:
        """SHAP values (LightGBM's TreeSHAP, in log-odds); the expected value column is dropped."""
        values = np.asarray(
            self.booster.predict(features, pred_contrib=True, num_threads=1), dtype=np.float64
        )
        return values[:, :-1]

    def to_artifact(self) -> dict[str, bytes]:
        return {
            MODEL_FILE: self.booster.model_to_string().encode(),
            METADATA_FILE: self.metadata.to_json().encode(),
        }

    @classmethod
    def from_artifact(cls, files: Mapping[str, bytes], metadata: ModelMetadata) -> LightGBMModel:
        text = read_files(files, MODEL_FILE, cls.kind).decode("utf-8", errors="strict")
        try:
            booster = lgb.Booster(model_str=text)
        except lgb.basic.LightGBMError as exc:
            raise ModelError(f"{MODEL_FILE} is not a LightGBM text model: {exc}") from exc
        if booster.num_feature() != len(metadata.feature_names):
            raise ModelError(
                f"{MODEL_FILE} has {booster.num_feature()} features but {METADATA_FILE} lists "
                f"{len(metadata.feature_names)}; the artifact is inconsistent"
            )
        return cls(booster, metadata)


def _with_params(metadata: ModelMetadata, params: dict[str, Any]) -> ModelMetadata:
    from dataclasses import replace

    return replace(metadata, params=params)
