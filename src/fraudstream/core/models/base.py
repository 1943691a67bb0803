"""One interface for every model kind, its metadata, and artifacts that load without running code."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from fraudstream.errors import ModelError

__all__ = [
    "METADATA_FILE",
    "Model",
    "ModelMetadata",
    "check_features",
    "log_odds_points",
    "positive_weight",
    "probability_points",
]

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
    #: The training data's distribution per feature (`fraudstream.core.drift.reference_of`), what
    #: drift is measured against; empty for a model trained before references were kept.
    reference: dict[str, Any] = field(default_factory=dict)

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
                reference=dict(data.get("reference", {})),
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
        """Per row and feature, how much the feature pushed towards fraud (> 0) or away (< 0), in the
        model's own units (log-odds for LightGBM and logistic, probability for the random forest,
        interquartile ranges from the median for the isolation forest)."""
        ...

    def score_points(self, features: F32) -> F64:
        """``contributions`` in score points, the 0-100 scale of the score (see ``log_odds_points``):
        a row's points add up to 100 x (probability - the model's baseline probability), and those
        that raise the risk together never exceed 100 x probability. What a model reason reports."""
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
    declared = metadata.params.get("declared_features")
    lacking = [d for d in declared if d.get("feature") in have - want] if isinstance(declared, list) else []
    if lacking:
        raise ModelError(
            f"model {metadata.version} ({metadata.kind}) was trained with declared features the engine's "
            f"configuration lacks: {[d['feature'] for d in lacking]}; declare them in the file "
            "FRAUDSTREAM_FEATURES_PATH names, as the model card lists them "
            f"({[{k: v for k, v in d.items() if k != 'feature'} for d in lacking]}), or retrain"
        )
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


def log_odds_points(log_odds: F64, contributions: F64) -> F64:
    """Per-feature contributions in log-odds (adding up, per row, to ``log_odds`` minus the model's
    baseline) as score points: the model's move from its baseline probability to the row's, x 100,
    shared out over the features.

    The features that lower the risk act first, from the baseline, then those that raise it; each
    group's move in points is shared in proportion to its members' log-odds. So a row's points add
    up to 100 x (probability - baseline probability); each lies within [-100, 100]; the positive
    ones together never exceed 100 x probability (the model's own share of the score, which is at
    most the score); and the features keep their order and sign. Dividing log-odds by one common
    slope instead would read in the hundreds when large pushes cancel out.

    A baseline of -3 (probability 4.74 %), then -1 (to 1.80 %) and +2 (to 11.92 %, log-odds -2):

    >>> points = log_odds_points(np.array([-2.0]), np.array([[2.0, -1.0, 0.0]]))
    >>> points.round(2).tolist(), round(float(points.sum()), 2)
    ([[10.12, -2.94, 0.0]], 7.18)
    >>> log_odds_points(np.array([0.0]), np.array([[30.0, -30.0]])).round(2).tolist()  # no 1500
    [[50.0, -50.0]]
    """
    return _shared_points(contributions, log_odds - contributions.sum(axis=1), _sigmoid)


def probability_points(probability: F64, contributions: F64) -> F64:
    """``log_odds_points`` for contributions in probability (adding up, per row, to ``probability``
    minus the baseline): the same sharing, where a group's move is its probability x 100, kept
    within 0..1 (a path attribution can overshoot it when pushes cancel out).

    >>> probability_points(np.array([0.5]), np.array([[0.3, -0.1]])).round(2).tolist()
    [[30.0, -10.0]]
    >>> probability_points(np.array([0.5]), np.array([[0.6, -0.2]])).round(2).tolist()  # 0.1 - 0.2
    [[50.0, -10.0]]
    """
    return _shared_points(contributions, probability - contributions.sum(axis=1), _unit_interval)


def _shared_points(contributions: F64, baseline: F64, to_probability: Callable[[F64], F64]) -> F64:
    lowering = np.minimum(contributions, 0.0)
    raising = contributions - lowering
    down, up = lowering.sum(axis=1), raising.sum(axis=1)
    start = to_probability(baseline)
    low = to_probability(baseline + down)
    end = to_probability(baseline + down + up)
    down_points = np.divide(100.0 * (low - start), down, out=np.zeros_like(down), where=down != 0)
    up_points = np.divide(100.0 * (end - low), up, out=np.zeros_like(up), where=up != 0)
    result: F64 = lowering * down_points[:, None] + raising * up_points[:, None]
    return result


def _sigmoid(log_odds: F64) -> F64:
    with np.errstate(over="ignore"):  # exp(1000) is inf, and 1 / inf the right 0
        result: F64 = 1.0 / (1.0 + np.exp(-log_odds))
    return result


def _unit_interval(probability: F64) -> F64:
    result: F64 = np.clip(probability, 0.0, 1.0)
    return result


def read_files(files: Mapping[str, bytes], name: str, kind: str) -> bytes:
    data = files.get(name)
    if data is None:
        raise ModelError(f"{kind} artifact has no {name}; files present: {sorted(files)}")
    return data
