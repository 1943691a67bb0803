"""The data lake: every stored transaction and its decision as zstd Parquet in date partitions, in a
folder or under ``s3://bucket/prefix``; and how the training commands read it back.

Layout (``FRAUDSTREAM_LAKE_URL`` is the root)::

    raw/transactions/date=YYYY-MM-DD/part-<first seq:016d>.parquet
    decisions/date=YYYY-MM-DD/part-<first seq:016d>.parquet

``date`` is the UTC day of the transaction's own event time (its ``timestamp``), in both folders, so
a day of transactions and the decisions about them sit in partitions of the same name; a late event
lands in its own day's partition. Each file holds rows in log order with their ``seq`` (the server's
log position). A transaction is as stored: its card as fingerprint, BIN and last four (never a card
number) and its extra fields as one JSON text column, ``attributes`` (null when it had none; a
string column keeps one schema across files whatever fields clients send). A decision has its
reasons as JSON text and its rule codes as lists of strings.

A file is complete or absent: a local one is written under a hidden temporary name (readers skip
names starting with a dot) and renamed; an S3 object appears whole or not at all (one PUT, or for a
file over pyarrow's part size a multipart upload, which S3 shows only once completed). Files are
named by the first log position they hold, and every write starts at the sink's durable cursor (see
`LakeSink`), so what is written again after a crash or a failed write replaces the earlier file
instead of duplicating it.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fraudstream.core.batch import TRANSACTION_SCHEMA as CANONICAL_SCHEMA
from fraudstream.errors import ConfigError
from fraudstream.sinks.base import LogBatch
from fraudstream.storage.objects import open_location

if TYPE_CHECKING:
    from fraudstream.config import Settings

__all__ = [
    "DECISIONS",
    "DECISION_SCHEMA",
    "TRANSACTIONS",
    "TRANSACTION_SCHEMA",
    "Lake",
    "LakeSink",
    "open_lake",
    "read_transactions",
]

#: The folders under the lake's root.
TRANSACTIONS: Final = "raw/transactions"
DECISIONS: Final = "decisions"

_DAY_MS: Final = 86_400_000
_TIME: Final = pa.timestamp("ms", tz="UTC")
_CODES: Final = pa.list_(pa.string())

#: A file of ``raw/transactions/``: its log position, the canonical transaction columns (as the
#: engine takes them: card as fingerprint, BIN and last four), and when the server received it.
TRANSACTION_SCHEMA: Final = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        *CANONICAL_SCHEMA,
        pa.field("received_at", _TIME, nullable=False),
    ]
)

#: A file of ``decisions/``.
DECISION_SCHEMA: Final = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("transaction_id", pa.string(), nullable=False),
        pa.field("decision", pa.string(), nullable=False),
        pa.field("score", pa.int16(), nullable=False),
        pa.field("probability", pa.float64()),
        pa.field("is_alert", pa.bool_(), nullable=False),
        pa.field("reasons", pa.string(), nullable=False),
        pa.field("rules", _CODES, nullable=False),
        pa.field("shadow_rules", _CODES, nullable=False),
        pa.field("model_version", pa.string()),
        pa.field("ruleset_version", pa.int32()),
        pa.field("latency_ms", pa.float64()),
        pa.field("decided_at", _TIME, nullable=False),
    ]
)

#: The log's columns as `Store.log_after` hands them over (times in integer ms, lists as JSON text).
_LOG_SCHEMA: Final = pa.schema(
    [
        ("seq", pa.int64()),
        *((f.name, f.type) for f in TRANSACTION_SCHEMA if f.name not in ("seq", "timestamp", "received_at")),
        ("timestamp_ms", pa.int64()),
        ("received_at_ms", pa.int64()),
        *((f.name, pa.string() if f.type == _CODES else f.type) for f in DECISION_SCHEMA
          if f.name not in ("seq", "transaction_id", "decided_at")),
        ("decided_at_ms", pa.int64()),
    ]
)  # fmt: skip


@dataclass(frozen=True)
class Lake:
    """Where a lake lives: a filesystem and the root path in it (``bucket/prefix`` on S3)."""

    url: str
    filesystem: pafs.FileSystem
    root: str

    @property
    def local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        """A path in the lake, "/"-separated on every filesystem (as pyarrow's are)."""
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts)])

    def put(self, path: str, data: pa.Buffer) -> None:
        """Write one whole file: complete or absent, and replacing any file of that name."""
        if not self.local:
            # One PUT (a multipart upload, shown only once complete, for a file over the part size).
            with self.filesystem.open_output_stream(path) as stream:
                stream.write(data)
            return
        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)
        directory = os.open(final.parent, os.O_RDONLY)
        try:  # the rename itself survives a power loss once the folder is synced
            os.fsync(directory)
        finally:
            os.close(directory)


