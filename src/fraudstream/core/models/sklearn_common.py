"""What the scikit-learn kinds share: skops files loaded only when every type in them is allow-listed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import skops.io as sio

from fraudstream.core.models.base import F32, F64, METADATA_FILE, ModelMetadata, read_files
from fraudstream.errors import ModelError

__all__ = ["SklearnModel", "dump", "load"]

MODEL_FILE: Final = "model.skops"

#: Types a fraudstream scikit-learn artifact may contain; anything else is refused before loading.
_TRUSTED: Final = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.pipeline.Pipeline",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._iforest.IsolationForest",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeRegressor",
    }
)


def dump(estimator: Any) -> bytes:
    data: bytes = sio.dumps(estimator)
    return data


def load(data: bytes) -> Any:
    try:
        untrusted = set(sio.get_untrusted_types(data=data))
    except Exception as exc:  # skops raises several kinds for a corrupt archive
        raise ModelError(f"{MODEL_FILE} is not a readable skops archive: {exc}") from exc
    refused = sorted(untrusted - _TRUSTED)
    if refused:
        raise ModelError(
            f"{MODEL_FILE} contains types fraudstream does not load: {refused}; only scikit-learn models "
            "trained by fraudstream are accepted"
        )
    return sio.loads(data, trusted=sorted(untrusted))


class SklearnModel:
    """A fitted scikit-learn pipeline (imputer first: the engine sends NaN for missing values)."""

    kind = "sklearn"

    def __init__(self, pipeline: Any, metadata: ModelMetadata) -> None:
        self.pipeline = pipeline
        self.metadata = metadata

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.metadata.feature_names

    def _prepared(self, features: F32) -> F64:
        """The rows as the final estimator sees them (after imputation and scaling)."""
        prepared: F64 = np.asarray(self.pipeline[:-1].transform(features), dtype=np.float64)
        return prepared

    def to_artifact(self) -> dict[str, bytes]:
        return {MODEL_FILE: dump(self.pipeline), METADATA_FILE: self.metadata.to_json().encode()}

    @classmethod
    def from_artifact(cls, files: Mapping[str, bytes], metadata: ModelMetadata) -> Any:
        pipeline = load(read_files(files, MODEL_FILE, metadata.kind))
        return cls(pipeline, metadata)
