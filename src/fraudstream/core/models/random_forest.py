"""Random forest: robust to noisy features; reasons from path attribution over its trees."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from fraudstream.core.models.base import F32, F64, ModelMetadata, positive_weight, probability_points
from fraudstream.core.models.sklearn_common import SklearnModel

__all__ = ["RandomForestModel"]


class RandomForestModel(SklearnModel):
    """Median imputation and a class-weighted random forest (probabilities are the forest's votes)."""

    kind = "random_forest"

    @classmethod
    def fit(
        cls,
        features: F32,
        labels: npt.NDArray[np.integer[Any]],
        metadata: ModelMetadata,
        params: Mapping[str, object] | None = None,
        sample_weight: F64 | None = None,
    ) -> RandomForestModel:
        settings = {"n_estimators": 100, "max_depth": 12, "min_samples_leaf": 5, **(params or {})}
        weight = positive_weight(labels, cap=10.0)
        forest = RandomForestClassifier(
            n_estimators=int(str(settings["n_estimators"])),
            max_depth=int(str(settings["max_depth"])),
            min_samples_leaf=int(str(settings["min_samples_leaf"])),
            class_weight={0: 1.0, 1: weight},
            random_state=7,
            n_jobs=1,
        )
        pipeline = Pipeline(
            [("impute", SimpleImputer(strategy="median", keep_empty_features=True)), ("model", forest)]
        )
        pipeline.fit(features, labels, model__sample_weight=sample_weight)
        return cls(
            pipeline, replace(metadata, params={**metadata.params, **settings, "positive_weight": weight})
        )

    def predict_proba(self, features: F32) -> F64:
        return np.asarray(self.pipeline.predict_proba(features)[:, 1], dtype=np.float64)

    def contributions(self, features: F32) -> F64:
        """Path attribution (Saabas): along each tree's path, the change in fraud share at a split is
        credited to the split's feature; averaged over the trees. Sums to probability minus the
        forest's base rate."""
        x = self._prepared(features).astype(np.float32)
        total = np.zeros((x.shape[0], x.shape[1]), dtype=np.float64)
        for tree in self.pipeline[-1].estimators_:
            t = tree.tree_
            share = t.value[:, 0, 1] / np.maximum(t.value[:, 0, :].sum(axis=1), 1e-12)
            parent = np.full(t.node_count, -1)
            for side in (t.children_left, t.children_right):
                inner = side >= 0
                parent[side[inner]] = np.flatnonzero(inner)
            has_parent = parent >= 0
            delta = np.zeros((t.node_count, x.shape[1]))
            rows = np.flatnonzero(has_parent)
            delta[rows, t.feature[parent[rows]]] = share[rows] - share[parent[rows]]
            total += tree.decision_path(x) @ delta
        result: F64 = total / len(self.pipeline[-1].estimators_)
        return result

    def score_points(self, features: F32) -> F64:
        """``contributions`` in score points (``probability_points``): the baseline is the trees'
        mean share of fraud in their training samples."""
        return probability_points(self.predict_proba(features), self.contributions(features))