def open_lake(url: str, *, endpoint_url: str | None = None) -> Lake:
    """The lake a URL names: a folder (a path or ``file://``) or ``s3://bucket/prefix``.

    S3 takes credentials and region from the standard AWS settings (``AWS_ACCESS_KEY_ID``, ...,
    ``AWS_REGION``) and its endpoint from ``endpoint_url`` (``FRAUDSTREAM_S3_ENDPOINT_URL``), else
    ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (MinIO, moto), else AWS itself.

    >>> open_lake("data/lake").local
    True
    >>> open_lake("ftp://host/lake")
    Traceback (most recent call last):
    ...
    fraudstream.errors.ConfigError: lake 'ftp://host/lake': scheme 'ftp' is not supported; use a folder, \
file:///folder or s3://bucket/prefix (FRAUDSTREAM_LAKE_URL)
    """
    filesystem, root = open_location(
        url, endpoint_url=endpoint_url, what="lake", setting="FRAUDSTREAM_LAKE_URL"
    )
    return Lake(url, filesystem, root)


# --- writing -----------------------------------------------------------------------------------


def _codes(json_lists: pa.Array) -> pa.Array:
    """Rule codes stored as JSON lists of strings (``["a","b"]``) as Arrow lists, without parsing each
    row in Python: a code is ``[a-z][a-z0-9_]*``, so it holds no quote, comma or bracket.

    >>> _codes(pa.array(['[]', '["huge_amount","night"]'])).to_pylist()
    [[], ['huge_amount', 'night']]
    """
    bare = pc.replace_substring_regex(json_lists, r'[\[\]"\s]', "")
    return pc.if_else(pc.equal(bare, ""), pa.scalar([], _CODES), pc.split_pattern(bare, ","))


def _times(column: pa.Array) -> pa.Array:
    return column.cast(_TIME)


def lake_tables(batch: LogBatch) -> tuple[pa.Table, pa.Table]:
    """The rows of ``batch`` as a ``raw/transactions`` table and a ``decisions`` table (the same rows
    in the same order), built a column at a time."""
    values = batch.columns()
    # Flags come as the driver gives them (SQLite's are 0 and 1): read as given, then cast.
    columns = {
        f.name: pa.array(values[f.name]).cast(f.type)
        if f.type == pa.bool_()
        else pa.array(values[f.name], f.type)
        for f in _LOG_SCHEMA
    }
    columns["timestamp"] = _times(columns["timestamp_ms"])
    columns["received_at"] = _times(columns["received_at_ms"])
    columns["decided_at"] = _times(columns["decided_at_ms"])
    columns["rules"] = _codes(columns["rules"])
    columns["shadow_rules"] = _codes(columns["shadow_rules"])
    transactions = pa.table([columns[f.name] for f in TRANSACTION_SCHEMA], schema=TRANSACTION_SCHEMA)
    decisions = pa.table([columns[f.name] for f in DECISION_SCHEMA], schema=DECISION_SCHEMA)
    return transactions, decisions


