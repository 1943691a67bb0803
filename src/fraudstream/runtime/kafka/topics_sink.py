"""The embedded server's decisions and alerts onto Kafka topics, for consumers that read them there.

A sink behind the database (see `fraudstream.sinks`): with ``kafka_outputs`` set, every stored
decision goes to the decisions topic and every alert also to the alerts topic, keyed by transaction
id, in the layout the Kafka workers write (``{"schema_version", "transaction", "decision"}``), so a
consumer written for the workers' topics reads the embedded server's unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from confluent_kafka import KafkaError, Message, Producer

from fraudstream.runtime.kafka.clientlog import client_logger
from fraudstream.runtime.kafka.clients import client_settings
from fraudstream.runtime.kafka.payloads import SCHEMA_VERSION
from fraudstream.sinks import LogBatch
from fraudstream.storage.rows import decision_record, transaction_record

__all__ = ["KafkaTopics"]


class KafkaTopics:
    """Produces each batch of the log and waits until the broker has all of it (acks=all, idempotent
    producer); an undelivered message fails the batch, which the runner hands over again. After a
    failure or a crash a decision may be produced twice: consumers upsert by key, as with the
    workers' outputs."""

    name = "kafka"
    alerts_only = False
    save_every_s = 1.0

    def __init__(
        self,
        brokers: str,
        properties: Mapping[str, str],
        *,
        decisions_topic: str,
        alerts_topic: str,
        timeout_s: float = 30.0,
    ) -> None:
        self.decisions_topic = decisions_topic
        self.alerts_topic = alerts_topic
        self.timeout_s = timeout_s
        settings = {"logger": client_logger(), "acks": "all", "enable.idempotence": True, "linger.ms": 5}
        self.producer = Producer(client_settings(brokers, properties, **settings))
        self._errors: list[str] = []

    def active(self) -> bool:
        return True

    def deliver(self, batch: LogBatch) -> int | None:
        self._errors.clear()
        for row in batch.rows:
            transaction = transaction_record(row)
            transaction["timestamp"] = transaction.pop("timestamp_ms")
            transaction.pop("seq", None)
            transaction.pop("received_at_ms", None)
            decision = {key: value for key, value in decision_record(row).items() if key != "latency_ms"}
            payload = orjson.dumps(
                {"schema_version": SCHEMA_VERSION, "transaction": transaction, "decision": decision}
            )
            key = str(row["transaction_id"]).encode()
            self._produce(self.decisions_topic, key, payload)
            if row["is_alert"]:
                self._produce(self.alerts_topic, key, payload)
        waiting = self.producer.flush(self.timeout_s)
        if waiting or self._errors:
            problem = self._errors[0] if self._errors else f"{waiting} messages still waiting"
            raise RuntimeError(f"Kafka did not take the batch: {problem}")
        return batch.last_seq

    def _produce(self, topic: str, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, on_delivery=self._delivered)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self.producer.poll(0.1)

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._errors.append(str(error))

    def flush(self, final: bool) -> int | None:
        return None

    def reset(self) -> None:
        self.producer.flush(self.timeout_s)

    def close(self) -> None:
        self.producer.flush(self.timeout_s)
