"""Per-entity feature state: bounded arrays the kernels update, with expiry and snapshot/restore."""

from __future__ import annotations

import json
import mmap
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from fraudstream.core.batch import LabelBatch, TransactionBatch, string_bytes
from fraudstream.core.features import kernels
from fraudstream.core.features.spec import (
    DISTINCT_FIELDS,
    Aggregation,
    EntitySpec,
    FeatureConfig,
    parse_delay_ms,
    parse_duration_ms,
)
from fraudstream.errors import StateError

__all__ = ["FORMAT_VERSION", "FeatureMatrix", "FeatureState", "hash_keys"]

#: Version of the snapshot layout; restore refuses any other. Format 5 adds, per entity, the state of
#: the declared aggregations (``FeatureConfig.aggregations``); a format 4 snapshot is the same without
#: them, and restores into a state that declares none. Format 4 keeps, per entity, when its latest
#: event reached the runtime (what idle expiry measures); format 3 did not, and formats 1 and 2 kept
#: fraud counts in the buckets of the entity's own windows: none of those can be converted, replay.
FORMAT_VERSION: Final = 5
_READABLE_VERSIONS: Final = (4, 5)
_MAGIC: Final = b"FSTATE"
_HEADER = struct.Struct("<6sHI")  # magic, format version, JSON header length

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

#: The recent-key lists of a user's extras record, in the order of ``user_extras_kernel``.
_RECENT_KINDS: Final = ("merchant", "terminal", "device", "country")
#: Rows per pass of the feature kernels over a batch (see ``FeatureState.compute``): a block's rows
#: of features (~0.5 MB at 1024 rows) stay in a core's 1-2 MB L2 cache while every kind writes its
#: columns of them.
_BLOCK: Final = 1024


