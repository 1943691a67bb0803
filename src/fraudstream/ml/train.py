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

from fraudstream.core.drift import reference_of
from fraudstream.core.engine import Engine, EngineConfig
from fraudstream.core.features import FeatureState, format_duration
from fraudstream.core.models import Model, fit_model
from fraudstream.core.policy import REVIEW
from fraudstream.core.replay import replay, replay_features
from fraudstream.errors import ConfigError
from fraudstream.ml import Progress
from fraudstream.ml.dataset import History
from fraudstream.ml.metrics import fraud_metrics, threshold_table
from fraudstream.ml.registry import Registry
from fraudstream.ml.tuning import search_lightgbm

__all__ = [
    "Replayed",
    "engine_config",
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


def engine_config(label_delay_ms: int, base: EngineConfig | None = None) -> EngineConfig:
    """``base`` (default: the default configuration) with label windows that end ``label_delay_ms``
    back: the engine that replays history with labels known that late, and the one that serves a
    model trained so, must count labels alike."""
    base = base or EngineConfig()
    features = dataclasses.replace(base.features, label_delay=format_duration(label_delay_ms))
    return dataclasses.replace(base, features=features)


def replay_history(
    history: History,
    label_delay_ms: int,
    model: Model | None = None,
    config: EngineConfig | None = None,
    explain: npt.NDArray[np.bool_] | None = None,
    progress: Progress | None = None,
) -> Replayed:
    """Score the whole history in order, labels applied when known; keep features and decisions, and
    the rules and reasons of the rows ``explain`` marks (all rows by default; the others get empty
    lists: reasons cost Python work per row, and a replay of millions needs them for a window only).
    ``progress`` hears "replaying decisions" after each chunk of rows."""
    engine = Engine(config or engine_config(label_delay_ms), model=model)
    features, probability, score, decision = [], [], [], []
    rules: list[list[str]] = []
    reasons: list[list[str]] = []
    done = 0
    for _, decisions in replay(engine, history.batch, history.labels(label_delay_ms), batch_size=8192):
        features.append(decisions.features.values)
        probability.append(decisions.probability)
        score.append(decisions.score)
        decision.append(decisions.decision_code)
        n = len(decisions)
        wanted = np.arange(n) if explain is None else np.flatnonzero(explain[done : done + n])
        rules += [[] for _ in range(n)]
        reasons += [[] for _ in range(n)]
        for row, found in zip(wanted.tolist(), decisions.reasons_rows(wanted.tolist())):
            rules[done + row] = decisions.rules_hit(row)
            reasons[done + row] = [r.text for r in found]
        done += n
        if progress is not None:
            progress("replaying decisions", done, len(history.batch))
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
    history: History,
    label_delay_ms: int,
    config: EngineConfig | None = None,
    progress: Progress | None = None,
) -> tuple[npt.NDArray[np.float32], tuple[str, ...]]:
    """Only the features of the whole history, labels applied when known: what training needs.
    ``progress`` hears "replaying features" after each chunk of rows."""
    state = FeatureState((config or engine_config(label_delay_ms)).features)
    parts, done, total = [], 0, len(history.batch)
    for matrix in replay_features(state, history.batch, history.labels(label_delay_ms)):
        parts.append(matrix.values)
        done += len(matrix.values)
        if progress is not None:
            progress("replaying features", done, total)
    return np.vstack(parts), state.feature_names


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


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
    progress: Progress | None = None,
    config: EngineConfig | None = None,
) -> tuple[Model, dict[str, Any]]:
    """Fit a model on the rows of the window old enough for their labels to be known by its end,
    each labelled as it was known then (LightGBM: settings searched and probabilities calibrated by
    `fraudstream.ml.tuning` unless ``params`` are given). ``progress`` hears each step: replaying
    features, choosing LightGBM settings, fitting. ``config``: the engine configuration to replay
    with (default: the default one), its declared aggregations recorded in the model."""
    replay_config = engine_config(label_delay_ms, config)
    matrix, names = (
        features
        if features is not None
        else replay_training_features(history, label_delay_ms, replay_config, progress=progress)
    )
    end = train_to_ms if train_to_ms is not None else int(history.batch.timestamp_ms.max()) + 1
    rows = _window(history, train_from_ms, end - label_delay_ms)
    if not rows.any():
        span_h = (end - 1 - int(history.batch.timestamp_ms.min())) / 3_600_000
        raise ConfigError(
            "no transaction in the training window has a label known by its end: the history spans "
            f"{span_h:,.0f} h and labels become known {label_delay_ms / 3_600_000:,.0f} h after their "
            "transaction; widen the window or shorten the label delay (--label-delay, e.g. 1d)"
        )
    now = datetime.now(UTC)
    version = f"{now:%Y%m%d-%H%M%S}-{kind}-{secrets.token_hex(2)}"
    labels = history.known_fraud(end, label_delay_ms)[rows].astype(np.int8)
    search = None
    if kind == "lightgbm" and params is None:
        search = search_lightgbm(matrix[rows], labels, history.batch.timestamp_ms[rows], progress=progress)
        if search is not None:
            params = {**search.params, "calibration": list(search.calibration)}
            params["search"] = {
                "validation_rows": search.validation_rows,
                "validation_frauds": search.validation_frauds,
                "searched_rows": search.searched_rows,
                "training_rows": int(rows.sum()),
                "tried": search.tried,
            }
    if progress is not None:
        progress(f"fitting {kind} on {int(rows.sum()):,} rows", 0, 0)
    model = fit_model(
        kind,
        matrix[rows],
        labels,
        names,
        version=version,
        created=now.isoformat(),
        training_fingerprint=history.fingerprint,
        params=params,
    )
    delay = format_duration(label_delay_ms)
    # The declared features it learnt from, so that an engine configured without them refuses it by
    # name, and its card says where they come from.
    declared = [
        {"feature": a.feature_name, **a.to_dict()}
        for a in replay_config.features.aggregations
        if a.feature_name in names
    ]
    model.metadata = dataclasses.replace(
        model.metadata,
        params={
            **model.metadata.params,
            "label_delay": delay,
            **({"declared_features": declared} if declared else {}),
        },
        # What drift is measured against: the training rows' distribution per feature.
        reference=reference_of(matrix[rows], names),
    )
    summary = {
        "training_rows": int(rows.sum()),
        "training_frauds": int(labels.sum()),
        "frauds_not_yet_reported": int(history.is_fraud[rows].sum() - labels.sum()),
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
    progress: Progress | None = None,
) -> tuple[dict[str, Any], Replayed, npt.NDArray[np.bool_]]:
    """Replay everything (history before the window builds the state); measure on the window.
    ``progress`` hears "replaying decisions" per chunk, then "measuring"."""
    rows = _window(history, from_ms, to_ms)
    replayed = replay_history(history, label_delay_ms, model, config, explain=rows, progress=progress)
    if progress is not None:
        progress("measuring", 0, 0)
    probability = replayed.probability[rows]
    if model is None:  # rules only: rank by the policy's score
        probability = replayed.score[rows].astype(np.float32) / 100.0
    flagged = replayed.decision[rows] >= REVIEW
    truth = history.is_fraud[rows]
    day = history.batch.timestamp_ms[rows] // DAY_MS
    users = np.asarray(history.batch.user_id.to_numpy(zero_copy_only=False), dtype=object)[rows]
    ts = history.batch.timestamp_ms[rows]
    report: dict[str, Any] = {
        "model": model.metadata.version if model is not None else "rules only",
        "data": history.fingerprint,
        "window_from": _iso(int(ts.min())) if len(ts) else None,
        "window_to": _iso(int(ts.max())) if len(ts) else None,
        "label_delay": format_duration(label_delay_ms),
    }
    amount = history.batch.amount[rows]
    report.update(fraud_metrics(truth, probability, flagged, amount, day, user=users))
    report["threshold_table"] = threshold_table(truth, probability, amount, day)
    if history.scenario is not None:
        scenarios = np.array(history.scenario, dtype=object)[rows]
        report["recall_by_scenario"] = {
            name: round(float(flagged[scenarios == name].mean()), 4)
            for name in sorted(set(scenarios.tolist()) - {""})
        }
    return report, replayed, rows


