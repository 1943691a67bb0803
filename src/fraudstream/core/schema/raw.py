"""Input columns split by the kind of value they hold, and the vectorized scans every check uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.batch import string_bytes

_NUMBER_RE: Final = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf|infinity)$"

Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class _Raw:
    """One input column: its strings, integers and numbers apart, and where other kinds of value are."""

    text: pa.Array  # string values, null elsewhere
    integer: pa.Array  # integer values (int64), null elsewhere
    number: pa.Array  # integer and floating values as float64, null elsewhere
    other: Bool  # a value of another kind (bool, list, object, ...)
    present: Bool  # any value at all
    value: Callable[[int], object]  # the original value, for error messages
    ts_ms: pa.Array | None = None  # an Arrow timestamp column with a zone, as int64 ms
    naive_ts: pa.Array | None = None  # an Arrow timestamp column without a zone, as it is


@lru_cache(maxsize=64)
def _nulls(n: int, kind: pa.DataType) -> pa.Array:
    """An all-null array (immutable, so one per size and type is shared: absent fields are common)."""
    return pa.nulls(n, kind)


def _absent(n: int) -> _Raw:
    """A field no row has."""
    nothing = np.zeros(n, dtype=bool)
    return _Raw(
        _nulls(n, pa.string()),
        _nulls(n, pa.int64()),
        _nulls(n, pa.float64()),
        nothing,
        nothing,
        lambda i: None,
    )


def _raw_values(values: list[Any]) -> _Raw:
    """Split JSON-like values (str, int, float, bool, None, list, dict) of one field."""
    n = len(values)
    kinds = [type(v) for v in values]
    seen = set(kinds)
    present = np.fromiter((k is not type(None) for k in kinds), dtype=bool, count=n)
    text = (
        pa.array([v if k is str else None for v, k in zip(values, kinds)], pa.string())
        if str in seen
        else None
    )
    integer = number = None
    other = present.copy()
    if str in seen:
        other &= np.fromiter((k is not str for k in kinds), dtype=bool, count=n)
    if int in seen or float in seen:
        ints = [v if k is int and -(2**63) <= v < 2**63 else None for v, k in zip(values, kinds)]
        integer = pa.array(ints, pa.int64())
        # Python's float() rounds integers past 2**53; Arrow would refuse them (a 500, not a 422).
        number = pa.array(
            [v if k is float else (None if i is None else float(i)) for v, k, i in zip(values, kinds, ints)],
            pa.float64(),
            from_pandas=False,
        )
        other &= ~(number.is_valid().to_numpy(zero_copy_only=False))
    return _Raw(
        text=text if text is not None else _nulls(n, pa.string()),
        integer=integer if integer is not None else _nulls(n, pa.int64()),
        number=number if number is not None else _nulls(n, pa.float64()),
        other=other,
        present=present,
        value=values.__getitem__,
    )


def _raw_column(column: pa.ChunkedArray | pa.Array) -> _Raw:
    """Split an Arrow column (CSV / Parquet input) by its type."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    n = len(column)
    kind = column.type
    present = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    text, integer, number = _nulls(n, pa.string()), _nulls(n, pa.int64()), _nulls(n, pa.float64())
    other = np.zeros(n, dtype=bool)
    ts_ms = naive = None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        text = column.cast(pa.string())
    elif pa.types.is_integer(kind):
        integer = column.cast(pa.int64())
        number = column.cast(pa.float64())
    elif pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        number = column.cast(pa.float64())
    elif pa.types.is_timestamp(kind):
        if kind.tz is None:
            naive = column
        else:
            ts_ms = column.cast(pa.timestamp("ms", tz="UTC"), safe=False).cast(pa.int64())
    elif not pa.types.is_null(kind):
        other = present.copy()

    def value(i: int) -> object:
        return column[i].as_py()

    return _Raw(text, integer, number, other, present, value, ts_ms, naive)


def _mask(array: pa.Array) -> Bool:
    """An Arrow boolean array as NumPy, null counted as false."""
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _valid(array: pa.Array) -> Bool:
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


#: Bytes that are control characters (U+0000-U+001F and U+007F): in UTF-8 these code points are
#: single bytes, and no byte of a multi-byte sequence is below 0x80, so a byte scan finds exactly them.
_CONTROL_BYTES: Final = np.zeros(256, dtype=bool)
_CONTROL_BYTES[:0x20] = True
_CONTROL_BYTES[0x7F] = True


def _has_byte(text: pa.Array, flagged: Bool) -> Bool:
    """Per string, whether any of its bytes is ``flagged`` (a 256-entry table); false for a null.

    One pass over the batch's bytes, not a regular expression per value.

    >>> _has_byte(pa.array(["ok", "bad\\x00", None, "", "\\x7f"]), _CONTROL_BYTES).tolist()
    [False, True, False, False, True]
    """
    found = np.zeros(len(text), dtype=bool)
    if len(text) == 0:
        return found
    offsets, data = string_bytes(text)
    hits = np.flatnonzero(flagged[data[offsets[0] : offsets[-1]]]) + offsets[0]
    if len(hits):
        # The row holding byte p is the last one starting at or before p (empty rows start there too).
        found[np.searchsorted(offsets, hits, side="right") - 1] = True
    return found & _valid(text)


def _trimmed(raw: _Raw) -> pa.Array:
    return pc.utf8_trim_whitespace(raw.text)


def _parse_numbers(text: pa.Array) -> pa.Array:
    """Numeric strings → float64; anything else → null."""
    if text.null_count == len(text):  # numbers sent as numbers (the usual case): nothing to parse
        return _nulls(len(text), pa.float64())
    trimmed = pc.utf8_trim_whitespace(text)
    numeric = pc.match_substring_regex(trimmed, _NUMBER_RE, ignore_case=True)
    return pc.if_else(numeric, trimmed, pa.scalar(None, pa.string())).cast(pa.float64())
