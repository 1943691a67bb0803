"""Test data the suite shares: transactions as clients send them, batches for the engine, fraud labels.

Imported by name (``from factories import transaction``): pytest puts ``tests/`` on ``sys.path``
(``pythonpath`` in pyproject.toml), which ``--import-mode=importlib`` would not do for a conftest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fraudstream.core.batch import LabelBatch, TransactionBatch


def transaction(
    transaction_id: str = "t1", user_id: str = "u1", amount: float = 50.0, **fields: Any
) -> dict[str, Any]:
    """One transaction as a client sends it: the three required fields, then any ``fields``."""
    return {"transaction_id": transaction_id, "user_id": user_id, "amount": amount, **fields}


def transaction_batch(records: Iterable[Mapping[str, Any]]) -> TransactionBatch:
    """Records already in canonical form (``timestamp`` in Unix ms) as a batch, without validation;
    ``currency`` is USD where a record has none."""
    rows = [{"currency": "USD", **record} for record in records]
    names = {name for row in rows for name in row}
    return TransactionBatch.from_pydict({name: [row.get(name) for row in rows] for name in names})


def one_event(
    timestamp_ms: int, amount: float = 10.0, user_id: str = "u1", **fields: Any
) -> TransactionBatch:
    """A batch of one transaction at ``timestamp_ms``, its id made of user, time and amount."""
    record = transaction(f"{user_id}-{timestamp_ms}-{amount}", user_id, amount, timestamp=timestamp_ms)
    return transaction_batch([{**record, **fields}])


def fraud_labels(
    batch: TransactionBatch,
    rows: Sequence[int] | npt.NDArray[np.integer],
    label_time: int | Sequence[int] | npt.NDArray[np.integer] | None = None,
) -> LabelBatch:
    """Confirmed fraud for ``rows`` of ``batch``, enriched as a runtime does (the transaction's time,
    terminal and merchant); known at ``label_time`` (one time for all, or one per row), by default
    at each transaction's own time."""
    taken = np.asarray(rows, dtype=np.int64)
    times = batch.timestamp_ms[taken]
    if label_time is None:
        known = times
    elif isinstance(label_time, int):
        known = np.full(len(taken), label_time, dtype=np.int64)
    else:
        known = np.asarray(label_time, dtype=np.int64)
    return LabelBatch.from_pydict(
        {
            "transaction_id": batch.transaction_id.take(taken).to_pylist(),
            "is_fraud": [True] * len(taken),
            "label_time": known.tolist(),
            "transaction_time": times.tolist(),
            "terminal_id": batch.strings("terminal_id").take(taken).to_pylist(),
            "merchant_id": batch.strings("merchant_id").take(taken).to_pylist(),
        }
    )
