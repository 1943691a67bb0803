"""A simulated history sent to a server in order with its fraud labels posted as they become known:
what a server then computes equals what replaying the history (`fraudstream.ml.train`) computes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from fraudstream.ml.dataset import History

DAY = 86_400_000


def send_in_order(
    client: Any, history: History, records: list[dict[str, Any]], start: int, stop: int, delay_ms: int = DAY
) -> None:
    """POST ``records[start:stop]`` (the history's transactions, in order) to ``client`` (an httpx or
    test client with its base URL), each fraud's label posted just before the first transaction at
    or after the moment it became known (``delay_ms`` after it), as replay applies it."""
    ts = history.batch.timestamp_ms
    ids = history.batch.transaction_id.to_pylist()
    frauds = np.flatnonzero(history.is_fraud)
    before = np.searchsorted(ts, ts[frauds] + delay_ms, side="left")
    stops = sorted({s for s in before.tolist() if start < s < stop} | {stop})
    for end in stops:
        labels = [
            {
                "transaction_id": ids[i],
                "is_fraud": True,
                "label_time": datetime.fromtimestamp((int(ts[i]) + delay_ms) / 1000, UTC).isoformat(),
            }
            for i in frauds[before == start].tolist()
        ]
        if labels:
            answer = client.post("/v1/labels", json=labels)
            assert answer.status_code == 200, answer.text
        for chunk in range(start, end, 500):
            answer = client.post("/v1/transactions", json=records[chunk : min(chunk + 500, end)])
            assert answer.status_code == 200, answer.text
        start = end
