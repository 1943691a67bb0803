"""Rule sets, lists and snoozes changed through the API reach every worker, through one small topic.

The API publishes the whole active rule set (key ``rules``), each list's whole contents with the
expiries of its items that expire (key ``list:<name>``) and every snooze in force (key ``snoozes``)
whenever they change, and all of them when it starts: a compacted topic of the latest versions.
Every worker reads every message of it from the beginning (nothing committed), so a worker that
starts late catches up, then picks up changes between batches.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from fraudstream.core.engine import Engine
from fraudstream.core.rules import RuleSet, load_ruleset
from fraudstream.core.rules.language import Kind
from fraudstream.core.snoozes import SnoozeTable
from fraudstream.errors import FraudstreamError
from fraudstream.runtime.kafka.clientlog import client_logger
from fraudstream.runtime.kafka.clients import client_settings

__all__ = ["ControlReader", "list_message", "rules_message", "snoozes_message"]

log = structlog.get_logger("fraudstream.kafka")

#: Seconds between attempts to reach a control topic that was missing or unreachable.
RETRY_S = 10.0


def rules_message(yaml_text: str) -> tuple[bytes, bytes]:
    """Key and value announcing the active rule set (its YAML, version included)."""
    return b"rules", orjson.dumps({"type": "rules", "yaml": yaml_text})


def list_message(
    name: str, kind: str, items: list[str], expiries: Mapping[str, int] | None = None
) -> tuple[bytes, bytes]:
    """Key and value announcing a list's whole contents (``expiries``: item → ms, of the items that
    expire)."""
    value = {"type": "list", "name": name, "kind": kind, "items": items, "expiries": dict(expiries or {})}
    return f"list:{name}".encode(), orjson.dumps(value)


def snoozes_message(snoozes: list[dict[str, Any]]) -> tuple[bytes, bytes]:
    """Key and value announcing every snooze in force (``SnoozeTable.to_list``)."""
    return b"snoozes", orjson.dumps({"type": "snoozes", "snoozes": snoozes})


class ControlReader:
    """The latest rule set and lists announced on the control topic, as this worker has read them."""

    def __init__(
        self,
        brokers: str,
        topic: str,
        group: str,
        names: Mapping[str, Kind],
        *,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        self.topic = topic
        self.names = names
        self.rules: RuleSet | None = None
        self.lists: dict[str, tuple[str, list[str], dict[str, int]]] = {}
        self.snoozes: SnoozeTable | None = None
        self.consumer = Consumer(
            client_settings(
                brokers,
                properties,
                **{
                    "logger": client_logger(),
                    "group.id": f"{group}-control",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                },
            )
        )
        self.assigned = False
        self.tried_at = float("-inf")

    def catch_up(self, timeout_s: float = 10.0) -> bool:
        """Read everything announced so far (at start, before the first batch); True if any.

        With the broker unreachable or the topic missing, it reads nothing and ``poll`` tries again
        every ``RETRY_S`` seconds: a worker never stops for it.
        """
        first_try = self.tried_at == float("-inf")
        self.tried_at = time.monotonic()
        try:
            metadata = self.consumer.list_topics(self.topic, timeout=timeout_s).topics.get(self.topic)
        except KafkaException as exc:
            if first_try:  # said once; the retries are quiet
                log.warning("control topic not reachable yet; retrying", topic=self.topic, error=str(exc))
            return False
        if metadata is None or metadata.error is not None or not metadata.partitions:
            if first_try:
                log.warning(
                    "control topic not found: rules and lists changed through the API do not reach "
                    "this worker until it exists (create it with `fraudstream topics create`)",
                    topic=self.topic,
                )
            return False
        partitions = sorted(metadata.partitions)
        self.consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        self.assigned = True
        try:
            ends = {
                p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=timeout_s)[1]
                for p in partitions
            }
        except KafkaException as exc:  # read what arrives; no wait for the end
            log.warning("control topic's end not known; reading on", topic=self.topic, error=str(exc))
            return False
        changed = False
        remaining = {p for p, end in ends.items() if end > 0}
        waited = 0.0
        while remaining and waited < timeout_s:
            messages = self.consumer.consume(1000, 0.2)
            waited += 0.2
            for message in messages:
                if message.error() is not None:
                    continue
                changed |= self._take(message.value())
                partition, offset = message.partition(), message.offset()
                if partition is not None and offset is not None and offset + 1 >= ends[partition]:
                    remaining.discard(partition)
        return changed

    def poll(self) -> bool:
        """Take what arrived since (no waiting); True if the rules or a list changed."""
        if not self.assigned:
            if time.monotonic() - self.tried_at < RETRY_S:
                return False
            return self.catch_up(timeout_s=1.0)
        changed = False
        for message in self.consumer.consume(100, 0):
            if message.error() is None:
                changed |= self._take(message.value())
        return changed

    def _take(self, value: bytes | None) -> bool:
        try:
            message: Any = orjson.loads(value or b"")
            if message.get("type") == "rules":
                rules = load_ruleset(str(message["yaml"]), self.names)
                self.rules = rules
                log.info("rule set received", version=rules.version)
                return True
            if message.get("type") == "list":
                items = [str(item) for item in message["items"]]
                expiries = {str(k): int(v) for k, v in (message.get("expiries") or {}).items()}
                self.lists[str(message["name"])] = (str(message["kind"]), items, expiries)
                return True
            if message.get("type") == "snoozes":
                self.snoozes = SnoozeTable.from_list(message["snoozes"])
                log.info("snoozes received", count=len(self.snoozes))
                return True
        except (
            orjson.JSONDecodeError,
            AttributeError,
            KeyError,
            TypeError,
            ValueError,
            FraudstreamError,
        ) as exc:
            # A rule set that does not load leaves the one in force (as the API would have).
            log.error("control message ignored", topic=self.topic, error=str(exc))
            return False
        log.error("control message of unknown type ignored", topic=self.topic)
        return False

    def apply(self, engine: Engine) -> None:
        """Give ``engine`` the latest rule set, list contents and snoozes read."""
        if self.rules is not None and engine.rules is not self.rules:
            engine.set_rules(self.rules)
        for name, (kind, items, expiries) in self.lists.items():
            if name not in engine.lists.names():
                engine.lists.declare(name, kind)
            engine.update_list(name, items, expiries)
        if self.snoozes is not None:
            engine.set_snoozes(self.snoozes)

    def close(self) -> None:
        self.consumer.close()