def _parquet(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class LakeSink:
    """Every stored transaction and its decision into the lake (see the module's doc for the layout).

    Rows are buffered and written when ``file_rows`` wait (in ``deliver``), when ``flush_s`` have
    passed since the oldest of them arrived (in ``flush``), and all of them at shutdown. A write is
    the whole buffer: one file per folder and day, each named by the first ``seq`` it holds; the
    runner then saves the sink's cursor at the buffer's last ``seq``.

    Why a crash never duplicates a row: the buffer always starts just after the durable cursor (a
    failure or a restart empties it, and the runner reads again from that cursor), so every file
    written since the cursor was last saved is named by the first row of its day after the cursor,
    and the first write that covers that row again uses the same name and replaces it. Rows the
    earlier file held beyond the new one's end are written later, in files of their own.

    The filesystem is opened at the first write (and again after a failure), so a lake that does not
    answer when the server starts only makes the sink fail and retry, as it would later.
    """

    name = "lake"
    #: Every transaction goes to the lake, alert or not.
    alerts_only = False
    #: The cursor is saved after each write: the naming that prevents duplicates relies on it.
    save_every_s = 0.0

    def __init__(
        self,
        url: str,
        *,
        flush_s: float,
        file_rows: int,
        endpoint_url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        open_lake(url, endpoint_url=endpoint_url)  # a bad URL stops the server at start, not later
        self.url = url
        self.endpoint_url = endpoint_url
        self.flush_s = flush_s
        self.file_rows = file_rows
        self._clock = clock
        self._lake: Lake | None = None
        self._transactions: list[pa.Table] = []
        self._decisions: list[pa.Table] = []
        self._rows = 0
        self._oldest: float | None = None
        self._last_seq = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> LakeSink:
        assert settings.lake_url is not None, "the lake sink needs FRAUDSTREAM_LAKE_URL"
        return cls(
            settings.lake_url,
            flush_s=settings.lake_flush_s,
            file_rows=settings.lake_file_rows,
            endpoint_url=settings.s3_endpoint_url,
        )

    def active(self) -> bool:
        return True

    def deliver(self, batch: LogBatch) -> int | None:
        self._last_seq = batch.last_seq
        if not len(batch):
            # Nothing to write up to ``last_seq``: durable at once unless rows before it still wait.
            return batch.last_seq if self._oldest is None else None
        transactions, decisions = lake_tables(batch)
        self._transactions.append(transactions)
        self._decisions.append(decisions)
        self._rows += transactions.num_rows
        if self._oldest is None:
            self._oldest = self._clock()
        return self._write() if self._rows >= self.file_rows else None

    def flush(self, final: bool) -> int | None:
        if self._oldest is None:
            return None
        if final or self._clock() - self._oldest >= self.flush_s:
            return self._write()
        return None

    def reset(self) -> None:
        self._clear()
        self._lake = None  # opened afresh: the endpoint may have come back elsewhere

    def close(self) -> None:
        self._lake = None

    def _write(self) -> int:
        """Write the buffer, a day at a time (its transactions, then their decisions); the last
        ``seq`` now durable."""
        if self._lake is None:
            self._lake = open_lake(self.url, endpoint_url=self.endpoint_url)
        transactions = pa.concat_tables(self._transactions)
        decisions = pa.concat_tables(self._decisions)
        times = transactions.column("timestamp").cast(pa.int64()).to_numpy()
        days = np.asarray(times, dtype=np.int64) // _DAY_MS
        seqs = transactions.column("seq").to_numpy()
        for day in np.unique(days):
            in_day = days == day
            partition = f"date={np.datetime64(int(day), 'D')}"
            name = f"part-{int(seqs[np.argmax(in_day)]):016d}.parquet"  # its first row's seq
            mask = None if in_day.all() else pa.array(in_day)
            for folder, table in ((TRANSACTIONS, transactions), (DECISIONS, decisions)):
                rows = table if mask is None else table.filter(mask)
                self._lake.put(self._lake.path(folder, partition, name), _parquet(rows))
        self._clear()
        return self._last_seq

    def _clear(self) -> None:
        self._transactions, self._decisions = [], []
        self._rows, self._oldest = 0, None


# --- reading -----------------------------------------------------------------------------------


def _part_files(lake: Lake, first_day: date | None, last_day: date | None) -> list[pafs.FileInfo]:
    """The Parquet files of ``raw/transactions/``, in the day partitions from ``first_day`` to
    ``last_day`` (inclusive, either open); anything else there (another program's files) is left out."""
    base = lake.path(TRANSACTIONS)
    found = lake.filesystem.get_file_info(base)
    if found.type != pafs.FileType.Directory:
        raise ConfigError(
            f"{lake.url} is not a fraudstream lake: it has no {TRANSACTIONS}/ folder (a server with "
            f"FRAUDSTREAM_LAKE_URL={lake.url} writes it)"
        )
    low = f"date={first_day.isoformat()}" if first_day else ""
    high = f"date={last_day.isoformat()}" if last_day else "date=~"
    files = []
    for info in lake.filesystem.get_file_info(pafs.FileSelector(base, recursive=True)):
        folder, _, name = info.path.rpartition("/")
        partition = folder.rpartition("/")[2]
        if (
            info.type == pafs.FileType.File
            and name.startswith("part-")
            and name.endswith(".parquet")
            and partition.startswith("date=")
            and low <= partition <= high
        ):
            files.append(info)
    return sorted(files, key=lambda info: info.path)


def read_transactions(
    url: str,
    *,
    endpoint_url: str | None = None,
    first_day: date | None = None,
    last_day: date | None = None,
) -> tuple[pa.Table, str]:
    """The transactions of a lake as they were sent, in log order, and a fingerprint of the files
    read (for model cards and reports): canonical columns, each extra field back as a column of its
    own (as in the file or request it came in), without the lake's ``seq`` and ``received_at``.

    Only the day partitions from ``first_day`` to ``last_day`` are read when given. A URL with no
    ``raw/transactions/`` folder is a `ConfigError` naming it."""
    import pyarrow.dataset as ds

    lake = open_lake(url, endpoint_url=endpoint_url)
    files = _part_files(lake, first_day, last_day)
    digest = hashlib.sha256("\n".join(f"{f.path} {f.size}" for f in files).encode()).hexdigest()[:16]
    dataset = ds.dataset(
        [f.path for f in files],
        schema=TRANSACTION_SCHEMA,
        format="parquet",
        filesystem=lake.filesystem,
    )
    table = dataset.to_table().sort_by("seq")
    return _as_sent(table), digest


def _as_sent(table: pa.Table) -> pa.Table:
    """Lake rows as the transactions a client sent: the extra fields (JSON text in ``attributes``)
    back as columns, so that a label or any other field sent along can be named with ``--map``."""
    sent = table.drop_columns(["seq", "received_at", "attributes"])
    extras = _extra_columns(table.column("attributes"))
    for name in extras.column_names:
        if name not in sent.column_names:
            sent = sent.append_column(name, extras.column(name))
    return sent


def _extra_columns(attributes: pa.ChunkedArray) -> pa.Table:
    """The JSON objects of ``attributes`` as a table, parsed by Arrow's JSON reader in one pass; a
    table without columns when there are none, or when a field mixes kinds of values Arrow cannot
    type (those fields are then not read back: the engine does not use extra fields)."""
    import pyarrow.json as pj

    if attributes.null_count == len(attributes):
        return pa.table({})
    lines = pc.fill_null(attributes, "{}").combine_chunks()
    text = pc.binary_join(pa.ListArray.from_arrays([0, len(lines)], lines), "\n")[0].as_buffer()
    # One block for all of it, so that every field gets one type from all its values.
    options = pj.ReadOptions(block_size=max(len(text) + 1, 1 << 20))
    try:
        return pj.read_json(pa.BufferReader(text), read_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.table({})
