"""Values of a batch's extra fields (``attributes``), read by name and type a whole column at a time.

A transaction's fields beyond the schema are kept as one JSON object per row (the ``attributes``
column, see `fraudstream.core.schema`). Rules (``attributes.channel == 'web'``) and declared feature
aggregations read single top-level fields of it. A compiled kernel scans every row's object once per
batch, for every wanted name together, and notes where each value lies and what JSON type it has;
the values of one type are then gathered into one Arrow column (numbers parsed by Arrow's cast).

Typed, missing is null: a field read as a ``number`` is the JSON number, NaN where the row lacks
the field or holds anything else (text, true/false, null, an object); read as a ``string`` it is the
JSON text (escapes decoded), null otherwise; read as ``present`` it is 1.0 where the row holds a
value that is not null, NaN otherwise. Top-level fields are read, and those of an object the client
sent as ``attributes`` (``{"attributes": {"channel": "web"}}``: a field ``channel`` at the top would
be the schema's own) where the top level has no field of that name. A key written with escapes
(``"\\u0063hannel"``) is not matched to its name.

>>> import pyarrow as pa
>>> column = pa.array(['{"channel":"web","points":150}', None, '{"channel":5,"points":"x"}', "{}",
...     '{"attributes":{"channel":"pos","points":2},"points":3}'])
>>> values = attribute_columns(column, [("channel", "string"), ("points", "number")])
>>> values["channel", "string"].to_pylist(), values["points", "number"].tolist()
(['web', None, None, None, 'pos'], [150.0, nan, nan, nan, 3.0])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

__all__ = ["AttributeKind", "attribute_columns"]

AttributeKind = Literal["number", "string", "present"]

#: JSON types of a value, as the scan records them (0: the row has no such field).
_ABSENT, _STRING, _NUMBER, _NULL, _OTHER = 0, 1, 2, 3, 4
#: Added to a type while a row is scanned: the member is a top-level one (which a member of a nested
#: ``attributes`` object does not override).
_TOP = 8
#: The key of an object of extra fields a client sent as such, read as if its members were top-level.
_NESTED = np.frombuffer(b"attributes", dtype=np.uint8)


@njit(cache=True, nogil=True)
def _skip_space(data, p, end):  # type: ignore[no-untyped-def]
    while p < end and (data[p] == 32 or data[p] == 9 or data[p] == 10 or data[p] == 13):
        p += 1
    return p


@njit(cache=True, nogil=True)
def _after_string(data, p, end):  # type: ignore[no-untyped-def]
    """The position after the string opening at ``p`` (a quote), escapes skipped over."""
    p += 1
    while p < end:
        c = data[p]
        if c == 92:  # a backslash: the next byte is escaped
            p += 2
        elif c == 34:
            return p + 1
        else:
            p += 1
    return end


@njit(cache=True, nogil=True)
def _after_value(data, p, end):  # type: ignore[no-untyped-def]
    """The position after the JSON value starting at ``p``, and its type."""
    c = data[p]
    if c == 34:
        return _after_string(data, p, end), _STRING
    if c == 123 or c == 91:  # an object or a list: to its matching bracket, strings skipped
        depth = 0
        while p < end:
            c = data[p]
            if c == 34:
                p = _after_string(data, p, end)
                continue
            if c == 123 or c == 91:
                depth += 1
            elif c == 125 or c == 93:
                depth -= 1
                if depth == 0:
                    return p + 1, _OTHER
            p += 1
        return end, _OTHER
    q = p
    while q < end:
        c = data[q]
        if c == 44 or c == 125 or c == 93 or c == 32 or c == 9 or c == 10 or c == 13:
            break
        q += 1
    if data[p] == 110:  # null
        return q, _NULL
    if data[p] == 116 or data[p] == 102:  # true, false
        return q, _OTHER
    return q, _NUMBER


@njit(cache=True, nogil=True)
def _scan_members(data, p, end, names, name_offsets, starts, ends, kinds, i, top):  # type: ignore[no-untyped-def]
    """Note the wanted members of the object at ``p`` in row ``i``: where each value starts and ends in
    ``data`` and its type. At the top (``top``), the last of repeated keys wins, as in a JSON parser
    that builds a mapping, and the range of an object under the key ``attributes`` is returned (else
    -1, -1); inside that object (not ``top``), a member counts only where the top has none. A
    malformed object is read up to its first fault."""
    nested_start = -1
    nested_end = -1
    n_names = name_offsets.shape[0] - 1
    p = _skip_space(data, p, end)
    if p >= end or data[p] != 123:
        return nested_start, nested_end
    p += 1
    while True:
        p = _skip_space(data, p, end)
        if p >= end or data[p] != 34:
            break
        key_start = p + 1
        p = _after_string(data, p, end)
        key_end = p - 1
        p = _skip_space(data, p, end)
        if p >= end or data[p] != 58:  # ':'
            break
        p = _skip_space(data, p + 1, end)
        if p >= end:
            break
        value_start = p
        p, kind = _after_value(data, p, end)
        if top and data[value_start] == 123 and key_end - key_start == 10:
            same = True
            for j in range(10):
                if data[key_start + j] != _NESTED[j]:
                    same = False
                    break
            if same:
                nested_start = value_start
                nested_end = p
        for k in range(n_names):
            length = name_offsets[k + 1] - name_offsets[k]
            if length != key_end - key_start or (not top and kinds[i, k] >= _TOP):
                continue
            same = True
            for j in range(length):
                if names[name_offsets[k] + j] != data[key_start + j]:
                    same = False
                    break
            if same:
                starts[i, k] = value_start
                ends[i, k] = p
                kinds[i, k] = kind + (_TOP if top else 0)
        p = _skip_space(data, p, end)
        if p < end and data[p] == 44:  # ','
            p += 1
            continue
        break
    return nested_start, nested_end


@njit(cache=True, nogil=True)
def _scan(offsets, data, valid, names, name_offsets, starts, ends, kinds):  # type: ignore[no-untyped-def]
    """For every row's object and every wanted name: where its value starts and ends in ``data`` and
    its type (``kinds``, 0 where absent): a top-level member, else a member of an object the client
    sent as ``attributes`` (``{"attributes": {"channel": "web"}}``)."""
    for i in range(offsets.shape[0] - 1):
        for k in range(kinds.shape[1]):
            kinds[i, k] = _ABSENT
        if not valid[i]:
            continue
        end = offsets[i + 1]
        nested_start, nested_end = _scan_members(
            data, offsets[i], end, names, name_offsets, starts, ends, kinds, i, True
        )
        if nested_start >= 0:
            _scan_members(data, nested_start, nested_end, names, name_offsets, starts, ends, kinds, i, False)
        for k in range(kinds.shape[1]):
            if kinds[i, k] >= _TOP:
                kinds[i, k] -= _TOP


#: Powers of ten a double holds exactly: a decimal of at most 15 digits times or divided by one of
#: them is correctly rounded by one IEEE operation.
_EXACT_POWERS = np.array([10.0**k for k in range(23)])


@njit(cache=True, nogil=True)
def _digits(data, i, end, mantissa, digits):  # type: ignore[no-untyped-def]
    """Read decimal digits into ``mantissa``; ``digits`` counts the significant ones (from the first
    non-zero). Past 15 of them the mantissa stops growing and the caller gives up."""
    while i < end and 48 <= data[i] <= 57:
        if digits or data[i] != 48:
            digits += 1
        if digits <= 15:
            mantissa = mantissa * 10 + (data[i] - 48)
        i += 1
    return i, mantissa, digits


@njit(cache=True, nogil=True)
def _number(data, i, end, powers):  # type: ignore[no-untyped-def]
    """(value, position after it), or position -1 when the text is not a number this method reads."""
    negative = data[i] == 45  # "-"
    if negative:
        i += 1
    if i >= end or not 48 <= data[i] <= 57:
        return 0.0, -1
    if data[i] == 48 and i + 1 < end and 48 <= data[i + 1] <= 57:
        return 0.0, -1  # a leading zero is not JSON
    i, mantissa, digits = _digits(data, i, end, 0, 0)
    scale = 0
    if i < end and data[i] == 46:  # "."
        i += 1
        if i >= end or not 48 <= data[i] <= 57:
            return 0.0, -1
        fraction = i
        i, mantissa, digits = _digits(data, i, end, mantissa, digits)
        scale = fraction - i
    if digits > 15:
        return 0.0, -1
    if i < end and (data[i] == 101 or data[i] == 69):  # "e", "E"
        i += 1
        sign = 1
        if i < end and (data[i] == 43 or data[i] == 45):
            sign = -1 if data[i] == 45 else 1
            i += 1
        if i >= end or not 48 <= data[i] <= 57:
            return 0.0, -1
        exponent = 0
        while i < end and 48 <= data[i] <= 57:
            exponent = exponent * 10 + (data[i] - 48)
            if exponent > 400:
                return 0.0, -1
            i += 1
        scale += sign * exponent
    if scale < -22 or scale > 22:
        return 0.0, -1
    value = float(mantissa)
    value = value * powers[scale] if scale >= 0 else value / powers[-scale]
    return (-value if negative else value), i


@njit(cache=True, nogil=True)
def _numbers(data, starts, ends, take, powers, out, slow):  # type: ignore[no-untyped-def]
    """The ``take`` rows' JSON numbers into ``out`` (NaN elsewhere); where the fast exact method does
    not apply (more than 15 digits, a far exponent), ``slow`` marks the row for Arrow's parser."""
    for i in range(take.shape[0]):
        out[i] = np.nan
        slow[i] = False
        if take[i]:
            value, after = _number(data, starts[i], ends[i], powers)
            if after == ends[i]:
                out[i] = value
            else:
                slow[i] = True


