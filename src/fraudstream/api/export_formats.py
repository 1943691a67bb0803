"""A listing's rows flattened into a spreadsheet's columns and written as CSV or Parquet, one page at
a time, so that an export of any length is sent while it is read.

Each column is named, typed (its Parquet type) and computed from a page of stored rows
(`storage.export_pages`): the listing's fields, reasons as their codes and their texts, rules as their
codes, attributes and feature values as JSON. A card is only its fingerprint, BIN and last four digits
(no card number is ever stored). A page becomes an Arrow table, which Parquet stores as it is (times
as UTC timestamps in milliseconds) and CSV writes with times in RFC 3339 UTC with milliseconds
(`2026-11-24T10:01:00.000Z`) and every text a spreadsheet would run as a formula after an apostrophe.

>>> page = {"transaction_id": ["t1"], "user_id": ["=1+1"], "amount": [-5.0], "created_at_ms": [0],
...         "updated_at_ms": [1], "score": [90], "decision": ["review"], "status": ["open"],
...         "reasons": ['[{"code": "amount_spike", "text": "100x usual"}]']}
>>> header, row = b"".join(csv_chunks(ALERT_COLUMNS, [page])).decode().splitlines()
>>> print(row[:58]); print(row[58:])
"t1","1970-01-01T00:00:00.000Z","1970-01-01T00:00:00.001Z"
,"'=1+1",-5,90,"review","open",,,,,"amount_spike","100x usual"
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

__all__ = [
    "ALERT_COLUMNS",
    "CSV_MEDIA_TYPE",
    "PARQUET_MEDIA_TYPE",
    "TRANSACTION_COLUMNS",
    "Column",
    "arrow_page",
    "csv_chunks",
    "csv_table",
    "parquet_chunks",
]

CSV_MEDIA_TYPE = "text/csv"
#: IANA's registered type for Parquet (2024).
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"

#: A page of stored rows by column (`storage.export_pages.StoredPage`).
Page = Mapping[str, Sequence[Any]]

_TIME = pa.timestamp("ms", tz="UTC")
#: Text a spreadsheet reads as the start of a formula (OWASP's CSV injection list) ...
_FORMULA_START = r"^[=+\-@\t\r]"
#: ... unless it is a plain number, which stays a number ("-12.5").
_PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


@dataclass(frozen=True)
class Column:
    """One column of an export: its name, its Parquet type and its values for a page of stored rows."""

    name: str
    type: pa.DataType
    values: Callable[[Page], Sequence[Any]]


def _stored(name: str) -> Callable[[Page], Sequence[Any]]:
    return lambda page: page.get(name) or [None] * _length(page)


def _length(page: Page) -> int:
    return len(next(iter(page.values()), ()))


def _reason_codes(page: Page) -> list[str]:
    return [",".join(r["code"] for r in orjson.loads(text)) for text in page["reasons"]]


def _reason_texts(page: Page) -> list[str]:
    return ["; ".join(r["text"] for r in orjson.loads(text)) for text in page["reasons"]]


def _codes(name: str) -> Callable[[Page], list[str]]:
    return lambda page: [",".join(orjson.loads(text)) for text in page[name]]


def _json_object(name: str) -> Callable[[Page], list[str | None]]:
    """A stored JSON object as it is; null for none or an empty one."""
    return lambda page: [text if text and text != "{}" else None for text in page[name]]


def _columns(*specs: tuple[str, pa.DataType] | Column) -> tuple[Column, ...]:
    return tuple(s if isinstance(s, Column) else Column(s[0], s[1], _stored(s[0])) for s in specs)


_TEXT = pa.string()
_NUMBER = pa.float64()
_INTEGER = pa.int64()

#: The columns of `GET /v1/transactions.csv|.parquet`: the transaction, then its decision.
TRANSACTION_COLUMNS: tuple[Column, ...] = _columns(
    ("transaction_id", _TEXT),
    Column("timestamp", _TIME, _stored("timestamp_ms")),
    ("user_id", _TEXT),
    ("amount", _NUMBER),
    *[(name, _TEXT) for name in ("currency", "merchant_id", "merchant_category", "terminal_id")],
    *[(name, _TEXT) for name in ("channel", "location")],
    ("lat", _NUMBER),
    ("lon", _NUMBER),
    *[(name, _TEXT) for name in ("country", "device_id", "ip", "card_fingerprint", "card_bin", "card_last4")],
    ("decision", _TEXT),
    ("score", _INTEGER),
    ("probability", _NUMBER),
    ("is_alert", pa.bool_()),
    Column("reason_codes", _TEXT, _reason_codes),
    Column("reasons", _TEXT, _reason_texts),
    Column("rules", _TEXT, _codes("rules")),
    Column("shadow_rules", _TEXT, _codes("shadow_rules")),
    ("model_version", _TEXT),
    ("ruleset_version", _INTEGER),
    ("latency_ms", _NUMBER),
    Column("decided_at", _TIME, _stored("decided_at_ms")),
    Column("received_at", _TIME, _stored("received_at_ms")),
    Column("attributes", _TEXT, _json_object("attributes")),
    Column("features", _TEXT, _json_object("features")),
    ("seq", _INTEGER),
)

#: The columns of `GET /v1/alerts.csv|.parquet`.
ALERT_COLUMNS: tuple[Column, ...] = _columns(
    ("transaction_id", _TEXT),
    Column("created_at", _TIME, _stored("created_at_ms")),
    Column("updated_at", _TIME, _stored("updated_at_ms")),
    ("user_id", _TEXT),
    ("amount", _NUMBER),
    ("score", _INTEGER),
    *[(name, _TEXT) for name in ("decision", "status", "assignee", "verdict", "note", "case_id")],
    Column("reason_codes", _TEXT, _reason_codes),
    Column("reasons", _TEXT, _reason_texts),
)


def schema_of(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.type) for c in columns])


def arrow_page(columns: Sequence[Column], page: Page) -> pa.Table:
    """A page of stored rows as the export's columns."""
    arrays = [pa.array(c.values(page), c.type) for c in columns]
    return pa.Table.from_arrays(arrays, schema=schema_of(columns))