def model_card(model: Model, training: dict[str, Any], metrics: dict[str, Any]) -> str:
    """A short Markdown card: what the model is, what it saw, how it was chosen, how it did."""
    meta = model.metadata
    lines = [
        f"# Model {meta.version}",
        "",
        f"- kind: {meta.kind}",
        f"- created: {meta.created}",
        f"- features: {len(meta.feature_names)}",
        f"- training data fingerprint: {meta.training_fingerprint}",
        f"- label windows end {meta.params.get('label_delay', '0s')} back (label delay)",
        *_reference_lines(meta.reference),
        *_declared_lines(meta.params),
        *(f"- {k.replace('_', ' ')}: {v:g}" for k, v in training.items()),
        *_search_lines(meta.params),
        "",
        "## Holdout metrics",
        "",
        *(f"- {k.replace('_', ' ')}: {v}" for k, v in metrics.items() if not isinstance(v, dict | list)),
    ]
    return "\n".join(lines) + "\n"


def _reference_lines(reference: dict[str, Any]) -> list[str]:
    """The model card's line on the drift reference kept in metadata.json, or nothing without one."""
    if not reference:
        return []
    return [
        f"- drift reference: {reference['bins']} quantile bins per feature (and one for missing values) "
        f"over the {reference['rows']:,} training rows, in metadata.json"
    ]