@njit(cache=True, nogil=True)
def _hex(c):  # type: ignore[no-untyped-def]
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


@njit(cache=True, nogil=True)
def _code_point(data, p, end):  # type: ignore[no-untyped-def]
    """The four hex digits at ``p`` as a number, or -1."""
    if p + 4 > end:
        return -1
    value = 0
    for j in range(4):
        digit = _hex(data[p + j])
        if digit < 0:
            return -1
        value = value * 16 + digit
    return value


@njit(cache=True, nogil=True)
def _put_utf8(out, at, code):  # type: ignore[no-untyped-def]
    if code < 0x80:
        out[at] = code
        return at + 1
    if code < 0x800:
        out[at] = 0xC0 | (code >> 6)
        out[at + 1] = 0x80 | (code & 0x3F)
        return at + 2
    if code < 0x10000:
        out[at] = 0xE0 | (code >> 12)
        out[at + 1] = 0x80 | ((code >> 6) & 0x3F)
        out[at + 2] = 0x80 | (code & 0x3F)
        return at + 3
    out[at] = 0xF0 | (code >> 18)
    out[at + 1] = 0x80 | ((code >> 12) & 0x3F)
    out[at + 2] = 0x80 | ((code >> 6) & 0x3F)
    out[at + 3] = 0x80 | (code & 0x3F)
    return at + 4