def _anonymous_memory(nbytes: int) -> mmap.mmap:
    """Private zeroed memory from the kernel, asked for in huge pages where the platform has them
    (the state is read at random: 2 MB pages spare the TLB misses of 4 KB ones)."""
    memory = mmap.mmap(-1, max(nbytes, mmap.PAGESIZE), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        memory.madvise(mmap.MADV_HUGEPAGE)
    return memory


class _Rows:
    """Zeroed int64 rows of a fixed width, page-aligned (so every row starts on a cache line when the
    width is a whole number of lines), that grow in place where they can.

    The rows live in an anonymous memory map. Growing remaps it (``mremap``): nothing is copied, the
    new rows are zero pages the kernel fills on first touch, and the map keeps its huge pages. A
    state that doubles is so spared a copy of everything it holds (a quarter of a gigabyte at
    100,000 users). A view of the rows that is still alive (a snapshot being written, say) pins the
    map; growing then copies into a new one.
    """

    def __init__(self, rows: int, width: int) -> None:
        self.width = width
        self.rows = rows
        self._memory = _anonymous_memory(rows * width * 8)

    def view(self) -> I64:
        words = self.rows * self.width
        return np.frombuffer(self._memory, dtype=np.int64, count=words).reshape(self.rows, self.width)

    def grow(self, rows: int, used: int) -> None:
        """Make room for ``rows`` rows, keeping the first ``used`` (every later row is zero)."""
        nbytes = rows * self.width * 8
        try:
            self._memory.resize(max(nbytes, mmap.PAGESIZE))
        except (BufferError, OSError, SystemError):  # pinned by a live view, or no mremap here
            memory = _anonymous_memory(nbytes)
            kept = used * self.width
            np.frombuffer(memory, dtype=np.int64, count=kept)[:] = self.view().reshape(-1)[:kept]
            self._memory = memory
        self.rows = rows


def _attribute_name(field_name: str) -> str | None:
    """``NAME`` of a field ``attributes.NAME``, else None."""
    return field_name.removeprefix("attributes.") if field_name.startswith("attributes.") else None


def hash_keys(column: pa.Array) -> U64:
    """Hash every string of an Arrow array to a non-zero uint64 (0 for null or empty).

    >>> hash_keys(pa.array(["a", None, "a", ""]))[[0, 2]].tolist() == [hash_keys(pa.array(["a"]))[0]] * 2
    True
    """
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    n = len(column)
    out = np.zeros(n, dtype=np.uint64)
    if n == 0 or column.null_count == n:
        return out
    offsets, data = string_bytes(column)
    valid = offsets[1:] > offsets[:-1]
    if column.null_count:
        valid &= np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
    kernels.hash_strings(offsets, data, valid, out)
    return out


@dataclass(frozen=True)
class FeatureMatrix:
    """Feature values of a batch: one float32 row per transaction, NaN where unknown."""

    names: tuple[str, ...]
    values: F32
    late: npt.NDArray[np.bool_]

    def column(self, name: str) -> F32:
        return self.values[:, self.index[name]]

    @cached_property
    def index(self) -> dict[str, int]:
        """Column position by feature name (built once per matrix: reasons read it per row)."""
        return {n: i for i, n in enumerate(self.names)}

    def select(self, names: tuple[str, ...]) -> F32:
        """The columns ``names`` in that order, as one contiguous matrix (a model's input)."""
        if names == self.names:
            return self.values  # already contiguous, in this order: no copy
        position = self.index
        columns = [position[n] for n in names]
        first = columns[0] if columns else 0
        if columns == list(range(first, first + len(columns))):
            # A run of columns (a model trained without the declared features reads the ones before
            # them): copied as a slice, some 30x faster than gathering the same columns one by one.
            return np.ascontiguousarray(self.values[:, first : first + len(columns)])
        return np.ascontiguousarray(self.values[:, columns])


@dataclass(frozen=True)
class _Declared:
    """How the declared aggregations of one entity kind are computed: their sources (a numeric field
    over a window, whose buckets serve every function of it), outputs and distinct counts, as the
    arrays ``kernels.aggregate_kernel`` reads."""

    source_gran: I64
    source_field: I64
    source_max: I64
    output_source: I64
    output_function: I64
    output_column: I64
    distinct_field: I64
    distinct_window: I64
    distinct_column: I64

    @classmethod
    def plan(
        cls,
        aggregations: list[Aggregation],
        config: FeatureConfig,
        numeric_fields: list[str],
        key_fields: list[str],
    ) -> _Declared:
        numeric = [a for a in aggregations if a.function != "distinct"]
        distinct = [a for a in aggregations if a.function == "distinct"]
        sources = list(dict.fromkeys((a.field, a.window_ms) for a in numeric))
        column = {name: i for i, name in enumerate(config.feature_names)}

        def ints(values: list[int]) -> I64:
            return np.array(values, dtype=np.int64)

        return cls(
            source_gran=ints([window // config.buckets for _, window in sources]),
            source_field=ints([numeric_fields.index(field) for field, _ in sources]),
            source_max=ints(
                [
                    any(a.function == "max" and (a.field, a.window_ms) == source for a in numeric)
                    for source in sources
                ]
            ),
            output_source=ints([sources.index((a.field, a.window_ms)) for a in numeric]),
            output_function=ints([("count", "sum", "mean", "max").index(a.function) for a in numeric]),
            output_column=ints([column[a.feature_name] for a in numeric]),
            distinct_field=ints([key_fields.index(a.field) for a in distinct]),
            distinct_window=ints([a.window_ms for a in distinct]),
            distinct_column=ints([column[a.feature_name] for a in distinct]),
        )

    def width(self, buckets: int, limit: int) -> int:
        words = kernels.aggregate_layout(len(self.source_gran), buckets, len(self.distinct_field), limit)[2]
        return int(words)


class _EntityArrays:
    """The state arrays of one entity kind, grown by doubling and compacted on expiry."""

    def __init__(
        self, spec: EntitySpec, config: FeatureConfig, capacity: int, declared: _Declared | None = None
    ) -> None:
        self.spec = spec
        self.gran = np.array([w // config.buckets for w in spec.window_ms], dtype=np.int64)
        self.longest = int(np.argmax(spec.window_ms))
        rings = config.label_rings() if spec.labels else ()
        self.ring_gran = np.array([g for g, _ in rings], dtype=np.int64)
        self.ring_len = np.array([n for _, n in rings], dtype=np.int64)
        self.n_used = np.zeros(1, dtype=np.int64)
        self.is_user = spec.name == "user"
        self._config = config
        c = config
        width = int(kernels.record_layout(len(spec.windows), c.buckets, self.ring_len)[4])
        self._keys = _Rows(capacity, 1)  # each slot's key hash, read as uint64
        # One record per entity: its clock as int64, its buckets as float32 (the same memory).
        self._records = _Rows(capacity, width)
        self.declared = declared
        if declared is not None:
            # The declared aggregations' row per entity: its clock as int64, buckets as float64.
            self._aggregates = _Rows(capacity, declared.width(c.buckets, c.distinct_limit))
        if self.is_user:
            self.recent_sizes = np.array(
                [c.recent_merchants, c.recent_terminals, c.recent_devices, c.recent_countries], dtype=np.int64
            )
            starts, extras_width = kernels.extras_layout(self.recent_sizes)
            self.recent_starts = starts
            self._extras = _Rows(capacity, int(extras_width))
        self._views()
        self._build_table(capacity)

    def _views(self) -> None:
        """The keys and records as the kernels read them: keys as uint64, records as int64 rows and the
        same memory as float32 (the extras' as float64)."""
        self.keys = self._keys.view().view(np.uint64).reshape(-1)
        self.records = self._records.view()
        self.cells = self.records.view(np.float32)
        if self.is_user:
            self.extras = self._extras.view()
            self.places = self.extras.view(np.float64)
        if self.declared is not None:
            self.aggregates = self._aggregates.view()
            self.aggregate_cells = self.aggregates.view(np.float64)

    def _build_table(self, capacity: int) -> None:
        size = 1 << max(4, int(2 * capacity - 1).bit_length())
        self.table = np.zeros((size, 2), dtype=np.uint64)
        kernels.rebuild_table(self.keys, int(self.n_used[0]), self.table)

    def per_slot_arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {"keys": self.keys, "records": self.records}
        if self.is_user:
            arrays["extras"] = self.extras
        if self.declared is not None:
            arrays["aggregates"] = self.aggregates
        return arrays

    @property
    def capacity(self) -> int:
        return int(self.keys.shape[0])

    def reserve(self, extra: int) -> None:
        """Make room for ``extra`` new entities without reallocating during a kernel call."""
        need = int(self.n_used[0]) + extra
        if need <= self.capacity:
            return
        capacity = max(need, 2 * self.capacity)
        used = int(self.n_used[0])
        # Drop this object's views first: they would pin the buffers and force a copy.
        del self.keys, self.records, self.cells
        if self.is_user:
            del self.extras, self.places
            self._extras.grow(capacity, used)
        if self.declared is not None:
            del self.aggregates, self.aggregate_cells
            self._aggregates.grow(capacity, used)
        self._keys.grow(capacity, used)
        self._records.grow(capacity, used)
        self._views()
        self._build_table(capacity)

    def expire(self, cutoff_ms: int) -> int:
        """Forget entities not seen since before ``cutoff_ms`` (processing time); return how many."""
        used = int(self.n_used[0])
        keep = np.flatnonzero(self.records[:used, kernels.SEEN] >= cutoff_ms)
        dropped = used - len(keep)
        if dropped == 0:
            return 0
        for array in self.per_slot_arrays().values():
            array[: len(keep)] = array[keep]
            array[len(keep) : used] = 0
        self.n_used[0] = len(keep)
        self._build_table(self.capacity)
        return dropped

    def bytes_per_entity(self) -> int:
        slot_bytes = sum(a.nbytes // max(1, a.shape[0]) for a in self.per_slot_arrays().values())
        table_bytes = self.table.nbytes // max(1, self.capacity)
        return int(slot_bytes + table_bytes)


class FeatureState:
    """Everything the engine remembers about entities, and the features it computes from it.

    >>> state = FeatureState(FeatureConfig())
    >>> batch = TransactionBatch.from_pydict({"transaction_id": ["a", "b"], "timestamp": [0, 10_000],
    ...     "user_id": ["u1", "u1"], "amount": [50.0, 5000.0], "currency": ["USD", "USD"]})
    >>> features = state.compute(batch)
    >>> features.column("user.count_30s").tolist(), features.column("user.amount_ratio_30d")[1]
    ([1.0, 2.0], np.float32(100.0))
    """

    def __init__(self, config: FeatureConfig, capacity: int = 1024) -> None:
        self.config = config
        declared = config.aggregations
        #: The numeric fields and the fields counted by distinct that declared aggregations read.
        self._numeric_fields = list(dict.fromkeys(a.field for a in declared if a.function != "distinct"))
        self._key_fields = list(dict.fromkeys(a.field for a in declared if a.function == "distinct"))
        plans = {
            spec.name: _Declared.plan(
                [a for a in declared if a.entity == spec.name], config, self._numeric_fields, self._key_fields
            )
            for spec in config.entities
            if any(a.entity == spec.name for a in declared)
        }
        self.entities = {
            spec.name: _EntityArrays(spec, config, capacity, plans.get(spec.name)) for spec in config.entities
        }
        self._idle_ms = parse_duration_ms(config.idle_expiry)
        self._lateness_ms = parse_duration_ms(config.allowed_lateness)
        self._delay_ms = parse_delay_ms(config.label_delay)
        self._horizon_ms = parse_delay_ms(config.longest_label_window)
        self._columns: dict[str, int] = {}
        col = 2
        for spec in config.entities:
            self._columns[spec.name] = col
            col += len(config.entity_feature_names(spec))
        self._extras_col = col
        # Every bucket length any entity kind uses, once: each event's bucket numbers are computed
        # for these per batch, and each kind reads its windows' rows of them.
        self._lengths = np.unique(
            np.concatenate([a.gran for a in self.entities.values()] + [p.source_gran for p in plans.values()])
        )
        self._rows = {
            name: np.searchsorted(self._lengths, a.gran).astype(np.int64) for name, a in self.entities.items()
        }
        self._source_rows = {
            name: np.searchsorted(self._lengths, p.source_gran).astype(np.int64) for name, p in plans.items()
        }

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.config.feature_names

    def compute(self, batch: TransactionBatch, seen_ms: npt.ArrayLike | None = None) -> FeatureMatrix:
        """Features of each transaction from the state before it, then fold it into the state.

        ``seen_ms`` is when each transaction reached the runtime (ms since the epoch, one per row):
        idle expiry measures it. A runtime that calls ``expire`` passes it, and passes the same
        values when it replays its log, so that a restart gives the features of an uninterrupted
        run. Left out, it is the transactions' own times, as for a replay of history.

        The kernels go through a large batch in blocks of ``_BLOCK`` rows, every entity kind one
        block after the other, so that each block's rows of features are still in the core's cache
        when the next kind's kernel writes its columns of them.
        """
        n = len(batch)
        ts = batch.timestamp_ms
        seen = ts if seen_ms is None else np.array(seen_ms, dtype=np.int64)
        # Read-only like the batch's own arrays: the kernels are then compiled for one kind of
        # array whether arrival times are given or not.
        seen.setflags(write=False)
        if seen.shape != (n,):
            raise StateError(f"seen_ms has {seen.size} times for a batch of {n}: give one per transaction")
        amount = batch.amount
        lat, lon = batch.lat, batch.lon
        out = np.empty((n, len(self.config.feature_names)), dtype=np.float32)
        out[:, 0] = amount
        out[:, 1] = (ts // 3_600_000) % 24
        late = np.zeros(n, dtype=np.bool_)
        slots = np.full(n, -1, dtype=np.int64)
        fresh = np.zeros(n, dtype=np.bool_)
        other_late = np.zeros(n, dtype=np.bool_)  # what the kernels of the other kinds write
        other_slots = np.empty(n, dtype=np.int64)
        other_fresh = np.empty(n, dtype=np.bool_)
        hashes = {
            name: hash_keys(batch.strings(arrays.spec.column)) for name, arrays in self.entities.items()
        }
        hashes["country"] = hash_keys(batch.strings("country"))
        none = np.zeros(n, dtype=np.uint64)
        # The extras record keeps key hashes as int64: the same bits, compared for equality only.
        recent = [hashes.get(kind, none).view(np.int64) for kind in _RECENT_KINDS]
        bucket_of, position_of = kernels.bucket_numbers(ts, self._lengths, self.config.buckets)
        values, keys = self._declared_inputs(batch, hashes)
        for arrays in self.entities.values():
            arrays.reserve(n)
        user = self.entities["user"]
        for start in range(0, n, _BLOCK):
            rows = slice(start, min(start + _BLOCK, n))
            for name, arrays in self.entities.items():
                written = (late, slots, fresh) if arrays.is_user else (other_late, other_slots, other_fresh)
                entity_late, entity_slots, entity_fresh = (array[rows] for array in written)
                kernels.entity_kernel(
                    hashes[name][rows], ts[rows], seen[rows], amount[rows], bucket_of[rows],
                    position_of[rows], self._rows[name], arrays.gran, self.config.buckets, arrays.longest,
                    arrays.ring_gran, arrays.ring_len, self._delay_ms, self._horizon_ms, self._idle_ms,
                    self._lateness_ms, arrays.table, arrays.keys, arrays.n_used, arrays.records, arrays.cells,
                    out[rows], self._columns[name], entity_slots, entity_fresh, entity_late,
                )  # fmt: skip
                if arrays.declared is not None:
                    plan = arrays.declared
                    kernels.aggregate_kernel(
                        entity_slots, entity_fresh, ts[rows], values[rows], keys[rows], bucket_of[rows],
                        position_of[rows], self._source_rows[name], plan.source_gran, plan.source_field,
                        plan.source_max, self.config.buckets, plan.output_source, plan.output_function,
                        plan.output_column,
                        plan.distinct_field, plan.distinct_window, plan.distinct_column,
                        self.config.distinct_limit, arrays.aggregates, arrays.aggregate_cells, out[rows],
                    )  # fmt: skip
            merchant, terminal, device, country = (h[rows] for h in recent)
            kernels.user_extras_kernel(
                slots[rows], fresh[rows], ts[rows], lat[rows], lon[rows], merchant, terminal, device,
                country, user.recent_sizes, user.extras, user.places, out[rows], self._extras_col,
            )  # fmt: skip
        return FeatureMatrix(self.config.feature_names, out, late)

    def _declared_inputs(
        self, batch: TransactionBatch, hashes: dict[str, U64]
    ) -> tuple[npt.NDArray[np.float64], I64]:
        """What the declared aggregations read, one column per field: the numeric fields (amount, or an
        attribute: NaN where missing) and the hashes of the fields distinct counts (0: missing)."""
        n = len(batch)
        values = np.empty((n, len(self._numeric_fields)), dtype=np.float64)
        keys = np.empty((n, len(self._key_fields)), dtype=np.int64)
        wanted = [(a, "number") for a in map(_attribute_name, self._numeric_fields) if a is not None]
        wanted += [(a, "string") for a in map(_attribute_name, self._key_fields) if a is not None]
        read = batch.attribute_values(wanted) if wanted else {}  # type: ignore[arg-type]
        for j, name in enumerate(self._numeric_fields):
            attribute = _attribute_name(name)
            values[:, j] = batch.amount if attribute is None else read[attribute, "number"]
        for j, name in enumerate(self._key_fields):
            attribute = _attribute_name(name)
            if attribute is not None:
                found = hash_keys(read[attribute, "string"])
            elif name in hashes:
                found = hashes[name]
            else:
                found = hash_keys(batch.strings(DISTINCT_FIELDS[name]))
            keys[:, j] = found.view(np.int64)
        return values, keys

    def preview(self, batch: TransactionBatch, seen_ms: npt.ArrayLike | None = None) -> FeatureMatrix:
        """The features ``compute`` would give, leaving the state exactly as it was before.

        Saves the rows of the entities the batch touches, computes, then puts those rows back and
        forgets entities the batch created. Cost grows with the batch, not with the state.
        """
        saved = []
        for arrays in self.entities.values():
            keys = hash_keys(batch.strings(arrays.spec.column))
            slots = np.empty(len(keys), dtype=np.int64)
            kernels.find_slots(keys, arrays.table, slots)
            slots = np.unique(slots[slots >= 0])
            rows = {name: array[slots].copy() for name, array in arrays.per_slot_arrays().items()}
            saved.append((arrays, int(arrays.n_used[0]), slots, rows))
        try:
            return self.compute(batch, seen_ms)
        finally:
            for arrays, n_keep, slots, rows in saved:
                current = arrays.per_slot_arrays()
                for name, values in rows.items():
                    current[name][slots] = values
                n_used = int(arrays.n_used[0])
                kernels.forget_newest(arrays.keys, n_keep, n_used, arrays.table)
                for array in current.values():
                    array[n_keep:n_used] = 0
                arrays.n_used[0] = n_keep

    def apply_labels(self, labels: LabelBatch) -> None:
        """Count confirmed frauds for the labelled transactions' merchants and terminals from now on."""
        tx_ts = labels.times_ms("transaction_time")
        is_fraud = labels.is_fraud
        for arrays in self.entities.values():
            if not arrays.spec.labels:
                continue
            keys = hash_keys(labels.strings(arrays.spec.column))
            kernels.label_kernel(
                keys, tx_ts, is_fraud, len(arrays.spec.windows), self.config.buckets, arrays.ring_gran,
                arrays.ring_len, self._horizon_ms, arrays.table, arrays.records, arrays.cells,
            )  # fmt: skip

    def expire(self, now_ms: int) -> int:
        """Forget entities none of whose events reached the runtime in the ``idle_expiry`` (plus
        ``allowed_lateness``) before ``now_ms``; return how many.

        Measured on each entity's own ``seen_ms``, so that an entity with old-dated events keeps its
        state while it is active. Forgetting changes no feature: the next event of such an entity,
        seen at ``now_ms - allowed_lateness`` or later, starts it afresh anyway (see
        ``kernels.entity_kernel``).

        >>> state, day = FeatureState(FeatureConfig()), 86_400_000
        >>> batch = TransactionBatch.from_pydict({"transaction_id": ["a", "b"], "timestamp": [0, 400 * day],
        ...     "user_id": ["dated-long-ago", "dated-now"], "amount": [5.0, 5.0], "currency": ["USD", "USD"]})
        >>> _ = state.compute(batch, seen_ms=[400 * day, 400 * day])
        >>> state.expire(now_ms=401 * day), state.expire(now_ms=500 * day)
        (0, 2)
        """
        cutoff = now_ms - self._idle_ms - self._lateness_ms
        return sum(arrays.expire(cutoff) for arrays in self.entities.values())

    def entity_counts(self) -> dict[str, int]:
        return {name: int(arrays.n_used[0]) for name, arrays in self.entities.items()}

    def bytes_per_entity(self) -> dict[str, int]:
        """Bytes of state per remembered entity of each kind (arrays plus hash-table share)."""
        return {name: arrays.bytes_per_entity() for name, arrays in self.entities.items()}

    def snapshot(self) -> bytes:
        """The whole state as bytes: a versioned header, then the used part of every array."""
        return b"".join(self.snapshot_parts())

    def snapshot_parts(self) -> list[bytes | memoryview]:
        """``snapshot()`` as pieces to write one after the other, without joining them. The arrays'
        pieces are views of the live state: write them out before the state changes again (a
        state of 100,000 users is ~250 MB, and every copy of it costs a fifth of a second here)."""
        header: dict[str, object] = {
            "config": self.config.to_dict(),
            "arrays": [],
        }
        listing: list[dict[str, object]] = []
        pieces: list[memoryview] = []
        offset = 0
        for name, arrays in self.entities.items():
            used = int(arrays.n_used[0])
            for field_name, array in arrays.per_slot_arrays().items():
                part = np.ascontiguousarray(array[:used])
                listing.append(
                    {
                        "entity": name,
                        "field": field_name,
                        "dtype": part.dtype.str,
                        "shape": list(part.shape),
                        "offset": offset,
                    }
                )
                pieces.append(part.reshape(-1).view(np.uint8).data)
                offset += part.nbytes
        header["arrays"] = listing
        encoded = json.dumps(header, sort_keys=True).encode()
        return [_HEADER.pack(_MAGIC, FORMAT_VERSION, len(encoded)) + encoded, *pieces]

    @classmethod
    def restore(cls, data: bytes, config: FeatureConfig) -> FeatureState:
        """Rebuild the state from ``snapshot()`` bytes taken with the same feature configuration."""
        if len(data) < _HEADER.size:
            raise StateError("feature snapshot is truncated: shorter than its header")
        magic, version, length = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise StateError("not a fraudstream feature snapshot (bad magic bytes)")
        if version not in _READABLE_VERSIONS:
            raise StateError(
                f"feature snapshot format {version} cannot be read by this version (reads "
                f"{', '.join(map(str, _READABLE_VERSIONS))}); start from an empty state and replay the "
                "event log"
            )
        try:
            header = json.loads(data[_HEADER.size : _HEADER.size + length])
        except ValueError as exc:
            raise StateError(f"feature snapshot header is corrupt: {exc}") from exc
        if header["config"] != config.to_dict():
            taken = header["config"].get("aggregations", [])
            if taken != [a.to_dict() for a in config.aggregations]:
                raise StateError(
                    f"feature snapshot was taken with the declared aggregations {taken or 'none'}, and "
                    f"the configuration now declares {[a.to_dict() for a in config.aggregations] or 'none'} "
                    "(FRAUDSTREAM_FEATURES_PATH): their state cannot be made up; restore with the "
                    "declarations it was taken with, or start from an empty state and replay the event log"
                )
            raise StateError(
                "feature snapshot was taken with another feature configuration "
                f"({header['config']}); restore with that configuration or replay the event log"
            )
        body = memoryview(data)[_HEADER.size + length :]
        used: dict[str, int] = {}
        by_entity: dict[str, dict[str, np.ndarray]] = {}
        for item in header["arrays"]:
            dtype = np.dtype(item["dtype"])
            shape = tuple(item["shape"])
            size = int(np.prod(shape)) * dtype.itemsize
            start = item["offset"]
            if start + size > len(body):
                raise StateError("feature snapshot is truncated: an array runs past the end")
            array = np.frombuffer(body[start : start + size], dtype=dtype).reshape(shape)
            by_entity.setdefault(item["entity"], {})[item["field"]] = array
            used[item["entity"]] = shape[0]
        state = cls(config)
        for name, arrays in state.entities.items():
            n = used.get(name, 0)
            # Each kind sized for its own entities (a few thousand merchants need no room for a
            # million users): a small hash table stays in cache.
            arrays.reserve(n)
            target = arrays.per_slot_arrays()
            for field_name, array in by_entity.get(name, {}).items():
                target[field_name][:n] = array
            arrays.n_used[0] = n
            arrays._build_table(arrays.capacity)
        return state
