"""Logistic regression: a transparent baseline whose contributions are exact in log-odds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from fraudstream.core.models.base import (
    F32,
    F64,
    ModelMetadata,
    corrected_probability,
    log_odds_points,
    positive_weight,
)
from fraudstream.core.models.sklearn_common import SklearnModel

__all__ = ["LogisticModel"]


class LogisticModel(SklearnModel):
    """Median imputation, standard scaling, L2 logistic regression with the fraud class weighted."""

    kind = "logistic"

    @classmethod
    def fit(
        cls,
        features: F32,
        labels: npt.NDArray[np.integer[Any]],
        metadata: ModelMetadata,
        params: Mapping[str, object] | None = None,
        sample_weight: F64 | None = None,
    ) -> LogisticModel:
        weight = positive_weight(labels)
        c = float(str((params or {}).get("C", 1.0)))
        pipeline = Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scale", StandardScaler()),
                ("model", LogisticRegression(C=c, max_iter=1000, class_weight={0: 1.0, 1: weight})),
            ]
        )
        pipeline.fit(features, labels, model__sample_weight=sample_weight)
        return cls(pipeline, _params(metadata, {"C": c, "positive_weight": weight}))

    def predict_proba(self, features: F32) -> F64:
        raw = np.asarray(self.pipeline.decision_function(features), dtype=np.float64)
        return corrected_probability(raw, float(self.metadata.params.get("positive_weight", 1.0)))

    def contributions(self, features: F32) -> F64:
        """coefficient x standardised value: each feature's exact share of the log-odds."""
        coefficients = np.asarray(self.pipeline[-1].coef_[0], dtype=np.float64)
        result: F64 = self._prepared(features) * coefficients
        return result

    def score_points(self, features: F32) -> F64:
        """``contributions`` in score points (``log_odds_points``): the baseline is the probability
        of a row at the training means."""
        return log_odds_points(self.log_odds(features), self.contributions(features))

    def log_odds(self, features: F32) -> F64:
        """The log-odds behind ``predict_proba``, corrected for the class weight."""
        raw = np.asarray(self.pipeline.decision_function(features), dtype=np.float64)
        result: F64 = raw - np.log(float(self.metadata.params.get("positive_weight", 1.0)))
        return result


def _params(metadata: ModelMetadata, params: dict[str, Any]) -> ModelMetadata:
    from dataclasses import replace

    return replace(metadata, params={**metadata.params, **params})
