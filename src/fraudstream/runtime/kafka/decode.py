"""Decode a batch of JSON messages into one Arrow table in a single call, when it is safe to.

The column-wise validator then takes the table: per message that is a fraction of the cost of
`orjson.loads` into dicts and validating records. A batch of plain messages (flat objects with
canonical keys, strings without escapes, plain numbers: what producers write) is read by a compiled
scanner in one pass over its bytes; any other batch by `pyarrow.json`. Either applies only to
batches it decodes exactly as the records path would: every message one JSON object on one line, and
only canonical field names (no aliases, no extra fields, whose types Arrow would infer — ISO strings
as timestamps, for one). Anything else returns None and the caller takes the per-message path, which
also names each bad message's problem.
"""

from __future__ import annotations

import io
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson
from numba import njit

from fraudstream.core.attributes import _EXACT_POWERS, _number
from fraudstream.core.schema import FIELDS

__all__ = ["decode_block"]

_NUMBERS = {"amount", "lat", "lon"}
_SCHEMA = pa.schema([(name, pa.float64() if name in _NUMBERS else pa.string()) for name in FIELDS])
#: Fields outside the canonical ones make the parse fail, so the caller falls back.
_OPTIONS = pajson.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="error")


def decode_block(values: list[bytes]) -> pa.Table | None:
    """One table with a row per message, in order; None when the batch needs the per-message path.

    >>> decode_block([b'{"transaction_id": "t1", "user_id": "u", "amount": 5}']).column("amount")[0]
    <pyarrow.DoubleScalar: 5.0>
    >>> decode_block([b'{"userId": "u"}']) is None  # an alias: the records path resolves those
    True
    """
    if not values:
        return None
    table = _scan_block(values)
    return table if table is not None else _arrow_block(values)