@njit(cache=True, nogil=True)
def _unescape(data, p, end, out, at):  # type: ignore[no-untyped-def]
    """Copy the JSON string body ``data[p:end]`` into ``out`` from ``at``, escapes decoded (an
    unpaired surrogate becomes U+FFFD); return where it ends. Never longer than its text."""
    while p < end:
        c = data[p]
        if c != 92 or p + 1 >= end:
            out[at] = c
            at += 1
            p += 1
            continue
        e = data[p + 1]
        p += 2
        if e == 117:  # \uXXXX, maybe a surrogate pair
            code = _code_point(data, p, end)
            if code < 0:
                code = 0xFFFD
            else:
                p += 4
                if 0xD800 <= code < 0xDC00:
                    low = _code_point(data, p + 2, end) if p + 1 < end and data[p] == 92 else -1
                    if 0xDC00 <= low < 0xE000 and data[p + 1] == 117:
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        p += 6
                    else:
                        code = 0xFFFD
                elif 0xDC00 <= code < 0xE000:
                    code = 0xFFFD
            at = _put_utf8(out, at, code)
        else:
            if e == 98:
                e = 8
            elif e == 102:
                e = 12
            elif e == 110:
                e = 10
            elif e == 114:
                e = 13
            elif e == 116:
                e = 9
            out[at] = e  # \" \\ \/ stand for themselves
            at += 1
    return at


