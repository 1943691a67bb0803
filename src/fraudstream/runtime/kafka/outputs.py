"""A Kafka worker's outputs: decisions, alerts and dead letters produced, and committed with the offsets."""

from __future__ import annotations

import base64
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from fraudstream.core.engine import DecisionBatch
from fraudstream.runtime.kafka.clientlog import client_logger
from fraudstream.runtime.kafka.payloads import SCHEMA_VERSION, decision_payloads

__all__ = ["Outputs"]

log = structlog.get_logger("fraudstream.kafka")


class Outputs:
    """The worker's producer and what it writes: every decision to the decisions topic, alerts also
    to the alerts topic, bad input to the dead-letter topic, keyed by transaction id. In a
    transactional worker (``transactional``) the outputs since the last commit and the input offsets
    they answer are committed together in one Kafka transaction."""

    def __init__(
        self,
        settings: dict[str, Any],
        *,
        decisions_topic: str,
        alerts_topic: str,
        dlq_topic: str,
        transactional: bool,
        counts: dict[str, int],
    ) -> None:
        self.decisions_topic = decisions_topic
        self.alerts_topic = alerts_topic
        self.dlq_topic = dlq_topic
        self.transactional = transactional
        #: The worker's counters (its /metrics): decisions, dead letters, back-pressure waits, ...
        self.counts = counts
        self.producer = Producer({**settings, "logger": client_logger(), "on_delivery": self._delivered})
        self.transaction_open = False
        #: Output messages that failed delivery since the last checkpoint.
        self.undelivered = 0
        #: When the producer last reported trouble (the worker is unhealthy for a while after).
        self.last_error_at: float | None = None

    def produce(self, decisions: DecisionBatch, partition: int, offsets: list[int], quiet_until: int) -> None:
        """Every decision (and alert) of one partition's batch; ``offsets`` are the input messages'.
        Those below ``quiet_until`` were answered in a committed transaction already."""
        payloads = decision_payloads(decisions, [partition] * len(offsets), offsets)
        keys = decisions.transaction_id.cast(pa.binary()).to_pylist()
        alerts = decisions.is_alert.tolist()
        # Rows a committed transaction already answered (a transactional replay) produce nothing.
        first = bisect_left(offsets, quiet_until)
        self.counts["replayed_quietly"] += first
        if first < len(offsets):
            self.begin_transaction()
        produce = self.producer.produce
        decisions_topic, alerts_topic = self.decisions_topic, self.alerts_topic
        for key, payload, alert in zip(keys[first:], payloads[first:], alerts[first:]):
            # The plain call per message; `_send` (waiting for room) only when the queue is full.
            try:
                produce(decisions_topic, key=key, value=payload)
            except BufferError:
                self._make_room()
                self._send(decisions_topic, key, payload)
            if alert:
                self._send(alerts_topic, key, payload)
        self.counts["decisions"] += len(offsets) - first
        self.producer.poll(0)

    def dead_letter(self, message: Message, reason: str, errors: list[dict[str, Any]] | None = None) -> None:
        """The message to the dead-letter topic, whole, with why it was refused."""
        payload = {
            "schema_version": SCHEMA_VERSION,
            "reason": reason,
            "errors": errors or [],
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
            "original": base64.b64encode(message.value() or b"").decode(),
        }
        self._send(self.dlq_topic, message.key(), orjson.dumps(payload))
        self.counts["dead_letters"] += 1

    def _send(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Produce one output message; while the producer's queue is full (the broker is slower than
        scoring, or away), wait for deliveries instead of dropping or failing: back-pressure that
        stops consuming until outputs drain."""
        self.begin_transaction()
        while True:
            try:
                self.producer.produce(topic, key=key, value=value)
                return
            except BufferError:
                self._make_room()

    def _make_room(self) -> None:
        """Wait a moment for deliveries to free room in the producer's full queue."""
        self.counts["backpressure_waits"] += 1
        self.producer.poll(0.05)

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.undelivered += 1
            self.last_error_at = time.monotonic()
            log.error("output not delivered", topic=message.topic(), error=str(error))

    def flush(self, timeout_s: float = -1) -> int:
        """Wait for every output to be delivered (or given up on), at most ``timeout_s`` (-1: no
        limit); return how many are still waiting."""
        return self.producer.flush(timeout_s)

    def init_transactions(self, keep_trying: Callable[[], bool]) -> None:
        """Register the transactional id (the broker aborts what a previous run under it left open);
        while the broker is unreachable, retry and report unhealthy rather than exit."""
        while keep_trying():
            try:
                self.producer.init_transactions(30)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if not (isinstance(error, KafkaError) and error.retriable()):
                    raise
                self.last_error_at = time.monotonic()
                log.warning("transactions not initialised yet; retrying", error=str(error))
                time.sleep(1)

    def begin_transaction(self) -> None:
        if self.transactional and not self.transaction_open:
            self.producer.begin_transaction()
            self.transaction_open = True

    def commit_transaction(self, offsets: list[TopicPartition], consumer: Consumer) -> bool:
        """Commit the outputs since the last commit together with ``offsets`` (the next input offset
        of each partition scored since) for ``consumer``'s group, in one Kafka transaction. False when
        the transaction was aborted instead: the caller goes back to its checkpoints."""
        remaining = self.producer.flush(30)
        if remaining:
            raise KafkaException(f"{remaining} output messages not delivered; not committing past them")
        try:
            if self.undelivered:
                raise KafkaException(f"{self.undelivered} output messages were not delivered")
            self.begin_transaction()  # a quiet replay produced nothing, but its offsets move on
            if offsets:
                metadata = consumer.consumer_group_metadata()
                self.producer.send_offsets_to_transaction(offsets, metadata, 30)
            self.producer.commit_transaction(30)
        except KafkaException as exc:
            log.warning(
                "transaction not committed; aborting it and going back to the checkpoints", error=str(exc)
            )
            if self.transaction_open:
                self.producer.abort_transaction(30)
            self.transaction_open = False
            return False
        self.transaction_open = False
        self.counts["transactions"] += 1
        return True