def _declared_lines(params: dict[str, Any]) -> list[str]:
    """The card's lines on the declared features the model learnt from (FRAUDSTREAM_FEATURES_PATH)."""
    declared = params.get("declared_features") or []
    return [
        f"- declared feature `{d['feature']}`: {d['function']} of {d['field']} per {d['entity']} over "
        f"{d['window']} (declare it in FRAUDSTREAM_FEATURES_PATH to serve this model)"
        for d in declared
    ]


def _search_lines(params: dict[str, Any]) -> list[str]:
    """The model card's account of the settings search (LightGBM), or nothing when none ran."""
    search = params.get("search")
    if not search:
        return []
    keys = ("num_leaves", "min_data_in_leaf", "learning_rate", "lambda_l2", "scale_pos_weight")
    searched = search.get("searched_rows")
    sampled = (
        f" The search saw {searched:,} rows: every fraud and a weighted sample of the legitimate ones."
        if searched is not None and searched < search.get("training_rows", searched)
        else ""
    )
    lines = [
        "",
        "## How it was chosen",
        "",
        f"Each setting below learned on the earlier 75% of the training window's time and was judged on "
        f"the later 25% ({search['validation_rows']:,} transactions, {search['validation_frauds']:,} "
        "frauds), stopped when its held-out average precision stopped improving. The best was refitted "
        f"on the whole window with {params.get('num_trees')} rounds.{sampled}",
        "",
        "| " + " | ".join(k.replace("_", " ") for k in keys) + " | rounds | held-out average precision |",
        "|" + "---|" * (len(keys) + 2),
    ]
    for tried in search["tried"]:
        lines.append(
            "| "
            + " | ".join(f"{tried[k]:g}" for k in keys)
            + f" | {tried['rounds']} | {tried['validation_average_precision']:.4f} |"
        )
    calibration = params.get("calibration")
    if calibration:
        lines += [
            "",
            "Probabilities are calibrated on the held-out rows: "
            f"p = 1 / (1 + exp(-({calibration[0]:.4f} x raw score {'+' if calibration[1] >= 0 else '-'} "
            f"{abs(calibration[1]):.4f}))), fitted on the labels as known at the window's end: while many "
            "frauds are still unreported, probabilities run low (see the threshold table).",
        ]
    return lines


def train_and_register(
    history: History,
    kind: str,
    registry: Registry,
    *,
    label_delay_ms: int,
    train_from_ms: int | None = None,
    train_to_ms: int | None = None,
    features: tuple[npt.NDArray[np.float32], tuple[str, ...]] | None = None,
    progress: Progress | None = None,
    params: dict[str, Any] | None = None,
    config: EngineConfig | None = None,
) -> tuple[Model, dict[str, Any], dict[str, Any], Path | str]:
    """Train on the window (by default the first 80 % of the history's time), evaluate on the rest,
    store the model with its holdout metrics and model card. Returns the model, the training summary,
    the holdout report and where it was stored. ``params``: the model's settings (LightGBM: no search
    when given). ``progress`` hears every step (`train`, then
    "evaluating on the holdout" per chunk, "measuring" and "registering")."""
    ts = history.batch.timestamp_ms
    end = train_to_ms if train_to_ms is not None else int(ts.min() + 0.8 * (ts.max() - ts.min()))
    trained, summary = train(
        history,
        kind,
        train_from_ms=train_from_ms,
        train_to_ms=end,
        label_delay_ms=label_delay_ms,
        features=features,
        progress=progress,
        params=params,
        config=config,
    )
    holdout = _renamed(progress, "replaying decisions", "evaluating on the holdout")
    report, _, _ = evaluate(
        history,
        trained,
        from_ms=end,
        to_ms=None,
        label_delay_ms=label_delay_ms,
        config=engine_config(label_delay_ms, config),
        progress=holdout,
    )
    numbers = {k: v for k, v in report.items() if isinstance(v, float)}
    trained.metadata = dataclasses.replace(trained.metadata, metrics=numbers)
    if progress is not None:
        progress("registering", 0, 0)
    path = registry.save(trained, model_card(trained, summary, report))
    return trained, summary, report, path


def _renamed(progress: Progress | None, step: str, name: str) -> Progress | None:
    """``progress`` with ``step`` reported as ``name`` (the same replay means another thing here)."""
    if progress is None:
        return None
    report = progress

    def renamed(reported: str, done: int, total: int) -> None:
        report(name if reported == step else reported, done, total)

    return renamed
