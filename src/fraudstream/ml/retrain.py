"""Retraining from analyst labels: a challenger trained on recent stored traffic, promoted only if it
beats the champion on the same holdout by a margin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from fraudstream.core.engine import EngineConfig
from fraudstream.errors import ModelError
from fraudstream.ml.dataset import History
from fraudstream.ml.registry import Registry
from fraudstream.ml.train import evaluate, model_card, replay_history, train
from fraudstream.storage import Store
from fraudstream.storage.rows import batch_from_rows

__all__ = ["history_from_store", "retrain"]


def history_from_store(store: Store, since_ms: int, until_ms: int | None = None) -> History:
    """Stored transactions since ``since_ms`` (and before ``until_ms``, if given) in log order; fraud
    where a label says so (reviews and chargebacks; the latest label of a transaction wins),
    legitimate otherwise."""
    rows = store.events_in_time(since_ms, until_ms)
    batch = batch_from_rows(rows)
    verdicts: dict[str, bool] = {}
    for label in store.labels_after(0):
        verdicts[label["transaction_id"]] = bool(label["is_fraud"])
    truth = np.array([verdicts.get(r["transaction_id"], False) for r in rows], dtype=bool)
    order = np.argsort(batch.timestamp_ms, kind="stable")
    return History(batch.take(order), truth[order], None, f"store-since-{since_ms}")


def retrain(
    store: Store,
    registry: Registry,
    *,
    since_ms: int,
    label_delay_ms: int,
    margin: float,
    kind: str = "lightgbm",
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Train a challenger on the first 80% of the period, compare it with the champion on the last 20%
    (same holdout, same replay), register it, and promote it if its average precision is better by
    ``margin``. The comparison goes into the challenger's model card. ``progress`` hears how far it
    is, 0 to 1, after each step."""
    say = progress or (lambda done: None)
    history = history_from_store(store, since_ms)
    say(0.1)
    if history.is_fraud.sum() < 5:
        raise ModelError(
            f"cannot retrain: only {int(history.is_fraud.sum())} fraud labels since then, and it takes at "
            "least 5 (analysts' verdicts and chargebacks are the labels)"
        )
    ts = history.batch.timestamp_ms
    split = int(ts.min() + 0.8 * (ts.max() - ts.min()))
    replayed = replay_history(history, label_delay_ms)
    say(0.3)
    challenger, summary = train(
        history,
        kind,
        train_from_ms=None,
        train_to_ms=split,
        label_delay_ms=label_delay_ms,
        features=(replayed.features, replayed.feature_names),
    )
    say(0.6)
    features = EngineConfig().features.feature_names
    challenger_report, _, _ = evaluate(
        history, challenger, from_ms=split, to_ms=None, label_delay_ms=label_delay_ms
    )
    champion_report: dict[str, Any] | None = None
    if registry.roles().get("champion") is not None:
        champion = registry.load("champion", features)
        champion_report, _, _ = evaluate(
            history, champion, from_ms=split, to_ms=None, label_delay_ms=label_delay_ms
        )
    say(0.9)
    baseline = champion_report["average_precision"] if champion_report else float("-inf")
    better = bool(challenger_report["average_precision"] >= baseline + margin)
    comparison = {
        "holdout_from_ms": split,
        "challenger_average_precision": challenger_report["average_precision"],
        "champion_average_precision": None if champion_report is None else baseline,
        "margin": margin,
        "promoted": better,
    }
    challenger.metadata = replace(
        challenger.metadata, metrics={k: v for k, v in challenger_report.items() if isinstance(v, float)}
    )
    card = model_card(challenger, summary, challenger_report)
    card += "\n## Comparison with the champion\n\n" + "".join(
        f"- {k.replace('_', ' ')}: {v}\n" for k, v in comparison.items()
    )
    registry.save(challenger, card)
    if better:
        registry.promote(challenger.metadata.version)
    else:
        registry.shadow(challenger.metadata.version)
    return {"version": challenger.metadata.version, **comparison}
