"""One interface for every model kind, its metadata, and artifacts that load without running code."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from fraudstream.errors import ModelError

__all__ = ["METADATA_FILE", "Model", "ModelMetadata", "check_features", "positive_weight"]

METADATA_FILE: Final = "metadata.json"

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ModelMetadata:
    """What a model is: kind, version, its feature list and order, the data it saw, its metrics.

    >>> m = ModelMetadata("lightgbm", "v1", "2026-11-24T00:00:00Z", ("amount",), "abc")
    >>> ModelMetadata.from_json(m.to_json()) == m
    True
    """

    kind: str
    version: str
    created: str
    feature_names: tuple[str, ...]
    training_fingerprint: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        data["feature_names"] = list(self.feature_names)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelMetadata:
        try:
            data = json.loads(text)
            return cls(
                kind=str(data["kind"]),
                version=str(data["version"]),
                created=str(data["created"]),
                feature_names=tuple(str(n) for n in data["feature_names"]),
                training_fingerprint=str(data["training_fingerprint"]),
                metrics={str(k): float(v) for k, v in data.get("metrics", {}).items()},
                params=dict(data.get("params", {})),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{METADATA_FILE} is not valid model metadata: {exc}") from exc


class Model(Protocol):
    """A fraud model: probability of fraud per row, and per-feature contributions for reasons."""

    metadata: ModelMetadata

    @property
    def feature_names(self) -> tuple[str, ...]: ...

    def predict_proba(self, features: F32) -> F64:
        """Probability of fraud in [0, 1] for each row of ``features`` (columns in feature order)."""
        ...

    def contributions(self, features: F32) -> F64:
        """Per row and feature, how much the feature pushed towards fraud (> 0) or away (< 0)."""
        ...

    def to_artifact(self) -> dict[str, bytes]:
        """The files of the model: the model itself and ``metadata.json``."""
        ...


def check_features(metadata: ModelMetadata, expected: Sequence[str] | None) -> None:
    """Refuse a model whose feature list is not exactly ``expected``, naming the difference."""
    if expected is None or tuple(expected) == metadata.feature_names:
        return
    have, want = set(metadata.feature_names), set(expected)
    missing = sorted(want - have)[:8]
    extra = sorted(have - want)[:8]
    detail = []
    if missing:
        detail.append(f"missing {missing}")
    if extra:
        detail.append(f"unknown to the engine {extra}")
    if not detail:
        detail.append("same names in another order")
    raise ModelError(
        f"model {metadata.version} ({metadata.kind}) was trained on other features: {'; '.join(detail)}. "
        "Retrain it with the engine's feature configuration, or configure the engine like the model."
    )


def positive_weight(labels: npt.NDArray[np.integer[Any]], cap: float = 50.0) -> float:
    """Weight for the rare fraud class: negatives per positive, capped.

    >>> positive_weight(np.array([0] * 99 + [1]))
    50.0
    """
    positives = int(np.sum(labels == 1))
    negatives = int(np.sum(labels == 0))
    if positives == 0:
        raise ModelError("the training data has no fraud labels; a supervised model needs some")
    return float(min(cap, max(1.0, negatives / positives)))


def corrected_probability(raw_log_odds: F64, weight: float) -> F64:
    """Undo the class weight: a model fitted with positives weighted ``w`` predicts odds ``w`` times
    too high, so the true odds are the predicted odds divided by ``w``."""
    result: F64 = 1.0 / (1.0 + np.exp(-(raw_log_odds - np.log(weight))))
    return result


def read_files(files: Mapping[str, bytes], name: str, kind: str) -> bytes:
    data = files.get(name)
    if data is None:
        raise ModelError(f"{kind} artifact has no {name}; files present: {sorted(files)}")
    return data
