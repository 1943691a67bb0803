"""Training and evaluation by replaying history through the same engine that serves.

Features are never computed separately for training: the history is replayed through
:class:`fraudstream.core.engine.Engine` in event-time order, with each fraud label applied only once it
would have been known (transaction time + label delay). Training rows are those whose label is known
by the end of the training window, so the model never learns from the future.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fraudstream.core.engine import Engine, EngineConfig
from fraudstream.core.features import FeatureState
from fraudstream.core.models import Model, fit_model
from fraudstream.core.policy import REVIEW
from fraudstream.core.replay import replay, replay_features
from fraudstream.ml.dataset import History
from fraudstream.ml.metrics import fraud_metrics
from fraudstream.ml.registry import Registry

__all__ = [
    "Replayed",
    "evaluate",
    "model_card",
    "replay_history",
    "replay_training_features",
    "train",
    "train_and_register",
]

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Replayed:
    """What the engine computed for every transaction of a history, in order."""

    features: npt.NDArray[np.float32]
    feature_names: tuple[str, ...]
    probability: npt.NDArray[np.float32]
    score: npt.NDArray[np.int16]
    decision: npt.NDArray[np.uint8]
    rules: list[list[str]]
    #: Human reasons, for the rows that have any (rule hits, or model reasons when not approved).
    reasons: list[list[str]]


def replay_history(
    history: History, label_delay_ms: int, model: Model | None = None, config: EngineConfig | None = None
) -> Replayed:
    """Score the whole history in order, labels applied when known; keep features and decisions."""
    engine = Engine(config or EngineConfig(), model=model)
    features, probability, score, decision = [], [], [], []
    rules: list[list[str]] = []
    reasons: list[list[str]] = []
    for _, decisions in replay(engine, history.batch, history.labels(label_delay_ms), batch_size=8192):
        features.append(decisions.features.values)
        probability.append(decisions.probability)
        score.append(decisions.score)
        decision.append(decisions.decision_code)
        for record in decisions.to_records():
            rules.append(record["rules"])  # type: ignore[arg-type]
            reasons.append([r["text"] for r in record["reasons"]])  # type: ignore[attr-defined]
    names = engine.feature_names
    return Replayed(
        np.vstack(features),
        names,
        np.concatenate(probability),
        np.concatenate(score),
        np.concatenate(decision),
        rules,
        reasons,
    )


def replay_training_features(
    history: History, label_delay_ms: int, config: EngineConfig | None = None
) -> tuple[npt.NDArray[np.float32], tuple[str, ...]]:
    """Only the features of the whole history, labels applied when known: what training needs."""
    state = FeatureState((config or EngineConfig()).features)
    parts = [m.values for m in replay_features(state, history.batch, history.labels(label_delay_ms))]
    return np.vstack(parts), state.feature_names


def _window(history: History, start_ms: int | None, stop_ms: int | None) -> npt.NDArray[np.bool_]:
    ts = history.batch.timestamp_ms
    inside = np.ones(len(ts), dtype=bool)
    if start_ms is not None:
        inside &= ts >= start_ms
    if stop_ms is not None:
        inside &= ts < stop_ms
    return inside


def train(
    history: History,
    kind: str,
    *,
    train_from_ms: int | None,
    train_to_ms: int | None,
    label_delay_ms: int,
    params: dict[str, Any] | None = None,
    features: tuple[npt.NDArray[np.float32], tuple[str, ...]] | None = None,
) -> tuple[Model, dict[str, float]]:
    """Fit a model on the rows of the window whose labels are known by its end."""
    matrix, names = features if features is not None else replay_training_features(history, label_delay_ms)
    end = train_to_ms if train_to_ms is not None else int(history.batch.timestamp_ms.max()) + 1
    rows = _window(history, train_from_ms, end - label_delay_ms)
    if not rows.any():
        span_h = (end - 1 - int(history.batch.timestamp_ms.min())) / 3_600_000
        raise ValueError(
            "no transaction in the training window has a label known by its end: the history spans "
            f"{span_h:,.0f} h and labels become known {label_delay_ms / 3_600_000:,.0f} h after their "
            "transaction; widen the window or shorten the label delay (--label-delay, e.g. 1d)"
        )
    now = datetime.now(UTC)
    version = f"{now:%Y%m%d-%H%M%S}-{kind}-{secrets.token_hex(2)}"
    model = fit_model(
        kind,
        matrix[rows],
        history.is_fraud[rows].astype(np.int8),
        names,
        version=version,
        created=now.isoformat(),
        training_fingerprint=history.fingerprint,
        params=params,
    )
    summary = {
        "training_rows": float(rows.sum()),
        "training_frauds": float(history.is_fraud[rows].sum()),
        "label_delay_days": label_delay_ms / DAY_MS,
    }
    return model, summary


def evaluate(
    history: History,
    model: Model | None,
    *,
    from_ms: int | None,
    to_ms: int | None,
    label_delay_ms: int,
    config: EngineConfig | None = None,
) -> tuple[dict[str, Any], Replayed, npt.NDArray[np.bool_]]:
    """Replay everything (history before the window builds the state); measure on the window."""
    replayed = replay_history(history, label_delay_ms, model, config)
    rows = _window(history, from_ms, to_ms)
    probability = replayed.probability[rows]
    if model is None:  # rules only: rank by the policy's score
        probability = replayed.score[rows].astype(np.float32) / 100.0
    flagged = replayed.decision[rows] >= REVIEW
    truth = history.is_fraud[rows]
    day = history.batch.timestamp_ms[rows] // DAY_MS
    users = np.asarray(history.batch.user_id.to_numpy(zero_copy_only=False), dtype=object)[rows]
    report: dict[str, Any] = fraud_metrics(
        truth, probability, flagged, history.batch.amount[rows], day, user=users
    )
    if history.scenario is not None:
        scenarios = np.array(history.scenario, dtype=object)[rows]
        report["recall_by_scenario"] = {
            name: round(float(flagged[scenarios == name].mean()), 4)
            for name in sorted(set(scenarios.tolist()) - {""})
        }
    return report, replayed, rows


def model_card(model: Model, training: dict[str, float], metrics: dict[str, Any]) -> str:
    """A short Markdown card: what the model is, what it saw, how it did."""
    meta = model.metadata
    lines = [
        f"# Model {meta.version}",
        "",
        f"- kind: {meta.kind}",
        f"- created: {meta.created}",
        f"- features: {len(meta.feature_names)}",
        f"- training data fingerprint: {meta.training_fingerprint}",
        *(f"- {k.replace('_', ' ')}: {v:g}" for k, v in training.items()),
        "",
        "## Holdout metrics",
        "",
        *(f"- {k.replace('_', ' ')}: {v}" for k, v in metrics.items() if not isinstance(v, dict)),
    ]
    return "\n".join(lines) + "\n"


def train_and_register(
    history: History,
    kind: str,
    registry: Registry,
    *,
    label_delay_ms: int,
    train_from_ms: int | None = None,
    train_to_ms: int | None = None,
    features: tuple[npt.NDArray[np.float32], tuple[str, ...]] | None = None,
) -> tuple[Model, dict[str, float], dict[str, Any], Path]:
    """Train on the window (by default the first 80 % of the history's time), evaluate on the rest,
    store the model with its holdout metrics and model card. Returns the model, the training summary,
    the holdout report and where it was stored."""
    ts = history.batch.timestamp_ms
    end = train_to_ms if train_to_ms is not None else int(ts.min() + 0.8 * (ts.max() - ts.min()))
    trained, summary = train(
        history,
        kind,
        train_from_ms=train_from_ms,
        train_to_ms=end,
        label_delay_ms=label_delay_ms,
        features=features,
    )
    report, _, _ = evaluate(history, trained, from_ms=end, to_ms=None, label_delay_ms=label_delay_ms)
    numbers = {k: v for k, v in report.items() if isinstance(v, float)}
    trained.metadata = dataclasses.replace(trained.metadata, metrics=numbers)
    path = registry.save(trained, model_card(trained, summary, report))
    return trained, summary, report, path