def _arrow_block(values: list[bytes]) -> pa.Table | None:
    """The batch parsed by `pyarrow.json`, or None."""
    joined = b"\n".join(values)
    # A newline inside a message (pretty-printed JSON) would split it into several rows.
    if joined.count(b"\n") != len(values) - 1:
        return None
    try:
        table = pajson.read_json(
            io.BytesIO(joined),
            read_options=pajson.ReadOptions(block_size=len(joined) + 1),
            parse_options=_OPTIONS,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return table if table.num_rows == len(values) else None


# --- the compiled scanner ---------------------------------------------------------------------------
#
# Most batches are machine-written flat objects: canonical keys, strings without escapes, plain
# numbers. `_scan` reads exactly those, one pass over the bytes, and leaves everything else to
# `pyarrow.json` (which then may leave it to the per-message path): any escape, unknown or repeated
# key, nested value, boolean, number that a double cannot hold exactly by the fast method below, or
# anything that is not strict JSON makes it give up on the whole batch.

_STRING: Final = 0
_NUMBER: Final = 1
_KINDS: Final = np.array([_NUMBER if name in _NUMBERS else _STRING for name in FIELDS], dtype=np.int64)
_NAMES: Final = [name.encode() for name in FIELDS]
_NAME_BYTES: Final = np.frombuffer(b"".join(_NAMES), dtype=np.uint8)
_NAME_BOUNDS: Final = np.concatenate([[0], np.cumsum([len(n) for n in _NAMES])]).astype(np.int64)


@njit(cache=True, nogil=True)
def _space(data, i, end):  # type: ignore[no-untyped-def]
    while i < end and (data[i] == 32 or data[i] == 9 or data[i] == 13):  # space, tab, CR
        i += 1
    return i


@njit(cache=True, nogil=True)
def _field(data, start, stop, names, bounds):  # type: ignore[no-untyped-def]
    """The index of the canonical field named ``data[start:stop]``, or -1."""
    size = stop - start
    for f in range(bounds.shape[0] - 1):
        if bounds[f + 1] - bounds[f] != size:
            continue
        same = True
        for k in range(size):
            if data[start + k] != names[bounds[f] + k]:
                same = False
                break
        if same:
            return f
    return -1


@njit(cache=True, nogil=True)
def _scan(data, starts, ends, names, bounds, kinds, powers, text_start, text_stop, numbers, given):  # type: ignore[no-untyped-def]
    """Fill, per message and field, where its string is (``text_start``/``text_stop``), its number
    and whether it has a value (``given``); return False as soon as a message is not plain."""
    n_fields = kinds.shape[0]
    seen = np.zeros(n_fields, dtype=np.bool_)
    for row in range(starts.shape[0]):
        end = ends[row]
        seen[:] = False
        i = _space(data, starts[row], end)
        if i >= end or data[i] != 123:  # "{"
            return False
        i = _space(data, i + 1, end)
        if i < end and data[i] == 125:  # "}": an empty object
            i += 1
        else:
            while True:
                if i >= end or data[i] != 34:  # a key's opening quote
                    return False
                j = i + 1
                while j < end and data[j] != 34:
                    if data[j] == 92 or data[j] < 32:  # an escape or a raw control character
                        return False
                    j += 1
                if j >= end:
                    return False
                f = _field(data, i + 1, j, names, bounds)
                if f < 0 or seen[f]:
                    return False
                seen[f] = True
                i = _space(data, j + 1, end)
                if i >= end or data[i] != 58:  # ":"
                    return False
                i = _space(data, i + 1, end)
                if i >= end:
                    return False
                c = data[i]
                if c == 34:  # a string
                    if kinds[f] != 0:
                        return False
                    j = i + 1
                    while j < end and data[j] != 34:
                        if data[j] == 92 or data[j] < 32:
                            return False
                        j += 1
                    if j >= end:
                        return False
                    text_start[f, row] = i + 1
                    text_stop[f, row] = j
                    given[f, row] = True
                    i = j + 1
                elif c == 110:  # null
                    if end - i < 4 or data[i + 1] != 117 or data[i + 2] != 108 or data[i + 3] != 108:
                        return False
                    i += 4
                elif c == 45 or 48 <= c <= 57:  # a number
                    if kinds[f] != 1:
                        return False
                    value, i = _number(data, i, end, powers)
                    if i < 0:
                        return False
                    numbers[f, row] = value
                    given[f, row] = True
                else:
                    return False
                i = _space(data, i, end)
                if i < end and data[i] == 44:  # ","
                    i = _space(data, i + 1, end)
                    continue
                if i < end and data[i] == 125:  # "}"
                    i += 1
                    break
                return False
        if _space(data, i, end) != end:
            return False
    return True


@njit(cache=True, nogil=True)
def _gather(data, start, stop, given, offsets, out):  # type: ignore[no-untyped-def]
    """Copy each given string's bytes one after another (``offsets`` already summed)."""
    for row in range(start.shape[0]):
        if given[row]:
            at = offsets[row]
            for k in range(start[row], stop[row]):
                out[at] = data[k]
                at += 1


def _scan_block(values: list[bytes]) -> pa.Table | None:
    """The batch as a table when every message is plain (see above), else None."""
    n = len(values)
    sizes = np.fromiter(map(len, values), dtype=np.int64, count=n)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    data = np.frombuffer(b"".join(values), dtype=np.uint8)
    fields = len(FIELDS)
    text_start = np.zeros((fields, n), dtype=np.int64)
    text_stop = np.zeros((fields, n), dtype=np.int64)
    numbers = np.zeros((fields, n), dtype=np.float64)
    given = np.zeros((fields, n), dtype=np.bool_)
    plain = _scan(
        data, starts, ends, _NAME_BYTES, _NAME_BOUNDS, _KINDS, _EXACT_POWERS,
        text_start, text_stop, numbers, given,
    )  # fmt: skip
    if not plain:
        return None
    columns = []
    for f in range(len(FIELDS)):
        validity = pa.py_buffer(np.packbits(given[f], bitorder="little")) if not given[f].all() else None
        if _KINDS[f] == _NUMBER:
            columns.append(pa.Array.from_buffers(pa.float64(), n, [validity, pa.py_buffer(numbers[f])]))
            continue
        lengths = np.where(given[f], text_stop[f] - text_start[f], 0)
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        chars = np.empty(int(offsets[-1]), dtype=np.uint8)
        _gather(data, text_start[f], text_stop[f], given[f], offsets, chars)
        column = pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(chars)])
        try:
            column.validate(full=True)  # UTF-8, as the JSON parser would insist
        except pa.ArrowInvalid:
            return None
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=_SCHEMA)
