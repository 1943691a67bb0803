"""Isolation forest: unsupervised, for a cold start before any fraud is labelled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from fraudstream.core.models.base import F32, F64, ModelMetadata
from fraudstream.core.models.sklearn_common import SklearnModel

__all__ = ["IsolationForestModel"]


class IsolationForestModel(SklearnModel):
    """Anomaly score turned into a probability-like 0..1.

    The forest's anomaly score ``s`` (higher: easier to isolate) is mapped through a logistic curve
    centred on the training data's ``contamination`` quantile of ``s``, so the most unusual
    ``contamination`` share of training traffic scores above 0.5 and typical traffic near 0; the
    curve's width is the spread (interquartile range) of the training scores.
    """

    kind = "isolation_forest"

    @classmethod
    def fit(
        cls,
        features: F32,
        labels: npt.NDArray[np.integer[Any]] | None,
        metadata: ModelMetadata,
        params: Mapping[str, object] | None = None,
        sample_weight: F64 | None = None,
    ) -> IsolationForestModel:
        settings = {"n_estimators": 100, "contamination": 0.01, "max_samples": 256, **(params or {})}
        forest = IsolationForest(
            n_estimators=int(str(settings["n_estimators"])),
            max_samples=int(str(settings["max_samples"])),
            random_state=7,
            n_jobs=1,
        )
        pipeline = Pipeline(
            [("impute", SimpleImputer(strategy="median", keep_empty_features=True)), ("model", forest)]
        )
        if sample_weight is None:
            pipeline.fit(features)
        else:
            pipeline.fit(features, model__sample_weight=sample_weight)
        prepared = np.asarray(pipeline[:-1].transform(features), dtype=np.float64)
        scores = -pipeline[-1].score_samples(prepared)
        contamination = float(str(settings["contamination"]))
        centre = float(np.quantile(scores, 1.0 - contamination))
        q1, q3 = np.quantile(scores, [0.25, 0.75])
        median = np.median(prepared, axis=0)
        spread = np.subtract(*np.quantile(prepared, [0.75, 0.25], axis=0))
        calibration = {
            "centre": centre,
            "width": float(max(q3 - q1, 1e-6)) / 2.0,
            "median": median.tolist(),
            "spread": np.where(spread > 0, spread, 1.0).tolist(),
        }
        return cls(
            pipeline, replace(metadata, params={**metadata.params, **settings, "calibration": calibration})
        )

    def predict_proba(self, features: F32) -> F64:
        calibration = self.metadata.params["calibration"]
        scores = -self.pipeline.score_samples(features)
        result: F64 = 1.0 / (1.0 + np.exp(-(scores - calibration["centre"]) / calibration["width"]))
        return result

    def contributions(self, features: F32) -> F64:
        """How far each feature lies from the training median, in interquartile ranges (not SHAP:
        an isolation forest has no labels to attribute; this says which values are unusual)."""
        calibration = self.metadata.params["calibration"]
        deviation = np.abs(self._prepared(features) - np.asarray(calibration["median"]))
        result: F64 = deviation / np.asarray(calibration["spread"])
        return result

    def score_points(self, features: F32) -> F64:
        """The model's points above those of the training median row, 100 x (probability - its
        probability), shared out in proportion to ``contributions``: an isolation forest has no
        signed attribution, so this says how much of its score each value's unusualness carries.
        A row no more unusual than the median one gives every feature 0 points. Each lies within
        [0, 100]; together they never exceed 100 x probability."""
        calibration = self.metadata.params["calibration"]
        median = np.asarray(calibration["median"], dtype=np.float32).reshape(1, -1)
        above = np.maximum(self.predict_proba(features) - self.predict_proba(median)[0], 0.0)
        deviation = self.contributions(features)
        total = deviation.sum(axis=1)
        share = np.divide(100.0 * above, total, out=np.zeros_like(total), where=total > 0)
        result: F64 = deviation * share[:, None]
        return result
