"""Rows as the tables hold them, from the engine's batches and decisions, and back.

The runtimes write what the engine decided through these mappers and replay stored transactions
through them, so the embedded server and the Kafka decision sink store a decision alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy.engine import RowMapping

from fraudstream.core.batch import TRANSACTION_SCHEMA, TransactionBatch

__all__ = [
    "EVENT_COLUMNS",
    "alert_event",
    "alert_record",
    "alert_row",
    "answer_of",
    "batch_from_rows",
    "decision_record",
    "decision_row",
    "shadow_rows",
    "transaction_record",
    "transaction_rows_of",
]

#: The stored transaction columns a batch is rebuilt from when the event log is replayed: the
#: canonical schema, with the event time as integer milliseconds.
EVENT_COLUMNS = tuple("timestamp_ms" if name == "timestamp" else name for name in TRANSACTION_SCHEMA.names)


def batch_from_rows(rows: Sequence[Mapping[str, Any]]) -> TransactionBatch:
    """The transactions of stored rows (``Store.events_after``) as a batch, in the rows' order."""
    columns: dict[str, Sequence[object]] = {name: [r[name] for r in rows] for name in EVENT_COLUMNS}
    columns["timestamp"] = columns.pop("timestamp_ms")
    return TransactionBatch.from_pydict(columns)


def transaction_rows_of(
    batch: TransactionBatch, hashes: Sequence[str], received: Sequence[int]
) -> list[dict[str, Any]]:
    """The `transactions` rows of a batch: each with its body hash (a retry is told from a conflict
    by it) and when it was received."""
    rows: list[dict[str, Any]] = batch.to_rows()
    for row, body, at in zip(rows, hashes, received):
        row["timestamp_ms"] = row.pop("timestamp")
        row["body_hash"] = body
        row["received_at_ms"] = at
    return rows


def transaction_record(row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    keys = ("seq", *EVENT_COLUMNS, "received_at_ms")
    record = {k: row[k] for k in keys if k in row}
    attributes = record.get("attributes")
    record["attributes"] = json.loads(attributes) if attributes else {}
    return record


def decision_record(row: Mapping[str, Any] | RowMapping, *, parsed: bool = False) -> dict[str, Any]:
    """The decision as every answer shows it, from a `decisions` row; ``parsed`` when its reasons,
    rules and features are already Python values rather than the stored JSON text."""

    def load(value: Any) -> Any:
        return value if parsed else json.loads(value)

    return {
        "transaction_id": row["transaction_id"],
        "decision": row["decision"],
        "score": int(row["score"]),
        "probability": row["probability"],
        "is_alert": bool(row["is_alert"]),
        "reasons": load(row["reasons"]),
        "rules": load(row["rules"]),
        "shadow_rules": load(row["shadow_rules"]),
        "snoozes": _snooze_ids(row.get("snoozes")),
        "features": load(row["features"]),
        "model_version": row["model_version"],
        "ruleset_version": row["ruleset_version"],
        "latency_ms": row["latency_ms"],
        "decided_at_ms": row["decided_at_ms"],
    }


def _snooze_ids(value: Any) -> list[str]:
    """The ids of the snoozes that applied to a decision, from the stored JSON (None: none)."""
    if not value:
        return []
    return list(value) if isinstance(value, list) else list(json.loads(value))


def alert_record(row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    record = dict(row)
    record["reasons"] = json.loads(record["reasons"])
    return record


def alert_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """What live subscribers (WebSocket, SSE) and the Redis and webhook outputs receive for an
    `alerts` row."""
    return {**alert_record(row), "type": "fraud_alert"}


def decision_row(
    record: Mapping[str, Any], features: Mapping[str, float | None], latency_ms: float | None, decided_at: int
) -> dict[str, Any]:
    """The `decisions` row of an engine decision record (`DecisionBatch.to_records()`); ``latency_ms``
    None when this server did not time the decision (a Kafka worker made it)."""
    return {
        "transaction_id": record["transaction_id"],
        "decision": record["decision"],
        "score": record["score"],
        "probability": record["probability"],
        "is_alert": record["is_alert"],
        "reasons": orjson.dumps(record["reasons"]).decode(),
        "rules": orjson.dumps(record["rules"]).decode(),
        "shadow_rules": orjson.dumps(record["shadow_rules"]).decode(),
        # None when no snooze applied (most rows): nothing to store or parse.
        "snoozes": orjson.dumps(record["snoozes"]).decode() if record.get("snoozes") else None,
        "features": orjson.dumps(features).decode(),
        "model_version": record["model_version"],
        "ruleset_version": record["ruleset_version"],
        "latency_ms": None if latency_ms is None else round(latency_ms, 3),
        "decided_at_ms": decided_at,
    }


def alert_row(record: Mapping[str, Any], transaction: Mapping[str, Any], at_ms: int) -> dict[str, Any]:
    """The `alerts` row (status open) of a decision record that raised an alert."""
    return {
        "transaction_id": record["transaction_id"],
        "user_id": transaction["user_id"],
        "amount": transaction["amount"],
        "score": record["score"],
        "decision": record["decision"],
        "reasons": orjson.dumps(record["reasons"][:3]).decode(),
        "status": "open",
        "assignee": None,
        "verdict": None,
        "note": None,
        "created_at_ms": at_ms,
        "updated_at_ms": at_ms,
    }


def shadow_rows(
    transaction_ids: Sequence[str], probabilities: Mapping[str, Sequence[float]]
) -> list[dict[str, Any]]:
    """The `shadow_scores` rows: each challenger's probability (by model version) for each
    transaction, ``probabilities[version][i]`` being the one of ``transaction_ids[i]``."""
    return [
        {"transaction_id": transaction_id, "model_version": version, "probability": float(p)}
        for version, scores in probabilities.items()
        for transaction_id, p in zip(transaction_ids, scores)
    ]


def answer_of(
    record: Mapping[str, Any], features: Mapping[str, float | None], row: Mapping[str, Any]
) -> dict[str, Any]:
    """The decision as the database will hold it (the answer to this request and to every retry),
    built from the values themselves rather than by reading back the JSON just written for ``row``
    (JSON round-trips these values exactly)."""
    values = {"reasons": record["reasons"], "rules": record["rules"], "shadow_rules": record["shadow_rules"]}
    return decision_record({**row, **values, "features": features}, parsed=True)
