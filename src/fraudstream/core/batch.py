"""Columnar batches of transactions and labels: the one shape every part of the core consumes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

if TYPE_CHECKING:
    from fraudstream.core.attributes import AttributeKind

__all__ = [
    "LABEL_SCHEMA",
    "STRING_FIELDS",
    "TRANSACTION_SCHEMA",
    "LabelBatch",
    "TransactionBatch",
    "string_bytes",
]

_TS = pa.timestamp("ms", tz="UTC")

#: Canonical transaction columns, in order. A full card number never appears here: the edge turns
#: it into `card_fingerprint` (keyed HMAC), `card_bin` and `card_last4` before a batch is built.
TRANSACTION_SCHEMA: Final = pa.schema(
    [
        pa.field("transaction_id", pa.string(), nullable=False),
        pa.field("timestamp", _TS, nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("amount", pa.float64(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("merchant_id", pa.string()),
        pa.field("merchant_category", pa.string()),
        pa.field("terminal_id", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("location", pa.string()),
        pa.field("lat", pa.float64()),
        pa.field("lon", pa.float64()),
        pa.field("country", pa.string()),
        pa.field("device_id", pa.string()),
        pa.field("ip", pa.string()),
        pa.field("card_fingerprint", pa.string()),
        pa.field("card_bin", pa.string()),
        pa.field("card_last4", pa.string()),
        pa.field("attributes", pa.string()),
    ]
)

STRING_FIELDS: Final = tuple(f.name for f in TRANSACTION_SCHEMA if pa.types.is_string(f.type))

#: A label is about one earlier transaction. The edge fills the entity keys and the transaction's
#: time from its store, so the core needs no index of past transactions.
LABEL_SCHEMA: Final = pa.schema(
    [
        pa.field("transaction_id", pa.string(), nullable=False),
        pa.field("is_fraud", pa.bool_(), nullable=False),
        pa.field("label_time", _TS, nullable=False),
        pa.field("transaction_time", _TS, nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("merchant_id", pa.string()),
        pa.field("terminal_id", pa.string()),
        pa.field("card_fingerprint", pa.string()),
        pa.field("device_id", pa.string()),
        pa.field("ip", pa.string()),
    ]
)


def string_bytes(column: pa.Array) -> tuple[npt.NDArray[np.integer], npt.NDArray[np.uint8]]:
    """A string array's memory as NumPy, without copying: the ``len + 1`` offsets of its values
    (int32, or int64 for large strings) into its whole UTF-8 data buffer. Value i is
    ``data[offsets[i]:offsets[i + 1]]``; a null's range is not to be read.

    >>> offsets, data = string_bytes(pa.array(["ab", None, "c"]).slice(1))
    >>> offsets.tolist(), bytes(data[offsets[1] : offsets[2]])
    ([2, 2, 3], b'c')
    """
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise TypeError(f"expected a string array, got {column.type}")
    _, bounds, chars = column.buffers()
    width: type[np.integer] = np.int64 if pa.types.is_large_string(column.type) else np.int32
    n = len(column)
    offsets: npt.NDArray[np.integer] = np.frombuffer(bounds, dtype=width)[
        column.offset : column.offset + n + 1
    ]
    data = np.frombuffer(chars, dtype=np.uint8) if chars is not None else np.zeros(0, dtype=np.uint8)
    return offsets, data


def _conform(data: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    """Select, order and cast the columns of `data` to `schema`; absent optional columns become null."""
    n = data.num_rows
    columns = []
    for f in schema:
        if f.name in data.column_names:
            col = data.column(f.name)
            if isinstance(col, pa.ChunkedArray):
                col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
            if not col.type.equals(f.type):
                col = col.cast(f.type)
        elif f.nullable:
            col = pa.nulls(n, f.type)
        else:
            raise KeyError(f"column {f.name!r} is required")
        columns.append(col)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


class TransactionBatch:
    """Validated transactions as one Arrow record batch with the canonical schema.

    Build one with `fraudstream.core.schema.validate_records` (from JSON-like dicts) or
    `TransactionBatch.from_arrow` (from an Arrow table or record batch that already holds clean,
    canonical columns, e.g. a Parquet file the simulator wrote).

    >>> batch = TransactionBatch.from_pydict({
    ...     "transaction_id": ["t1"], "timestamp": [0], "user_id": ["u1"],
    ...     "amount": [12.5], "currency": ["USD"]})
    >>> len(batch), float(batch.amount[0])
    (1, 12.5)
    """

    __slots__ = ("_attribute_cache", "_cache", "data")

    def __init__(self, data: pa.RecordBatch) -> None:
        if not data.schema.equals(TRANSACTION_SCHEMA):
            data = _conform(data, TRANSACTION_SCHEMA)
        self.data = data
        self._cache: dict[str, npt.NDArray[np.generic]] = {}
        self._attribute_cache: dict[tuple[str, AttributeKind], Any] = {}

    @classmethod
    def from_arrow(cls, data: pa.RecordBatch | pa.Table) -> TransactionBatch:
        return cls(_conform(data, TRANSACTION_SCHEMA))

    @classmethod
    def from_pydict(cls, columns: dict[str, Sequence[object]]) -> TransactionBatch:
        n = len(next(iter(columns.values()))) if columns else 0
        arrays = []
        for f in TRANSACTION_SCHEMA:
            values = columns.get(f.name)
            arrays.append(pa.nulls(n, f.type) if values is None else pa.array(values, type=f.type))
        return cls(pa.RecordBatch.from_arrays(arrays, schema=TRANSACTION_SCHEMA))

    @classmethod
    def empty(cls) -> TransactionBatch:
        return cls(pa.RecordBatch.from_pylist([], schema=TRANSACTION_SCHEMA))

    @classmethod
    def concat(cls, batches: Sequence[TransactionBatch]) -> TransactionBatch:
        if not batches:
            return cls.empty()
        table = pa.Table.from_batches([b.data for b in batches], schema=TRANSACTION_SCHEMA)
        return cls(table.combine_chunks().to_batches()[0] if table.num_rows else batches[0].data)

    def __len__(self) -> int:
        return int(self.data.num_rows)

    def slice(self, start: int, stop: int) -> TransactionBatch:
        return TransactionBatch(self.data.slice(start, max(0, stop - start)))

    def take(self, indices: npt.NDArray[np.integer] | Sequence[int]) -> TransactionBatch:
        return TransactionBatch(self.data.take(pa.array(np.asarray(indices, dtype=np.int64))))

    def strings(self, name: str) -> pa.StringArray:
        """A string column as an Arrow array (nulls where absent)."""
        col = self.data.column(name)
        return col

    def attribute_values(
        self, wanted: Iterable[tuple[str, AttributeKind]]
    ) -> dict[tuple[str, AttributeKind], Any]:
        """Top-level fields of the rows' extra fields (``attributes``) by ``(name, kind)``, each read
        once per batch: the ones not read yet in one scan (see `fraudstream.core.attributes`).

        >>> batch = TransactionBatch.from_pydict({"transaction_id": ["t"], "timestamp": [0],
        ...     "user_id": ["u"], "amount": [1.0], "currency": ["USD"], "attributes": ['{"points":3}']})
        >>> batch.attribute_values([("points", "number")])["points", "number"].tolist()
        [3.0]
        """
        pairs = list(wanted)
        missing = [pair for pair in pairs if pair not in self._attribute_cache]
        if missing:
            from fraudstream.core.attributes import attribute_columns  # a kernel: compiled on first use

            self._attribute_cache.update(attribute_columns(self.data.column("attributes"), missing))
        return {pair: self._attribute_cache[pair] for pair in pairs}

    def to_table(self) -> pa.Table:
        return pa.Table.from_batches([self.data])

    def to_rows(self) -> list[dict[str, object]]:
        """One dict per transaction, ``timestamp`` as integer milliseconds (the edge's output).

        >>> TransactionBatch.from_pydict({"transaction_id": ["t"], "timestamp": [5], "user_id": ["u"],
        ...     "amount": [1.0], "currency": ["USD"]}).to_rows()[0]["timestamp"]
        5
        """
        # Integer times convert to Python several times faster than timezone-aware datetimes.
        data = self.data.set_column(1, "timestamp", self.data.column(1).cast(pa.int64()))
        columns = data.to_pydict()
        names = list(columns)
        return [dict(zip(names, values)) for values in zip(*columns.values())]

    def _numeric(self, name: str, dtype: type[np.generic], fill: float) -> npt.NDArray[np.generic]:
        cached = self._cache.get(name)
        if cached is None:
            col = self.data.column(name)
            if col.null_count:
                col = col.fill_null(fill)
            cached = np.asarray(col.to_numpy(zero_copy_only=False), dtype=dtype)
            self._cache[name] = cached
        return cached

    @property
    def transaction_id(self) -> pa.StringArray:
        return self.strings("transaction_id")

    @property
    def user_id(self) -> pa.StringArray:
        return self.strings("user_id")

    @property
    def timestamp_ms(self) -> npt.NDArray[np.int64]:
        """Event time as int64 milliseconds since the Unix epoch, UTC."""
        cached = self._cache.get("timestamp")
        if cached is None:
            # The column's own int64 values, read in place: a cast costs ~15 µs per call here.
            cached = self.data.column("timestamp").view(pa.int64()).to_numpy()
            self._cache["timestamp"] = cached
        return cached  # type: ignore[return-value]

    @property
    def amount(self) -> npt.NDArray[np.float64]:
        return self._numeric("amount", np.float64, np.nan)  # type: ignore[return-value]

    @property
    def lat(self) -> npt.NDArray[np.float64]:
        return self._numeric("lat", np.float64, np.nan)  # type: ignore[return-value]

    @property
    def lon(self) -> npt.NDArray[np.float64]:
        return self._numeric("lon", np.float64, np.nan)  # type: ignore[return-value]


class LabelBatch:
    """Fraud labels (confirmed fraud, chargebacks, analyst verdicts) for earlier transactions.

    >>> labels = LabelBatch.from_pydict({"transaction_id": ["t1"], "is_fraud": [True],
    ...     "label_time": [5000], "transaction_time": [0], "terminal_id": ["T1"]})
    >>> len(labels)
    1
    """

    __slots__ = ("data",)

    def __init__(self, data: pa.RecordBatch) -> None:
        if not data.schema.equals(LABEL_SCHEMA):
            data = _conform(data, LABEL_SCHEMA)
        self.data = data

    @classmethod
    def from_arrow(cls, data: pa.RecordBatch | pa.Table) -> LabelBatch:
        return cls(_conform(data, LABEL_SCHEMA))

    @classmethod
    def from_pydict(cls, columns: dict[str, Sequence[object]]) -> LabelBatch:
        n = len(next(iter(columns.values()))) if columns else 0
        arrays = []
        for f in LABEL_SCHEMA:
            values = columns.get(f.name)
            arrays.append(pa.nulls(n, f.type) if values is None else pa.array(values, type=f.type))
        return cls(pa.RecordBatch.from_arrays(arrays, schema=LABEL_SCHEMA))

    def __len__(self) -> int:
        return int(self.data.num_rows)

    def slice(self, start: int, stop: int) -> LabelBatch:
        return LabelBatch(self.data.slice(start, max(0, stop - start)))

    def take(self, indices: npt.NDArray[np.integer] | Sequence[int]) -> LabelBatch:
        return LabelBatch(self.data.take(pa.array(np.asarray(indices, dtype=np.int64))))

    def strings(self, name: str) -> pa.StringArray:
        return self.data.column(name)

    def times_ms(self, name: str) -> npt.NDArray[np.int64]:
        return np.asarray(self.data.column(name).cast(pa.int64()).to_numpy(), dtype=np.int64)

    @property
    def is_fraud(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.data.column("is_fraud").to_numpy(zero_copy_only=False), dtype=bool)
