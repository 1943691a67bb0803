"""Decisions from the `decisions` topic into the database, exactly once per transaction id."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import orjson
from confluent_kafka import Consumer, Message

from fraudstream.runtime.kafka.clientlog import client_logger
from fraudstream.runtime.kafka.clients import client_settings
from fraudstream.storage import Store
from fraudstream.storage.rows import alert_row, decision_row, shadow_rows

__all__ = ["DecisionSink", "store_decisions"]


Rows = list[dict[str, Any]]


def _rows(messages: list[Message]) -> tuple[Rows, Rows, Rows, Rows]:
    """Transaction, decision, alert and shadow score rows of decision messages, as the store writes
    them (the shadow scores as the embedded server stores its own challengers')."""
    now = int(time.time() * 1000)
    transactions: Rows = []
    decisions: Rows = []
    alerts: Rows = []
    shadow: Rows = []
    for message in messages:
        body = orjson.loads(cast(bytes, message.value()))  # the worker writes every decision with a value
        tx, decision = dict(body["transaction"]), body["decision"]
        tx["timestamp_ms"] = tx.pop("timestamp")
        transactions.append({**tx, "body_hash": "kafka", "received_at_ms": now})
        # The worker's decision was not timed here: its latency is unknown, not 0.
        decisions.append(decision_row(decision, decision.get("features") or {}, None, now))
        if decision["is_alert"]:
            alerts.append(alert_row(decision, tx, now))
        # Messages of workers from before challengers scored in shadow there carry none.
        scores = decision.get("shadow_scores") or {}
        shadow += shadow_rows([decision["transaction_id"]], {v: [p] for v, p in scores.items()})
    return transactions, decisions, alerts, shadow


class DecisionSink:
    """Consumes decision messages and upserts them (a replayed duplicate is ignored by the store);
    offsets are committed after each write. ``on_alerts`` hears about every alert row written."""

    def __init__(
        self,
        brokers: str,
        topic: str,
        store: Store,
        *,
        group: str,
        on_alerts: Callable[[list[dict[str, Any]]], None] | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.on_alerts = on_alerts
        self.stopped = threading.Event()
        self.consumer = Consumer(
            client_settings(
                brokers,
                properties,
                **{
                    "logger": client_logger(),
                    "group.id": group,
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": False,
                    "session.timeout.ms": 6000,
                },
            )
        )
        self.consumer.subscribe([topic])

    def poll_once(self, timeout_s: float = 0.5) -> int:
        messages = [m for m in self.consumer.consume(1000, timeout_s) if m.error() is None]
        if messages:
            transactions, decisions, alerts, shadow = _rows(messages)
            self.store.write_scored(transactions, decisions, alerts, shadow)
            self.consumer.commit(asynchronous=False)
            if alerts and self.on_alerts is not None:
                self.on_alerts(alerts)
        return len(messages)

    def run(self) -> None:
        """Until ``stopped`` is set (run it in a thread)."""
        try:
            while not self.stopped.is_set():
                self.poll_once()
        finally:
            self.consumer.close()


def store_decisions(
    brokers: str, topic: str, store: Store, *, group: str, idle_s: float = 3.0, first_wait_s: float = 30.0
) -> int:
    """Drain the topic into the store; returns how many messages were read (duplicates included)
    once ``idle_s`` pass without any (or ``first_wait_s`` without a first one: joining the group
    takes a few seconds)."""
    sink = DecisionSink(brokers, topic, store, group=group)
    read = 0
    idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < (idle_s if read else first_wait_s):
            got = sink.poll_once()
            if got:
                read += got
                idle_since = time.monotonic()
    finally:
        sink.consumer.close()
    return read
