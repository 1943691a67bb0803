"""What every extra output (data lake, Redis, webhooks, Kafka topics) implements, and the log rows it
is handed.

The database is the first sink: a decision is answered only once it is stored there. Every other sink
reads the stored log (transactions in ``seq`` order, with their decisions) behind it, from its own
cursor, through a :class:`~fraudstream.sinks.runner.SinkRunner`. A sink that is slow or down therefore
never blocks scoring and never loses an accepted decision: it falls behind, the log holds what it has
not taken (the persistent outbox), and it catches up when it works again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, Protocol

from fraudstream.storage.rows import alert_event, alert_row

__all__ = ["LogBatch", "Sink"]


class LogBatch:
    """Consecutive rows of the log after a sink's cursor: each a stored transaction with its
    decision's columns (``Store.log_after``), in ``seq`` order, up to ``last_seq`` (a sink that reads
    only alerts gets the alerts among them, and ``last_seq`` still says how far the log was read)."""

    def __init__(self, names: Sequence[str], values: Sequence[tuple[Any, ...]], last_seq: int) -> None:
        self.names = tuple(names)
        self.values = values
        self.last_seq = last_seq

    def __len__(self) -> int:
        return len(self.values)

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        """Each row as a mapping from column name (one dict per row: for the few, such as alerts)."""
        return [dict(zip(self.names, value)) for value in self.values]

    def columns(self) -> dict[str, list[Any]]:
        """Column name to its values, one list per column (for columnar writers such as the lake)."""
        if not self.values:
            return {name: [] for name in self.names}
        return {name: list(column) for name, column in zip(self.names, zip(*self.values))}

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts among the rows, each as the live alert stream (WebSocket, SSE) first sends it."""
        return [
            alert_event(alert_row(_alerting(row), row, row["decided_at_ms"]))
            for row in self.rows
            if row["is_alert"]
        ]


def _alerting(row: Mapping[str, Any]) -> dict[str, Any]:
    """What `alert_row` takes of a decision, from a log row: its reasons parsed, and nothing else
    (a whole `decision_record` would parse the rules and features too)."""
    return {
        "transaction_id": row["transaction_id"],
        "score": row["score"],
        "decision": row["decision"],
        "reasons": json.loads(row["reasons"]),
    }


class Sink(Protocol):
    """An output behind the database. The runner calls it from one thread of its own.

    ``deliver`` takes the next rows of the log and returns the last ``seq`` it has durably handed over
    (a sink that buffers, such as the lake, may return an earlier one, or None for nothing new); any
    exception means "not delivered": the runner backs off, calls ``reset``, and hands over again from
    the last durable position. A sink must therefore tolerate seeing rows again (they carry their
    transaction id, and a delivery id where the receiver de-duplicates)."""

    #: A stable name: the key of its cursor, and its label in /readyz and /metrics.
    name: str
    #: Read only the rows that raised an alert (Redis): the others are skipped in the database.
    alerts_only: bool
    #: Save the cursor at most this often (seconds). 0 saves each durable position at once (the lake,
    #: whose files are named by their first position); a sink whose receiver de-duplicates or may see
    #: a row twice after a crash saves less often, sparing the database a write per hand-over.
    save_every_s: float

    def active(self) -> bool:
        """False while there is nothing to hand over to (no webhook registered): the runner then moves
        the cursor to the end of the log without reading it."""
        ...

    def deliver(self, batch: LogBatch) -> int | None: ...

    def flush(self, final: bool) -> int | None:
        """Hand over what is buffered if it is due (``final``: all of it, the runner is stopping); the
        last ``seq`` now durable, or None."""
        ...

    def reset(self) -> None:
        """Forget anything buffered: delivery will start again from the last durable position."""
        ...

    def close(self) -> None: ...
