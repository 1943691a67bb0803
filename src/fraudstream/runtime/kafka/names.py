"""The default names of fraudstream's topics, consumer group and checkpoint folder, and the worker's
default batching, in one place.

The API's settings, the worker and its command line, and `fraudstream topics create` all read them
here. No imports: the command line reads these without loading the Kafka client.
"""

from __future__ import annotations

from typing import Final

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

TRANSACTIONS_TOPIC: Final = "transactions"
DECISIONS_TOPIC: Final = "decisions"
ALERTS_TOPIC: Final = "fraud-alerts"
DLQ_TOPIC: Final = "transactions.dlq"
LABELS_TOPIC: Final = "labels"
CONTROL_TOPIC: Final = "fraudstream-control"

#: The workers' consumer group.
GROUP: Final = "fraudstream"
#: Where a worker keeps its partitions' checkpoints unless given a checkpoint URL.
CHECKPOINT_DIR: Final = "data/checkpoints"

#: Most messages a worker scores together. Large batches spread each batch's fixed cost (a few ms of
#: Arrow and NumPy calls to decode, validate and write outputs) over more events: one worker did
#: ~50,000 events/s at 1,000 and ~65,000 at 4,000 here. Under light load a batch is whatever arrived
#: within ``MAX_WAIT_S``, so the size adds no latency then.
BATCH_SIZE: Final = 4000
#: Longest wait for a batch, seconds.
MAX_WAIT_S: Final = 0.2
#: Seconds between a partition's checkpoints, at least.
CHECKPOINT_INTERVAL_S: Final = 5.0