@njit(cache=True, nogil=True)
def _gather(data, starts, ends, take, unquote, out_offsets, out):  # type: ignore[no-untyped-def]
    """The ``take`` rows' value texts one after the other (``unquote``: string bodies, decoded)."""
    at = 0
    out_offsets[0] = 0
    for i in range(take.shape[0]):
        if take[i]:
            if unquote:
                at = _unescape(data, starts[i] + 1, ends[i] - 1, out, at)
            else:
                for p in range(starts[i], ends[i]):
                    out[at] = data[p]
                    at += 1
        out_offsets[i + 1] = at
    return at


def _texts(
    data: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    take: npt.NDArray[np.bool_],
    *,
    unquote: bool,
) -> pa.Array:
    """The texts of the ``take`` rows as an Arrow string array, null elsewhere."""
    n = take.shape[0]
    size = int(np.sum(np.where(take, ends - starts, 0)))
    out = np.empty(max(size, 1), dtype=np.uint8)
    offsets = np.empty(n + 1, dtype=np.int64)
    used = _gather(data, starts, ends, take, unquote, offsets, out)
    validity = pa.array(take).buffers()[1]
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(out[: max(used, 1)]), validity, int(n - take.sum())
    ).cast(pa.string())


def _string_bytes(column: pa.Array) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint8]]:
    """A string array's offsets and data buffer, without copying (as ``batch.string_bytes``, which
    this module cannot import: the batch reads its attributes through it)."""
    _, bounds, chars = column.buffers()
    offsets = np.frombuffer(bounds, dtype=np.int32)[column.offset : column.offset + len(column) + 1]
    return offsets, np.frombuffer(chars, dtype=np.uint8) if chars is not None else np.zeros(0, np.uint8)


def attribute_columns(
    column: pa.Array, wanted: Iterable[tuple[str, AttributeKind]]
) -> dict[tuple[str, AttributeKind], Any]:
    """The ``wanted`` top-level fields of the JSON objects in ``column`` (a string array), each
    ``(name, kind)`` as its kind asks: ``number`` and ``present`` as float64 NumPy arrays (NaN:
    missing), ``string`` as an Arrow string array (null: missing). One scan reads every name."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    pairs = list(dict.fromkeys(wanted))
    names = list(dict.fromkeys(name for name, _ in pairs))
    n = len(column)
    starts = np.zeros((n, len(names)), dtype=np.int64)
    ends = np.zeros((n, len(names)), dtype=np.int64)
    kinds = np.zeros((n, len(names)), dtype=np.int8)
    offsets, data = _string_bytes(column) if n else (np.zeros(1, dtype=np.int32), np.zeros(0, np.uint8))
    if n and column.null_count < n and names:
        valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
        encoded = [name.encode() for name in names]
        name_offsets = np.cumsum([0, *(len(e) for e in encoded)]).astype(np.int64)
        name_bytes = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8)
        _scan(offsets, data, valid, name_bytes, name_offsets, starts, ends, kinds)
    found: dict[tuple[str, AttributeKind], Any] = {}
    for name, kind in pairs:
        k = names.index(name)
        if kind == "present":
            found[name, kind] = np.where((kinds[:, k] != _ABSENT) & (kinds[:, k] != _NULL), 1.0, np.nan)
            continue
        take = kinds[:, k] == (_STRING if kind == "string" else _NUMBER)
        starts_k, ends_k = np.ascontiguousarray(starts[:, k]), np.ascontiguousarray(ends[:, k])
        if kind == "string":
            found[name, kind] = (
                _texts(data, starts_k, ends_k, take, unquote=True) if take.any() else pa.nulls(n, pa.string())
            )
            continue
        values = np.empty(n)
        slow = np.empty(n, dtype=np.bool_)
        _numbers(data, starts_k, ends_k, take, _EXACT_POWERS, values, slow)
        if slow.any():  # rare: numbers a double cannot read exactly by the fast method, parsed by Arrow
            texts = _texts(data, starts_k, ends_k, slow, unquote=False)
            parsed = np.asarray(pc.cast(texts, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
            values[slow] = parsed[slow]
        found[name, kind] = values
    return found