def csv_table(table: pa.Table) -> pa.Table:
    """``table`` as CSV shows it: times as RFC 3339 text in UTC with milliseconds, and each text that
    a spreadsheet would run as a formula after an apostrophe (a plain number stays as it is).

    >>> table = pa.table({"cell": ["=1+2", "@SUM(A1)", "-12.5", "+1 555 0100", "ok", None]})
    >>> csv_table(table)["cell"].to_pylist()
    ["'=1+2", "'@SUM(A1)", '-12.5', "'+1 555 0100", 'ok', None]
    >>> times = pa.table({"t": pa.array([1752573660123], pa.timestamp("ms", tz="UTC"))})
    >>> csv_table(times)["t"].to_pylist()
    ['2025-07-15T10:01:00.123Z']
    """
    for position, field in enumerate(table.schema):
        column = table.column(position)
        if pa.types.is_timestamp(field.type):
            # The same instants without their zone are written "2025-07-15 10:01:00.123" 40 times
            # faster than strftime or a cast that looks the zone up; RFC 3339 wants the T and the Z.
            naive = pc.cast(pc.cast(column, pa.timestamp("ms")), _TEXT)
            column = pc.binary_join_element_wise(
                pc.replace_substring(naive, " ", "T", max_replacements=1), "Z", ""
            )
        elif pa.types.is_string(field.type):
            starts = pc.match_substring_regex(column, _FORMULA_START)
            if pc.any(starts).as_py():  # rare: most columns have no such text at all
                risky = pc.and_(starts, pc.invert(pc.match_substring_regex(column, _PLAIN_NUMBER)))
                column = pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
        table = table.set_column(position, field.name, column)
    return table


def csv_schema(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, _TEXT if c.type == _TIME else c.type) for c in columns])


def csv_chunks(columns: Sequence[Column], pages: Iterable[Page]) -> Iterator[bytes]:
    """UTF-8 CSV: a header row, then each page's rows as soon as the page is read (texts quoted,
    CRLF line ends; an empty cell is null, "" an empty text)."""
    sink = _Chunks()
    options = pa_csv.WriteOptions(include_header=True, eol="\r\n")
    with pa_csv.CSVWriter(sink, csv_schema(columns), write_options=options) as writer:
        yield sink.drain()
        for page in pages:
            writer.write_table(csv_table(arrow_page(columns, page)))
            yield sink.drain()
    yield sink.drain()


def parquet_chunks(columns: Sequence[Column], pages: Iterable[Page]) -> Iterator[bytes]:
    """A Parquet file, one row group per page, sent as it is written: the header, each row group as
    soon as it is encoded, and the footer at the end (a reader needs the whole file, as with any
    Parquet file; an answer cut short lacks the footer and is refused by every reader)."""
    sink = _Chunks()
    with pq.ParquetWriter(sink, schema_of(columns)) as writer:
        for page in pages:
            writer.write_table(arrow_page(columns, page))
            yield sink.drain()
    yield sink.drain()


class _Chunks(io.RawIOBase):
    """A write-only stream that keeps what was written until it is drained (the writers' sink: what
    they wrote so far goes out with the answer, and nothing is kept)."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out
