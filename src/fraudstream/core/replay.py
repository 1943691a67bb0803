"""Replay history through an engine with labels applied exactly when they became known."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from fraudstream.core.batch import LabelBatch, TransactionBatch
from fraudstream.core.engine import DecisionBatch, Engine
from fraudstream.core.features import FeatureMatrix, FeatureState

__all__ = ["replay", "replay_features"]


def _segments(
    transactions: TransactionBatch, labels: LabelBatch | None, batch_size: int
) -> Iterator[tuple[int, int, LabelBatch | None]]:
    """Cut the stream so that each label lands just before the first transaction at or after its
    ``label_time``: yields (start, stop, labels to apply before this chunk); a last (n, n, rest) chunk
    carries the labels later than every transaction."""
    n = len(transactions)
    cuts = {0, n, *range(0, n, batch_size)}
    order = np.zeros(0, dtype=np.int64)
    positions = np.zeros(0, dtype=np.int64)
    if labels is not None and len(labels):
        label_times = labels.times_ms("label_time")
        order = np.argsort(label_times, kind="stable")
        positions = np.searchsorted(transactions.timestamp_ms, label_times[order], side="left")
        cuts.update(int(p) for p in np.unique(positions))
    bounds = sorted(cuts)
    applied = 0
    for start, stop in zip(bounds[:-1], bounds[1:]):
        due = int(np.searchsorted(positions, start, side="right"))
        ready = labels.take(order[applied:due]) if labels is not None and due > applied else None
        applied = max(applied, due)
        yield start, stop, ready
    if labels is not None and applied < len(order):
        yield n, n, labels.take(order[applied:])


def replay(
    engine: Engine,
    transactions: TransactionBatch,
    labels: LabelBatch | None = None,
    *,
    batch_size: int = 8192,
) -> Iterator[tuple[TransactionBatch, DecisionBatch]]:
    """Score ``transactions`` in their order; apply each label just before the first transaction at
    or after its ``label_time``, so no score ever sees a label from its future.

    Transactions should be in event-time order (as a log would deliver them). Yields each scored
    chunk with its decisions.

    >>> engine = Engine()
    >>> tx = TransactionBatch.from_pydict({"transaction_id": ["a", "b"], "timestamp": [0, 1000],
    ...     "user_id": ["u", "u"], "amount": [5.0, 6.0], "currency": ["USD", "USD"]})
    >>> [len(d) for _, d in replay(engine, tx, batch_size=1)]
    [1, 1]
    """
    for start, stop, ready in _segments(transactions, labels, batch_size):
        if ready is not None:
            engine.apply_labels(ready)
        if stop > start:
            chunk = transactions.slice(start, stop)
            yield chunk, engine.score(chunk)


def replay_features(
    state: FeatureState,
    transactions: TransactionBatch,
    labels: LabelBatch | None = None,
    *,
    batch_size: int = 65_536,
) -> Iterator[FeatureMatrix]:
    """The features ``replay`` would compute, without rules, model or policy (for training)."""
    for start, stop, ready in _segments(transactions, labels, batch_size):
        if ready is not None:
            state.apply_labels(ready)
        if stop > start:
            yield state.compute(transactions.slice(start, stop))
