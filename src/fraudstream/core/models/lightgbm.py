"""LightGBM gradient boosting: the default supervised model, stored as LightGBM's text format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from fraudstream.core.models.base import (
    F32,
    F64,
    METADATA_FILE,
    ModelMetadata,
    corrected_probability,
    positive_weight,
    read_files,
)
from fraudstream.errors import ModelError

__all__ = ["DEFAULT_PARAMS", "LightGBMModel"]

MODEL_FILE = "model.txt"

#: 100 trees of 31 leaves: see bench/README.md for the quality/speed trade-off behind the size.
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
    "seed": 7,
    "deterministic": True,
    "num_threads": 1,
    "verbose": -1,
}


class LightGBMModel:
    """A LightGBM booster; probabilities corrected for the fraud-class weight used in training."""

    kind = "lightgbm"

    def __init__(self, booster: lgb.Booster, metadata: ModelMetadata) -> None:
        self.booster = booster
        self.metadata = metadata
        self._weight = float(metadata.params.get("positive_weight", 1.0))

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
        weight = positive_weight(labels)
        merged = {**DEFAULT_PARAMS, **(params or {}), "scale_pos_weight": weight}
        rounds = int(merged.pop("num_trees"))
        data = lgb.Dataset(features, label=labels, weight=sample_weight, free_raw_data=True)
        booster = lgb.train(merged, data, num_boost_round=rounds)
        stored = {**metadata.params, **merged, "num_trees": rounds, "positive_weight": weight}
        return cls(booster, _with_params(metadata, stored))

    def raw_score(self, features: F32) -> F64:
        return np.asarray(self.booster.predict(features, raw_score=True, num_threads=1), dtype=np.float64)

    def predict_proba(self, features: F32) -> F64:
        return corrected_probability(self.raw_score(features), self._weight)

    def contributions(self, features: F32) -> F64:
        """SHAP values (TreeSHAP, in log-odds); the expected value column is dropped."""
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
