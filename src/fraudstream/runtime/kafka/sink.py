"""Decisions from the `decisions` topic into the database, exactly once per transaction id."""

from __future__ import annotations

import time

import orjson
from confluent_kafka import Consumer

from fraudstream.storage import Store

__all__ = ["store_decisions"]


def store_decisions(
    brokers: str, topic: str, store: Store, *, group: str, idle_s: float = 3.0, first_wait_s: float = 30.0
) -> int:
    """Read decision messages and upsert them; a replayed duplicate is ignored by the store.

    Returns how many messages were read (duplicates included) once ``idle_s`` pass without any
    (or ``first_wait_s`` without a first one: joining the group takes a few seconds).
    """
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    read = 0
    idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < (idle_s if read else first_wait_s):
            messages = [m for m in consumer.consume(1000, 0.5) if m.error() is None]
            if not messages:
                continue
            idle_since = time.monotonic()
            transactions, decisions, alerts = [], [], []
            for message in messages:
                body = orjson.loads(message.value())
                tx, decision = body["transaction"], body["decision"]
                tx = {**tx, "timestamp_ms": tx.pop("timestamp"), "body_hash": "kafka", "received_at_ms": 0}
                transactions.append(tx)
                decisions.append(
                    {
                        **{
                            k: decision[k]
                            for k in (
                                "transaction_id",
                                "decision",
                                "score",
                                "probability",
                                "is_alert",
                                "model_version",
                                "ruleset_version",
                            )
                        },
                        "reasons": orjson.dumps(decision["reasons"]).decode(),
                        "rules": orjson.dumps(decision["rules"]).decode(),
                        "shadow_rules": orjson.dumps(decision["shadow_rules"]).decode(),
                        "features": orjson.dumps(decision.get("features") or {}).decode(),
                        "latency_ms": 0.0,
                        "decided_at_ms": int(time.time() * 1000),
                    }
                )
                if decision["is_alert"]:
                    alerts.append(
                        {
                            "transaction_id": tx["transaction_id"],
                            "user_id": tx["user_id"],
                            "amount": tx["amount"],
                            "score": decision["score"],
                            "decision": decision["decision"],
                            "reasons": orjson.dumps(decision["reasons"][:3]).decode(),
                            "status": "open",
                            "assignee": None,
                            "verdict": None,
                            "note": None,
                            "created_at_ms": int(time.time() * 1000),
                            "updated_at_ms": int(time.time() * 1000),
                        }
                    )
            store.write_scored(transactions, decisions, alerts)
            consumer.commit(asynchronous=False)
            read += len(messages)
    finally:
        consumer.close()
    return read
