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
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.batch import TRANSACTION_SCHEMA, LabelBatch, TransactionBatch
from fraudstream.errors import StateError

__all__ = ["PartitionLabels", "decode_partition_state", "encode_partition_state"]

#: The entity keys a label batch carries (besides the transaction's time).
ENTITY_KEYS = ("user_id", "merchant_id", "terminal_id", "card_fingerprint", "device_id", "ip")
_INDEX_COLUMNS = ("transaction_id", "timestamp", *ENTITY_KEYS)
_INDEX_SCHEMA = pa.schema([TRANSACTION_SCHEMA.field(name) for name in _INDEX_COLUMNS])
_TIME = TRANSACTION_SCHEMA.field("timestamp").type

_MAGIC = b"FSPART"
_HEADER = struct.Struct("<6sHI")  # magic, format version, length of the labels part


@dataclass
class PartitionLabels:
    """A partition's label bookkeeping: the transactions it scored recently (id, time and entity
    keys of about the last ``index_size``, kept as the scored batches' Arrow columns: no per-event
    work on the hot path), the labels read but not yet due (at most ``pending_size``), and the next
    offset of each labels partition already read into this partition.

    >>> labels = PartitionLabels(index_size=2)
    >>> for i, tid in enumerate(["a", "b", "c"]):
    ...     labels.remember(TransactionBatch.from_pydict({"transaction_id": [tid], "timestamp": [i],
    ...         "user_id": ["u"], "amount": [5.0], "currency": ["USD"], "terminal_id": ["T1"]}))
    >>> labels.remembered  # the oldest is forgotten
    2
    >>> fraud = [{"transaction_id": t, "is_fraud": True, "label_time": 10} for t in ("a", "c")]
    >>> labels.receive(0, 7, fraud)
    True
    >>> labels.receive(0, 7, fraud)  # a message this partition has read already
    False
    >>> labels.due(9) is None
    True
    >>> ready = labels.due(10)
    >>> ready.strings("transaction_id").to_pylist(), ready.strings("terminal_id").to_pylist(), labels.dropped
    (['c'], ['T1'], 1)
    """

    index_size: int = 100_000
    pending_size: int = 100_000
    chunks: deque[pa.RecordBatch] = field(default_factory=deque)
    pending: list[tuple[str, bool, int]] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)
    #: Labels dropped: transaction unknown to this partition when due, or pushed out of a full queue.
    dropped: int = 0

    @property
    def remembered(self) -> int:
        return sum(chunk.num_rows for chunk in self.chunks)

    def remember(self, batch: TransactionBatch) -> None:
        """Index the transactions of a scored batch, forgetting the oldest batches beyond ``index_size``."""
        self.chunks.append(batch.data.select(list(_INDEX_COLUMNS)))
        total = self.remembered
        while len(self.chunks) > 1 and total - self.chunks[0].num_rows >= self.index_size:
            total -= self.chunks.popleft().num_rows

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
        if not self.chunks:
            self.dropped += len(ready)
            return None
        index = pa.Table.from_batches(list(self.chunks))
        ids = pa.array([label[0] for label in ready], pa.string())
        positions = pc.index_in(ids, value_set=index.column("transaction_id").combine_chunks())
        known = positions.is_valid()
        self.dropped += len(ready) - int(pc.sum(known).as_py() or 0)
        if not pc.any(known).as_py():
            return None
        found = index.take(positions.filter(known))
        columns = {
            "transaction_id": found.column("transaction_id"),
            "is_fraud": pa.array([label[1] for label in ready], pa.bool_()).filter(known),
            "label_time": pa.array([label[2] for label in ready], pa.int64()).filter(known).cast(_TIME),
            "transaction_time": found.column("timestamp"),
            **{name: found.column(name) for name in ENTITY_KEYS},
        }
        return LabelBatch.from_arrow(pa.table(columns))

    def to_bytes(self) -> bytes:
        """Offsets and waiting labels as JSON, then the index as an Arrow IPC stream."""
        head = orjson.dumps(
            {
                "offsets": {str(p): o for p, o in self.offsets.items()},
                "pending": self.pending,
                "dropped": self.dropped,
            }
        )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, _INDEX_SCHEMA) as writer:
            for chunk in self.chunks:
                writer.write_batch(chunk)
        index: bytes = sink.getvalue().to_pybytes()
        return struct.pack("<I", len(head)) + head + index

    @classmethod
    def from_bytes(cls, data: bytes, *, index_size: int, pending_size: int) -> PartitionLabels:
        (length,) = struct.unpack_from("<I", data)
        head = orjson.loads(data[4 : 4 + length])
        labels = cls(index_size=index_size, pending_size=pending_size, dropped=int(head["dropped"]))
        labels.offsets = {int(p): int(o) for p, o in head["offsets"].items()}
        labels.pending = [(str(t), bool(f), int(ms)) for t, f, ms in head["pending"]]
        with pa.ipc.open_stream(pa.py_buffer(data[4 + length :])) as reader:
            labels.chunks = deque(batch for batch in reader if batch.num_rows)
        return labels


def encode_partition_state(
    engine_snapshot: Sequence[bytes | memoryview], labels: PartitionLabels
) -> list[bytes | memoryview]:
    """What a worker checkpoints for a partition: its label bookkeeping, then the engine snapshot
    (``Engine.snapshot_parts()``), as pieces to store one after the other."""
    part = labels.to_bytes()
    return [_HEADER.pack(_MAGIC, 1, len(part)) + part, *engine_snapshot]


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
