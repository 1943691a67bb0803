"""Labels from the `labels` topic, per partition: matched to the partition's recent transactions and
applied to its engine once its event time reaches the label's time; checkpointed with the engine.

A label message is ``{transaction_id, is_fraud, label_time?}`` or a list of them. The engine needs the
labelled transaction's time and entity keys, which the message does not carry: each partition keeps a
bounded index of the transactions it scored. A label whose transaction is not in that index belongs to
another partition (or is older than the index reaches) and is dropped there.

A label waits until a transaction at or after its ``label_time`` is about to be scored, as in a
backtest (`fraudstream.core.replay`): no score sees a label from its future, and a replay from a
checkpoint applies each label at the same place in the stream again.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from fraudstream.core.batch import LabelBatch, TransactionBatch
from fraudstream.core.schema import label_batch
from fraudstream.errors import StateError

__all__ = ["PartitionLabels", "decode_partition_state", "encode_partition_state"]

#: The entity keys a label batch carries (besides the transaction's time).
ENTITY_KEYS = ("user_id", "merchant_id", "terminal_id", "card_fingerprint", "device_id", "ip")

_MAGIC = b"FSPART"
_HEADER = struct.Struct("<6sHI")  # magic, format version, length of the labels part


@dataclass
class PartitionLabels:
    """A partition's label bookkeeping: the transactions it scored recently (id → time and entity
    keys, at most ``index_size``), the labels read but not yet due (at most ``pending_size``), and
    the next offset of each labels partition already read into this partition.

    >>> labels = PartitionLabels(index_size=2)
    >>> tx = TransactionBatch.from_pydict({"transaction_id": ["a", "b", "c"], "timestamp": [0, 1, 2],
    ...     "user_id": ["u", "u", "u"], "amount": [5.0, 6.0, 7.0], "currency": ["USD"] * 3})
    >>> labels.remember(tx)
    >>> sorted(labels.recent)  # the oldest is forgotten
    ['b', 'c']
    >>> labels.receive(0, 7, [{"transaction_id": "c", "is_fraud": True, "label_time": 10}])
    True
    >>> labels.receive(0, 7, [{"transaction_id": "c", "is_fraud": True, "label_time": 10}])  # a replay
    False
    >>> labels.due(9) is None, len(labels.due(10) or [])
    (True, 1)
    """

    index_size: int = 100_000
    pending_size: int = 100_000
    recent: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    pending: list[tuple[str, bool, int]] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)
    #: Labels dropped: transaction unknown to this partition when due, or pushed out of a full queue.
    dropped: int = 0

    def remember(self, batch: TransactionBatch) -> None:
        """Index the transactions of a scored batch, forgetting the oldest beyond ``index_size``."""
        columns = [batch.transaction_id.to_pylist(), batch.timestamp_ms.tolist()]
        columns += [batch.strings(name).to_pylist() for name in ENTITY_KEYS]
        for transaction_id, *values in zip(*columns):
            self.recent.pop(transaction_id, None)  # a repeated id moves to the newest end
            self.recent[transaction_id] = tuple(values)
        excess = len(self.recent) - self.index_size
        if excess > 0:
            for transaction_id in list(self.recent)[:excess]:
                del self.recent[transaction_id]

    def receive(self, partition: int, offset: int, rows: Sequence[dict[str, Any]]) -> bool:
        """Queue the validated labels of one message, unless this partition has read it already."""
        if offset < self.offsets.get(partition, 0):
            return False
        self.offsets[partition] = offset + 1
        self.pending += [(str(r["transaction_id"]), bool(r["is_fraud"]), int(r["label_time"])) for r in rows]
        excess = len(self.pending) - self.pending_size
        if excess > 0:  # keep the labels due soonest; the partition's event time is far behind
            self.pending.sort(key=lambda label: label[2])
            del self.pending[self.pending_size :]
            self.dropped += excess
        return True

    def due(self, until_ms: int) -> LabelBatch | None:
        """Take the queued labels with ``label_time <= until_ms``; those of known transactions come
        back as a batch for the engine, the others are dropped."""
        ready = [label for label in self.pending if label[2] <= until_ms]
        if not ready:
            return None
        self.pending = [label for label in self.pending if label[2] > until_ms]
        rows = []
        for transaction_id, is_fraud, label_time in ready:
            found = self.recent.get(transaction_id)
            if found is None:
                self.dropped += 1
                continue
            rows.append(
                {
                    "transaction_id": transaction_id,
                    "is_fraud": is_fraud,
                    "label_time": label_time,
                    "transaction_time": found[0],
                    **dict(zip(ENTITY_KEYS, found[1:])),
                }
            )
        return label_batch(rows) if rows else None

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "offsets": {str(p): o for p, o in self.offsets.items()},
                "pending": self.pending,
                "recent_ids": list(self.recent),
                "recent": list(self.recent.values()),
                "dropped": self.dropped,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, index_size: int, pending_size: int) -> PartitionLabels:
        parsed = orjson.loads(data)
        labels = cls(index_size=index_size, pending_size=pending_size, dropped=int(parsed["dropped"]))
        labels.offsets = {int(p): int(o) for p, o in parsed["offsets"].items()}
        labels.pending = [(str(t), bool(f), int(ms)) for t, f, ms in parsed["pending"]]
        labels.recent = dict(zip(parsed["recent_ids"], map(tuple, parsed["recent"])))
        return labels


def encode_partition_state(engine_snapshot: bytes, labels: PartitionLabels) -> bytes:
    """What a worker checkpoints for a partition: its label bookkeeping, then the engine snapshot."""
    part = labels.to_bytes()
    return _HEADER.pack(_MAGIC, 1, len(part)) + part + engine_snapshot


def decode_partition_state(
    data: bytes, *, index_size: int, pending_size: int
) -> tuple[bytes, PartitionLabels]:
    """The engine snapshot and label bookkeeping of ``encode_partition_state`` bytes. A checkpoint
    written before labels were consumed holds the engine snapshot alone: its labels start empty."""
    if not data.startswith(_MAGIC):
        return data, PartitionLabels(index_size=index_size, pending_size=pending_size)
    if len(data) < _HEADER.size:
        raise StateError("partition checkpoint is truncated: shorter than its header")
    _, version, length = _HEADER.unpack_from(data)
    if version != 1:
        raise StateError(f"partition checkpoint of format {version}; this version reads format 1")
    start = _HEADER.size
    labels = PartitionLabels.from_bytes(
        data[start : start + length], index_size=index_size, pending_size=pending_size
    )
    return data[start + length :], labels
