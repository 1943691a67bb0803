"""The API in Kafka mode: transactions out to the topic, decisions back from it into the database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from confluent_kafka import KafkaException, Producer

from fraudstream.errors import SinkError
from fraudstream.runtime.decider import Decider, Outcome
from fraudstream.runtime.kafka.clientlog import client_logger
from fraudstream.runtime.kafka.clients import client_settings, user_properties
from fraudstream.runtime.kafka.sink import DecisionSink
from fraudstream.storage import Store

if TYPE_CHECKING:
    from fraudstream.config import Settings

__all__ = ["KafkaBridge"]

log = structlog.get_logger("fraudstream.kafka")


class KafkaBridge:
    """Produces validated transactions (card already fingerprinted) keyed by user, and stores the
    decisions the workers publish; ``on_alerts`` hears about every alert row stored (the live feed)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        on_alerts: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        assert settings.kafka_brokers is not None
        self.topic = settings.kafka_topic
        self.labels_topic = settings.kafka_labels_topic
        self.control_topic = settings.kafka_control_topic
        #: The last answer of ``reachable`` and when it was found (monotonic seconds).
        self._reachable = (True, float("-inf"))
        properties = user_properties(settings)
        self.producer = Producer(
            client_settings(
                settings.kafka_brokers,
                properties,
                **{"logger": client_logger(), "acks": "all", "linger.ms": 1},
            )
        )
        self.sink = DecisionSink(
            settings.kafka_brokers,
            settings.kafka_decisions_topic,
            store,
            group="fraudstream-api",
            on_alerts=on_alerts,
            properties=properties,
        )
        self._thread = threading.Thread(target=self.sink.run, daemon=True, name="fraudstream-decisions")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.sink.stopped.set()
        self._thread.join(10)
        self.producer.flush(10)

    def reachable(self, timeout_s: float = 2.0, cache_s: float = 5.0) -> bool:
        """Whether a broker answers a metadata request within ``timeout_s`` (asked at most every
        ``cache_s``): while none does, transactions sent here are refused with 503, and the
        readiness check says so. Blocks up to ``timeout_s``; call it off the event loop."""
        answer, at = self._reachable
        if time.monotonic() - at < cache_s:
            return answer
        try:
            self.producer.list_topics(timeout=timeout_s)
            answer = True
        except KafkaException:
            answer = False
        self._reachable = (answer, time.monotonic())
        return answer

    def _delivered(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> bool:
        """Produce (key, value) messages and wait up to 10 s for the broker; False if it did not
        acknowledge them all. What they say is stored already, so the caller reports, not raises."""
        for key, value in messages:
            self.producer.produce(topic, key=key, value=value)
        return not (messages and self.producer.flush(10))

    def publish_labels(self, labels: Sequence[Mapping[str, Any]]) -> None:
        """Send stored labels (analysts' verdicts, posted chargebacks) to the labels topic, where the
        workers learn from them as the embedded engine does."""
        messages = [
            (
                str(label["transaction_id"]).encode(),
                orjson.dumps({k: label[k] for k in ("transaction_id", "is_fraud", "label_time")}),
            )
            for label in labels
        ]
        if not self._delivered(self.labels_topic, messages):
            # Stored, so retraining reads them; only the workers' label features miss them.
            log.error(
                "labels not acknowledged by the Kafka broker within 10 s; workers may not learn from them",
                topic=self.labels_topic,
                transaction_ids=[str(label["transaction_id"]) for label in labels],
            )

    def announce(self, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Announce rule sets and lists (``control.rules_message``, ``list_message``) to the workers."""
        if not self._delivered(self.control_topic, messages):
            # In force in the API; workers miss it until it is announced again (the API announces
            # everything when it starts).
            log.error(
                "rules or lists not acknowledged by the Kafka broker within 10 s; workers keep earlier ones",
                topic=self.control_topic,
            )

    def accept(self, decider: Decider, records: Sequence[Any]) -> list[Outcome]:
        """Validate, produce the good ones and wait until the broker has them; one outcome each."""
        result = decider.validate(records, received_at_ms=int(time.time() * 1000))
        outcomes: list[Outcome | None] = [None] * len(records)
        for error in result.errors:
            outcomes[error.index] = Outcome(
                "invalid", error.transaction_id, errors=[e.as_dict() for e in error.errors]
            )
        for index, row in zip(result.rows.tolist(), result.batch.to_rows()):
            extra = orjson.loads(str(row.pop("attributes"))) if row.get("attributes") else {}
            message = {**extra, **{k: v for k, v in row.items() if v is not None}}
            self.producer.produce(self.topic, key=str(row["user_id"]).encode(), value=orjson.dumps(message))
            outcomes[index] = Outcome("accepted", str(row["transaction_id"]))
        if self.producer.flush(10):
            raise SinkError("the Kafka broker did not acknowledge the transactions within 10 s; retry")
        return [o for o in outcomes if o is not None]
