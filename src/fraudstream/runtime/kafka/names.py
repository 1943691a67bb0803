"""The default names of fraudstream's topics, consumer group and checkpoint folder, and the worker's
default batching, as the Kafka runtime's modules import them; `fraudstream.config` defines them, the
defaults of its `Settings`."""

from __future__ import annotations

from fraudstream.config import (
    ALERTS_TOPIC,
    BATCH_SIZE,
    CHECKPOINT_DIR,
    CHECKPOINT_INTERVAL_S,
    CONTROL_TOPIC,
    DECISIONS_TOPIC,
    DLQ_TOPIC,
    GROUP,
    LABELS_TOPIC,
    MAX_WAIT_S,
    TRANSACTIONS_TOPIC,
)

__all__ = [
    "ALERTS_TOPIC",
    "BATCH_SIZE",
    "CHECKPOINT_DIR",
    "CHECKPOINT_INTERVAL_S",
    "CONTROL_TOPIC",
    "DECISIONS_TOPIC",
    "DLQ_TOPIC",
    "GROUP",
    "LABELS_TOPIC",
    "MAX_WAIT_S",
    "TRANSACTIONS_TOPIC",
]
