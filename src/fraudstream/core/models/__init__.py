"""Models behind one interface: LightGBM (default), isolation forest, random forest, logistic."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fraudstream.core.models.base import METADATA_FILE, Model, ModelMetadata, check_features
from fraudstream.errors import ModelError

__all__ = ["KINDS", "Model", "ModelMetadata", "fit_model", "load_model"]

#: Each kind of model, by the module and class that implement it. A kind's module is imported when a
#: model of that kind is first trained or loaded: scikit-learn (with SciPy and skops) was more than
#: half of a server's start-up, and a server deciding with rules alone needs none of it.
KINDS: dict[str, tuple[str, str]] = {
    "lightgbm": ("fraudstream.core.models.lightgbm", "LightGBMModel"),
    "isolation_forest": ("fraudstream.core.models.isolation_forest", "IsolationForestModel"),
    "random_forest": ("fraudstream.core.models.random_forest", "RandomForestModel"),
    "logistic": ("fraudstream.core.models.logistic", "LogisticModel"),
}


def _kind(name: str) -> Any:
    where = KINDS.get(name)
    if where is None:
        raise ModelError(f"model kind {name!r} is unknown; choose one of {', '.join(KINDS)}")
    module, cls = where
    return getattr(importlib.import_module(module), cls)


def fit_model(
    kind: str,
    features: npt.NDArray[np.float32],
    labels: npt.NDArray[np.integer[Any]] | None,
    feature_names: Sequence[str],
    *,
    version: str,
    created: str,
    training_fingerprint: str,
    params: Mapping[str, object] | None = None,
    sample_weight: npt.NDArray[np.float64] | None = None,
) -> Model:
    """Train a model of ``kind`` on a feature matrix (pure: no I/O, no clock).

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(400, 2)).astype(np.float32)
    >>> y = (x[:, 0] > 1.5).astype(np.int8)
    >>> model = fit_model("logistic", x, y, ("a", "b"), version="v1", created="2026-11-24T00:00:00Z",
    ...                   training_fingerprint="demo")
    >>> bool(model.predict_proba(np.array([[3.0, 0.0]], np.float32))[0] > 0.5)
    True
    """
    if features.ndim != 2 or features.shape[1] != len(feature_names):
        raise ModelError(f"features have shape {features.shape} but {len(feature_names)} names were given")
    metadata = ModelMetadata(
        kind=kind,
        version=version,
        created=created,
        feature_names=tuple(feature_names),
        training_fingerprint=training_fingerprint,
    )
    x = np.ascontiguousarray(features, dtype=np.float32)
    model: Model = _kind(kind).fit(x, labels, metadata, params, sample_weight)
    return model


def load_model(files: Mapping[str, bytes], expected_features: Sequence[str] | None = None) -> Model:
    """Rebuild a model from its artifact files; never runs code from them (no pickle)."""
    raw = files.get(METADATA_FILE)
    if raw is None:
        raise ModelError(f"model artifact has no {METADATA_FILE}; files present: {sorted(files)}")
    metadata = ModelMetadata.from_json(raw)
    check_features(metadata, expected_features)
    model: Model = _kind(metadata.kind).from_artifact(files, metadata)
    return model
