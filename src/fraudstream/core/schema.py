"""The transaction schema: aliases, types and bounds; records or tables in, a clean batch and errors out.

Validation works a column at a time: each field is pulled out of the input once, split by the kind
of value it holds, checked with vectorized Arrow / NumPy operations, and converted. Only the rows
that fail get a detailed `FieldError` (every problem of the row, not only the first); the good rows
become one `TransactionBatch` in input order. Rules worth knowing:

- ``transaction_id`` and ``user_id`` are required, 1–128 characters after trimming spaces; integers
  are accepted as ids and become their decimal text (``1087`` → ``"1087"``). Other optional ids
  (merchant, terminal, device, category, location) follow the same rule.
- ``amount`` is a finite number >= 0 and at most ``max_amount`` (default 1e9): 0.00 is a
  card-verification request, a classic card-testing signal, so it is scored, not refused. Numeric
  strings such as ``"50.00"`` are accepted, because many payment APIs send money as text to avoid
  binary floats; ``"NaN"`` / ``"inf"`` are refused as not finite, anything else as not a number.
- ``timestamp`` is RFC 3339 **with a zone** (``2025-07-15T10:00:00Z``, ``...+05:30``); a date-time
  without one is refused (add ``Z`` or an offset), unless the caller says which zone such times are
  in (``naive_timezone``: files exported without zones; a live payment must carry its own). Then
  naive text and Arrow timestamp columns without a zone are wall-clock times there: a time that
  happens twice when clocks go back is the first of the two, a time skipped when they go forward
  moves to the end of the gap (02:30 on a spring-forward night is 03:00). A number is a Unix time:
  below 10^11 it is seconds, otherwise milliseconds (10^11 s is the year 5138 and 10^11 ms is March
  1973, so the two ranges users send never overlap); digits-only text counts as a number. Missing:
  the ``received_at_ms`` the runtime passes.
- ``currency`` is an ISO 4217 code (default USD), ``country`` ISO 3166-1 alpha-2, both trimmed and
  upper-cased; ``channel`` is one of `CHANNELS`, lower-cased.
- ``lat`` / ``lon`` are numbers in range, both or neither. ``ip`` is IPv4 or IPv6 text, stored in
  its canonical form.
- ``card_number`` (12–19 digits, spaces or dashes allowed, Luhn-valid) becomes ``card_fingerprint``
  (keyed HMAC, see `fraudstream.core.cards`), ``card_bin`` and ``card_last4``. The number itself is
  never kept, nor echoed in an error (errors show it masked, BIN and last four), and extra fields
  that hold a valid card number are masked before they are kept.
- A ``location`` name without ``lat``/``lon`` is resolved through `ReferenceData.places`; unknown
  places ("Online") have no coordinates and are not an error. A resolved place fills a missing
  ``country``.
- Unknown extra fields are kept, as compact JSON, in ``attributes``: nested at most
  `MAX_EXTRA_DEPTH` levels and `MAX_EXTRA_BYTES` in all, or the row is refused.
"""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.batch import (
    LABEL_SCHEMA,
    TRANSACTION_SCHEMA,
    LabelBatch,
    TransactionBatch,
    string_bytes,
)
from fraudstream.core.cards import CARD_ALLOWED, CardTokenizer, luhn_valid_many, mask_card
from fraudstream.core.geo import DictPlaceLookup, PlaceLookup
from fraudstream.errors import ConfigError, FieldError

__all__ = [
    "ALIASES",
    "CHANNELS",
    "FIELDS",
    "DictPlaceLookup",
    "NaiveTimes",
    "PlaceLookup",
    "ReferenceData",
    "RowError",
    "ValidationResult",
    "Validator",
    "label_batch",
    "naive_times",
    "time_zone",
]

CHANNELS: Final = frozenset({"pos", "online", "atm", "mobile", "moto", "other"})

#: The input fields, in schema order; ``card_number`` never leaves validation.
FIELDS: Final = (
    "transaction_id",
    "timestamp",
    "user_id",
    "amount",
    "currency",
    "merchant_id",
    "merchant_category",
    "terminal_id",
    "channel",
    "location",
    "lat",
    "lon",
    "country",
    "device_id",
    "ip",
    "card_number",
    "card_fingerprint",
    "card_bin",
    "card_last4",
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


#: Names of the systems users come from → canonical field names (camelCase of each field too).
ALIASES: Final[dict[str, str]] = {
    **{_camel(name): name for name in FIELDS if _camel(name) != name},
    "txn_id": "transaction_id",
    "txnId": "transaction_id",
    "tx_id": "transaction_id",
    "id": "transaction_id",
    "customer_id": "user_id",
    "customerId": "user_id",
    "account_id": "user_id",
    "accountId": "user_id",
    "time": "timestamp",
    "event_time": "timestamp",
    "eventTime": "timestamp",
    "created_at": "timestamp",
    "createdAt": "timestamp",
    "mcc": "merchant_category",
    "merchant_category_code": "merchant_category",
    "merchantCategoryCode": "merchant_category",
    "ip_address": "ip",
    "ipAddress": "ip",
    "latitude": "lat",
    "longitude": "lon",
    "card": "card_number",
}

_MAX_ID: Final = 128
_ID_ALLOWED: Final = f"a string (or integer) of 1-{_MAX_ID} characters"
_TS_ALLOWED: Final = "RFC 3339 with a zone, e.g. 2025-07-15T10:00:00Z, or Unix seconds/milliseconds"
_UNIX_MS_FROM: Final = 1e11
#: 9999-12-31T23:59:59.999Z, the last instant RFC 3339 can write; later numbers would overflow int64.
_UNIX_MS_UNTIL: Final = 253_402_300_799_999.0
_NUMBER_RE: Final = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf|infinity)$"
_ZONED_RE: Final = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"
_NAIVE_RE: Final = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"
_IPV4_OCTET: Final = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4_RE: Final = rf"^({_IPV4_OCTET}\.){{3}}{_IPV4_OCTET}$"
_CARD_LIKE: Final = re.compile(r"^[\d\s-]{12,40}$")

Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ReferenceData:
    """Code lists and the gazetteer; built at the edge (see `fraudstream.reference.load_reference`)."""

    currencies: frozenset[str]
    countries: frozenset[str]
    places: PlaceLookup


@dataclass(frozen=True)
class RowError:
    """One input row that cannot be scored, with every problem it has."""

    index: int
    transaction_id: str | None
    errors: tuple[FieldError, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "transaction_id": self.transaction_id,
            "errors": [e.as_dict() for e in self.errors],
        }


@dataclass(frozen=True)
class ValidationResult:
    """The good rows as a batch (in input order), where each came from, and the bad rows."""

    batch: TransactionBatch
    rows: npt.NDArray[np.int64]
    errors: list[RowError]


# --- input columns, split by the kind of value they hold -------------------------------------------


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


# --- checks ---------------------------------------------------------------------------------------


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


#: What card numbers may be written with between digit groups (RE2's ``\s`` and the dash).
_CARD_SEPARATORS: Final = np.zeros(256, dtype=bool)
_CARD_SEPARATORS[list(b"\t\n\f\r -")] = True
_NOT_DIGITS: Final = np.ones(256, dtype=bool)
_NOT_DIGITS[list(b"0123456789")] = False


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


def _type_name(value: object) -> str:
    return f"has type {type(value).__name__}"


class _Errors:
    """Field errors by input row; built only for the rows a vectorized check flagged."""

    def __init__(self) -> None:
        self.by_row: dict[int, list[FieldError]] = {}

    def add(self, row: int, error: FieldError) -> None:
        self.by_row.setdefault(row, []).append(error)

    def flag(
        self,
        rows: Bool,
        field: str,
        problem: str | Callable[[object], str],
        allowed: str,
        raw: _Raw | None,
        show: Callable[[object], object] | None = None,
    ) -> None:
        if not rows.any():
            return
        for row in np.flatnonzero(rows).tolist():
            value = raw.value(row) if raw is not None else None
            text = problem(value) if callable(problem) else problem
            self.add(row, FieldError(field, text, allowed, show(value) if show else value))


def _trimmed(raw: _Raw) -> pa.Array:
    return pc.utf8_trim_whitespace(raw.text)


def _parse_numbers(text: pa.Array) -> pa.Array:
    """Numeric strings → float64; anything else → null."""
    if text.null_count == len(text):  # numbers sent as numbers (the usual case): nothing to parse
        return _nulls(len(text), pa.float64())
    trimmed = pc.utf8_trim_whitespace(text)
    numeric = pc.match_substring_regex(trimmed, _NUMBER_RE, ignore_case=True)
    return pc.if_else(numeric, trimmed, pa.scalar(None, pa.string())).cast(pa.float64())


#: The identifier fields, checked together by `_identifiers`.
_IDENTIFIERS: Final = (
    "transaction_id", "user_id", "merchant_id", "merchant_category", "terminal_id", "location",
    "device_id", "card_fingerprint", "card_bin", "card_last4",
)  # fmt: skip


@dataclass(frozen=True)
class _Ids:
    """One identifier field's values (trimmed text, integers as text) and what is wrong with them."""

    ids: pa.Array
    wrong_type: Bool
    length: npt.NDArray[np.int64]  # characters after trimming; -1 where absent
    control: Bool

    def flag(self, name: str, raw: _Raw, errors: _Errors, required: bool) -> pa.Array:
        if required:
            errors.flag(~raw.present, name, "is required", _ID_ALLOWED, None)
        errors.flag(self.wrong_type, name, _type_name, _ID_ALLOWED, raw)
        errors.flag(self.length == 0, name, "is empty", _ID_ALLOWED, raw)
        errors.flag(
            self.length > _MAX_ID,
            name,
            lambda v: f"is {len(str(v).strip())} characters long",
            _ID_ALLOWED,
            raw,
        )
        # A NUL cannot be stored in PostgreSQL text; refused here, it never fails a whole write group.
        errors.flag(self.control, name, "contains a control character such as NUL", _ID_ALLOWED, raw)
        return self.ids


def _identifiers(raws: Mapping[str, _Raw], names: Sequence[str]) -> dict[str, _Ids]:
    """Trim, measure and scan every identifier field with one Arrow call per step over all of them
    at once (a batch of one event pays each call once, not once per field). Absent fields are left
    out: `_identifier` answers for them without Arrow work."""
    present = [name for name in names if raws[name].present.any()]
    if not present:
        return {}
    parts = []
    for name in present:
        raw = raws[name]
        n = len(raw.present)
        # Integer ids count as their decimal text; text is trimmed below, which digits never need.
        parts.append(
            raw.text if raw.integer.null_count == n else pc.coalesce(raw.text, raw.integer.cast(pa.string()))
        )
    trimmed = pc.utf8_trim_whitespace(pa.concat_arrays(parts))
    valid = _valid(trimmed)
    length = np.where(valid, pc.utf8_length(trimmed).to_numpy(zero_copy_only=False), -1)
    control = _has_byte(trimmed, _CONTROL_BYTES)
    checked: dict[str, _Ids] = {}
    start = 0
    for name in present:
        raw = raws[name]
        n = len(raw.present)
        wrong = raw.other
        if raw.number.null_count < n:  # a float such as 1.5 is not an identifier; 15 is
            wrong = wrong | (_valid(raw.number) & ~_valid(raw.integer))
        end = start + n
        checked[name] = _Ids(trimmed.slice(start, n), wrong, length[start:end], control[start:end])
        start = end
    return checked


def _identifier(
    name: str, raw: _Raw, errors: _Errors, required: bool, checked: Mapping[str, _Ids] | None = None
) -> pa.Array:
    """The field's trimmed identifiers, with its errors flagged (from ``checked`` when given)."""
    if not raw.present.any():  # an absent optional field costs nothing (single events have many)
        if required:
            errors.flag(~raw.present, name, "is required", _ID_ALLOWED, None)
        return _nulls(len(raw.present), pa.string())
    found = checked.get(name) if checked is not None else None
    if found is None:
        found = _identifiers({name: raw}, [name])[name]
    return found.flag(name, raw, errors, required)


def _amounts(raw: _Raw, errors: _Errors, maximum: float) -> pa.Array:
    allowed = f"a finite number >= 0 and <= {maximum:,.0f} (a number or numeric text such as '50.00')"
    parsed = _parse_numbers(raw.text)
    amount = raw.number if parsed.null_count == len(parsed) else pc.coalesce(raw.number, parsed)
    values = amount.fill_null(np.nan).to_numpy(zero_copy_only=False)
    given = _valid(amount)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(values)
        errors.flag(~raw.present, "amount", "is required", allowed, None)
        errors.flag(raw.other, "amount", _type_name, allowed, raw)
        errors.flag(_valid(raw.text) & ~given, "amount", "is not a number", allowed, raw)
        errors.flag(given & ~finite, "amount", "is not finite", allowed, raw, str)
        errors.flag(finite & (values < 0), "amount", "must be >= 0", allowed, raw)
        errors.flag(finite & (values > maximum), "amount", "is larger than allowed", allowed, raw)
    if np.signbit(values[values == 0]).any():  # -0.0 is a zero amount; kept as written, it shows "-0.0"
        amount = pc.if_else(pc.equal(amount, 0.0), 0.0, amount)
    return amount


@lru_cache(maxsize=32)
def time_zone(name: str) -> str:
    """``name``, checked to be an IANA time zone (``UTC``, ``Europe/Paris``) that Arrow can convert with.

    >>> time_zone("Europe/Paris")
    'Europe/Paris'
    >>> time_zone("Europe/Pariss")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fraudstream.errors.ConfigError: time zone 'Europe/Pariss' is not known; give an IANA name such as ...
    """
    unknown = ConfigError(f"time zone {name!r} is not known; give an IANA name such as UTC or Europe/Paris")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise unknown from None
    try:  # Arrow reads its own copy of the zone database: a name it lacks must fail here, not mid-file
        pc.assume_timezone(pa.array([0], pa.timestamp("s")), timezone=name)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise unknown from None
    return name


def _in_zone(stamps: pa.Array, zone: str) -> pa.Array:
    """Timestamps without a zone, read as wall-clock times in ``zone``, → int64 ms since the epoch.

    A time that happens twice (clocks going back) is the first; one that never happens (clocks going
    forward) is the end of the gap.

    >>> autumn = pa.array(["2018-10-28 02:30:00", "2018-03-25 02:30:00"]).cast(pa.timestamp("s"))
    >>> pa.array(_in_zone(autumn, "Europe/Paris"), pa.timestamp("ms", tz="UTC")).to_pylist()[0].isoformat()
    '2018-10-28T00:30:00+00:00'
    >>> pa.array(_in_zone(autumn, "Europe/Paris"), pa.timestamp("ms", tz="UTC")).to_pylist()[1].isoformat()
    '2018-03-25T01:00:00+00:00'
    """
    zoned = pc.assume_timezone(stamps, timezone=zone, ambiguous="earliest", nonexistent="latest")
    return zoned.cast(pa.timestamp("ms", tz="UTC"), safe=False).cast(pa.int64())


def _cast_times(text: pa.Array, zone: str | None = None) -> tuple[pa.Array, Bool]:
    """Date-times → int64 ms; finds the unparseable ones (e.g. 2025-02-30) by halving.

    Without ``zone`` the texts carry their own zone; with it they have none and are times in ``zone``.
    """

    def cast(part: pa.Array) -> pa.Array:
        # Through nanoseconds, so up to 9 fraction digits parse; the cut to ms is intended.
        if zone is not None:
            return _in_zone(part.cast(pa.timestamp("ns")), zone)
        stamps = part.cast(pa.timestamp("ns", tz="UTC"))
        return stamps.cast(pa.timestamp("ms", tz="UTC"), safe=False).cast(pa.int64())

    try:
        return cast(text), np.zeros(len(text), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    bad = np.zeros(len(text), dtype=bool)
    pending = [(0, len(text))]
    while pending:
        start, stop = pending.pop()
        try:
            cast(text.slice(start, stop - start))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            if stop - start == 1:
                bad[start] = True
            else:
                middle = (start + stop) // 2
                pending += [(start, middle), (middle, stop)]
    kept = pc.if_else(pa.array(bad), pa.scalar(None, pa.string()), text)
    return cast(kept), bad


def _timestamps(
    raw: _Raw, errors: _Errors, received_at_ms: int, name: str = "timestamp", zone: str | None = None
) -> pa.Array:
    """Event times as int64 ms; date-times without a zone are in ``zone``, or refused without one."""
    n = len(raw.present)
    if not raw.present.any():
        return pa.array(np.full(n, received_at_ms, dtype=np.int64))
    text = pc.utf8_upper(_trimmed(raw))
    zoned = _mask(pc.match_substring_regex(text, _ZONED_RE))
    parsed, unparseable = _cast_times(pc.if_else(pa.array(zoned), text, pa.scalar(None, pa.string())))
    if zoned.sum() == len(text) - text.null_count:
        # Every text is a zoned date-time (the usual batch): none is naive or a number.
        naive = np.zeros(n, dtype=bool)
        numeric_text = _nulls(n, pa.string())
    else:
        naive = _mask(pc.match_substring_regex(text, _NAIVE_RE)) & ~zoned
        # Unix time written as text (a CSV column that also holds dates) counts like a number.
        numeric_text = pc.if_else(
            pc.match_substring_regex(text, r"^\d+(\.\d+)?$"), text, pa.scalar(None, pa.string())
        )
    if zone is not None and naive.any():
        local, bad = _cast_times(pc.if_else(pa.array(naive), text, pa.scalar(None, pa.string())), zone)
        parsed, unparseable = pc.coalesce(parsed, local), unparseable | bad
    numeric = pc.coalesce(raw.number, numeric_text.cast(pa.float64()))
    garbage = (_valid(raw.text) & ~zoned & ~naive & ~_valid(numeric_text)) | unparseable

    seconds = numeric.fill_null(np.nan).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        millis = np.where(seconds < _UNIX_MS_FROM, seconds * 1000.0, seconds)
        unix_ok = np.isfinite(seconds) & (seconds >= 0) & (millis <= _UNIX_MS_UNTIL)
    from_number = pa.array(np.rint(np.where(unix_ok, millis, 0.0)).astype(np.int64), mask=~unix_ok)
    columns = [parsed, from_number]
    if raw.ts_ms is not None:
        columns.insert(0, raw.ts_ms)
    if raw.naive_ts is not None and zone is not None:
        columns.insert(0, _in_zone(raw.naive_ts, zone))
    stamp = pc.coalesce(*columns, pa.scalar(received_at_ms, pa.int64()))

    errors.flag(raw.other, name, _type_name, _TS_ALLOWED, raw)
    errors.flag(_valid(numeric) & ~unix_ok, name, "is not a valid Unix time", _TS_ALLOWED, raw)
    if zone is None:
        zone_fix = "has no time zone; add Z (UTC) or an offset such as +02:00"
        errors.flag(naive, name, zone_fix, _TS_ALLOWED, raw)
        if raw.naive_ts is not None:
            errors.flag(raw.present, name, zone_fix + " to the column's type", _TS_ALLOWED, raw, str)
    errors.flag(garbage, name, "is not an RFC 3339 date-time", _TS_ALLOWED, raw)
    return stamp if len(stamp) == n else stamp.slice(0, n)


@lru_cache(maxsize=16)
def _value_set(known: frozenset[str]) -> pa.Array:
    return pa.array(sorted(known), pa.string())


def _codes(
    name: str,
    raw: _Raw,
    errors: _Errors,
    known: Iterable[str],
    allowed: str,
    default: str | None,
    *,
    upper: bool = True,
    problem: str = "is not a known code",
) -> pa.Array:
    if not raw.present.any():
        return pa.array([default] * len(raw.present), pa.string())
    trimmed = _trimmed(raw)
    code = pc.utf8_upper(trimmed) if upper else pc.utf8_lower(trimmed)
    ok = _mask(pc.is_in(code, value_set=_value_set(frozenset(known))))
    errors.flag(raw.other | _valid(raw.number), name, _type_name, allowed, raw)
    errors.flag(_valid(raw.text) & ~ok, name, problem, allowed, raw)
    return code.fill_null(default) if default is not None else code


def _coordinate(name: str, raw: _Raw, errors: _Errors, limit: float) -> pa.Array:
    if not raw.present.any():
        return _nulls(len(raw.present), pa.float64())
    allowed = f"a number from -{limit:g} to {limit:g}"
    value = pc.coalesce(raw.number, _parse_numbers(raw.text))
    numbers = value.fill_null(np.nan).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        in_range = np.abs(numbers) <= limit
    errors.flag(raw.other, name, _type_name, allowed, raw)
    errors.flag(raw.present & ~raw.other & ~in_range, name, "is out of range or not a number", allowed, raw)
    return pa.array(np.where(in_range, numbers, np.nan), pa.float64(), mask=~in_range)


def _canonical_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _ips(raw: _Raw, errors: _Errors) -> pa.Array:
    if not raw.present.any():
        return _nulls(len(raw.present), pa.string())
    allowed = "IPv4 or IPv6 text, e.g. 203.0.113.7 or 2001:db8::1"
    text = _trimmed(raw)
    v4 = pc.match_substring_regex(text, _IPV4_RE)
    rest = pc.if_else(v4, pa.scalar(None, pa.string()), text)
    # IPv6 (and oddly written IPv4) is checked once per distinct value by the standard library.
    distinct = pc.unique(rest).drop_null()
    canonical = pa.array([_canonical_ip(s) for s in distinct.to_pylist()], pa.string())
    mapped = canonical.take(pc.index_in(rest, value_set=distinct))
    ip = pc.if_else(v4, text, mapped)
    errors.flag(raw.other | _valid(raw.number), "ip", _type_name, allowed, raw)
    errors.flag(_valid(raw.text) & ~_valid(ip), "ip", "is not an IP address", allowed, raw)
    return ip


def _show_card(value: object) -> object:
    return mask_card(value) if isinstance(value, str) else mask_card(str(value))


def _card_digits(number: pa.Array) -> tuple[pa.Array, Bool]:
    """Card numbers without their separators, and which of them are 12 to 19 digits.

    >>> digits, shaped = _card_digits(pa.array(["4242 4242-4242 4242", "42", None]))
    >>> digits.to_pylist(), shaped.tolist()
    (['4242424242424242', '42', None], [True, False, False])
    """
    spaced = _has_byte(number, _CARD_SEPARATORS).any()
    digits = pc.replace_substring_regex(number, r"[\s-]", "") if spaced else number
    size = pc.binary_length(digits).fill_null(0).to_numpy(zero_copy_only=False)  # digits: 1 byte each
    shaped = _valid(digits) & ~_has_byte(digits, _NOT_DIGITS) & (size >= 12) & (size <= 19)
    return digits, shaped


def _cards(raw: _Raw, errors: _Errors, tokenizer: CardTokenizer) -> tuple[pa.Array, pa.Array, pa.Array]:
    if not raw.present.any():
        nothing = _nulls(len(raw.present), pa.string())
        return nothing, nothing, nothing
    number = pc.coalesce(raw.text, raw.integer.cast(pa.string()))
    digits, shaped = _card_digits(number)
    fingerprint, valid = tokenizer.fingerprints(digits, shaped)
    kept = pc.if_else(pa.array(valid), digits, pa.scalar(None, pa.string()))
    wrong = raw.other | (_valid(raw.number) & ~_valid(raw.integer))
    errors.flag(wrong, "card_number", _type_name, CARD_ALLOWED, raw, lambda v: type(v).__name__)
    not_card = _valid(number) & ~shaped
    errors.flag(not_card, "card_number", "is not a card number", CARD_ALLOWED, raw, _show_card)
    errors.flag(shaped & ~valid, "card_number", "fails the Luhn check", CARD_ALLOWED, raw, _show_card)
    return fingerprint, pc.utf8_slice_codeunits(kept, 0, 6), pc.utf8_slice_codeunits(kept, -4)


def _safe_extra(value: Any) -> Any:
    """Extra fields are kept, but anything that holds a valid card number is masked first."""
    if isinstance(value, int) and not isinstance(value, bool):
        value_text = str(abs(value))
        if 12 <= len(value_text) <= 19 and luhn_valid_many([value_text])[0]:
            return mask_card(value_text)
    elif isinstance(value, str) and _CARD_LIKE.match(value):
        digits = re.sub(r"[\s-]", "", value)
        if 12 <= len(digits) <= 19 and luhn_valid_many([digits])[0]:
            return mask_card(digits)
    elif isinstance(value, Mapping):
        return {k: _safe_extra(v) for k, v in value.items()}
    elif isinstance(value, list):
        return [_safe_extra(v) for v in value]
    return value


#: Extra fields are kept for analysts and exports, not as a store for arbitrary documents: deeper or
#: larger ones are refused, so that nothing a client sends can break hashing or serialising (orjson
#: stops at 255 levels) or bloat every stored row.
MAX_EXTRA_DEPTH: Final = 16
MAX_EXTRA_BYTES: Final = 16_384
_EXTRA_DEPTH_ALLOWED: Final = f"objects and lists nested at most {MAX_EXTRA_DEPTH} levels deep"
_EXTRA_SIZE_ALLOWED: Final = f"at most {MAX_EXTRA_BYTES:,} bytes of JSON in extra fields altogether"


def _nesting_depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests objects and lists, counted up to ``limit + 1`` and no further
    (iterative: a document a thousand levels deep must not exhaust Python's recursion limit)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, Mapping | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return deepest
            children = item.values() if isinstance(item, Mapping) else item
            pending.extend((child, depth) for child in children)
    return deepest


def _check_extras(mappings: Sequence[Mapping[str, Any]], known: set[str], errors: _Errors) -> None:
    """Flag rows whose extra fields nest too deeply or weigh too much."""
    for row, record in enumerate(mappings):
        size = 0
        for name, value in record.items():
            if name in known:
                continue
            depth = _nesting_depth(value, MAX_EXTRA_DEPTH)
            if depth > MAX_EXTRA_DEPTH:
                problem = f"nests more than {MAX_EXTRA_DEPTH} levels deep"
                errors.add(row, FieldError(name, problem, _EXTRA_DEPTH_ALLOWED, None))
                size = -1
                break
            size += len(name) + len(orjson.dumps(value, default=str))
        if size > MAX_EXTRA_BYTES:
            problem = f"extra fields hold {size:,} bytes of JSON"
            errors.add(row, FieldError("body", problem, _EXTRA_SIZE_ALLOWED, None))


def _attributes(
    rows: Iterable[Mapping[str, Any]], known: frozenset[str] | set[str], skip: Iterable[int] = ()
) -> list[str | None]:
    """Each row's extra fields as compact JSON (None for none, and for the rows in ``skip``)."""
    out: list[str | None] = []
    skipped = set(skip)
    for row, record in enumerate(rows):
        extra = {} if row in skipped else {
            k: _safe_extra(v) for k, v in record.items() if k not in known and v is not None
        }  # fmt: skip
        out.append(orjson.dumps(extra, default=str).decode() if extra else None)
    return out


def _coalesce_values(records: Sequence[Mapping[str, Any]], sources: list[str]) -> list[Any]:
    if len(sources) == 1:
        source = sources[0]
        return [r.get(source) for r in records]
    out: list[Any] = []
    for record in records:
        value = None
        for source in sources:
            value = record.get(source)
            if value is not None:
                break
        out.append(value)
    return out


def _record_sources(keys: Iterable[str]) -> dict[str, list[str]]:
    """{field: the record keys that may hold it}: its own name first, then its aliases among ``keys``."""
    sources: dict[str, list[str]] = {name: [name] for name in FIELDS}
    for key in sorted(keys):
        canonical = ALIASES.get(key)
        if canonical is not None:
            sources[canonical].append(key)
    return sources


def _table_sources(table: pa.Table, mapping: Mapping[str, str] | None) -> dict[str, str]:
    """{field: the table's column that holds it}: the mapping's, else the column named like the field,
    else one named like an alias."""
    renames = dict(mapping or {})
    for canonical, source in renames.items():
        if canonical not in FIELDS:
            raise ConfigError(
                f"column mapping names {canonical!r}, which is not a transaction field; "
                f"use one of: {', '.join(FIELDS)}"
            )
        if source not in table.column_names:
            raise ConfigError(
                f"column mapping sends {source!r} to {canonical!r}, but the table has no such "
                f"column; its columns are: {', '.join(table.column_names)}"
            )
    # A column named exactly like a field wins over one named like its alias.
    for name in table.column_names:
        if name in FIELDS and name not in renames:
            renames[name] = name
    for name in table.column_names:
        field = ALIASES.get(name)
        if field is not None and field not in renames:
            renames[field] = name
    return renames


@dataclass(frozen=True)
class NaiveTimes:
    """Date-times without a zone in an input's time column (``where``): how many, and the first."""

    where: str
    example: str
    rows: int


def naive_times(
    data: pa.Table | Sequence[Any], mapping: Mapping[str, str] | None = None
) -> NaiveTimes | None:
    """Where a table (columns mapped as `Validator.table` maps them) or a list of JSON-like records holds
    times without a zone; None when it holds none.

    A file exported without zones needs the zone its times were written in: asking this first lets a
    command say so once, instead of refusing each row.

    >>> naive_times(pa.table({"TX_DATETIME": ["2018-04-01 00:00:31"]}), {"timestamp": "TX_DATETIME"})
    NaiveTimes(where='column TX_DATETIME', example='2018-04-01 00:00:31', rows=1)
    >>> naive_times([{"time": "2018-04-01T00:00:31Z"}]) is None
    True
    """
    if isinstance(data, pa.Table):
        column = _table_sources(data, mapping).get("timestamp")
        if column is None:
            return None
        raw, where = _raw_column(data.column(column)), f"column {column}"
    else:
        records = [r for r in data if isinstance(r, Mapping)]
        keys = {key for record in records for key in record}
        names = [key for key in _record_sources(keys)["timestamp"] if key in keys]
        if not names:
            return None
        raw, where = _raw_values(_coalesce_values(records, names)), f"field {' / '.join(names)}"
    naive = _mask(pc.match_substring_regex(pc.utf8_upper(_trimmed(raw)), _NAIVE_RE))
    if raw.naive_ts is not None:
        naive |= raw.present
    if not naive.any():
        return None
    return NaiveTimes(where, str(raw.value(int(np.argmax(naive)))), int(naive.sum()))


# --- the validator --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validator:
    """Checks and converts input at the edge; the only place a card number is ever seen.

    >>> places = DictPlaceLookup({"Paris": (48.86, 2.35, "FR")})
    >>> v = Validator(ReferenceData(frozenset({"USD", "EUR"}), frozenset({"US", "FR"}), places), b"key")
    >>> result = v.records([{"transactionId": "t1", "userId": 7, "amount": "12.50", "location": "Paris"},
    ...                     {"transaction_id": "t2", "user_id": "u", "amount": -1}], received_at_ms=0)
    >>> result.batch.data.column("country").to_pylist(), result.rows.tolist()
    (['FR'], [0])
    >>> error = result.errors[0].errors[0]
    >>> error.field, error.problem, error.value
    ('amount', 'must be >= 0', -1)
    """

    reference: ReferenceData
    card_key: bytes
    max_amount: float = 1e9
    _tokenizer: CardTokenizer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tokenizer", CardTokenizer(self.card_key))

    def warm_up(self) -> TransactionBatch:
        """Do the first call's work now (the gazetteer's index, loading the compiled card kernels:
        about half a second), not in the first request. Returns the sample it validated, a batch of
        one transaction to warm an engine up with the same way."""
        self.reference.places.resolve(["New York"])
        sample = {"transaction_id": "warm-up", "user_id": "warm-up", "amount": 1, "currency": "USD"}
        return self.records([{**sample, "card_number": "4242424242424242"}], received_at_ms=0).batch

    def records(
        self, records: Sequence[Any], *, received_at_ms: int, naive_timezone: str | None = None
    ) -> ValidationResult:
        """Validate JSON-like records (dicts); anything that is not an object is a row error.

        ``naive_timezone``: the IANA zone of date-times written without one; None refuses them.
        """
        zone = None if naive_timezone is None else time_zone(naive_timezone)
        errors = _Errors()
        mappings: list[Mapping[str, Any]] = []
        for row, record in enumerate(records):
            if isinstance(record, Mapping):
                mappings.append(record)
            else:
                errors.add(row, FieldError("body", f"is a {type(record).__name__}", "a JSON object", None))
                mappings.append({})
        keys: set[str] = set()
        for record in mappings:
            keys.update(record.keys())
        # Aliases are resolved once per batch from the union of keys, not per record.
        sources = _record_sources(keys)
        known = {s for names in sources.values() for s in names}
        raws = {
            name: _raw_values(_coalesce_values(mappings, sources[name]))
            if keys.intersection(sources[name])
            else _absent(len(mappings))
            for name in FIELDS
        }
        nothing: list[str | None] = [None] * len(mappings)
        if keys - known:
            _check_extras(mappings, known, errors)
            attributes = _attributes(mappings, known, skip=errors.by_row)
        else:
            attributes = nothing
        return self._finish(raws, errors, received_at_ms, attributes, zone)

    def table(
        self,
        table: pa.Table,
        *,
        received_at_ms: int,
        mapping: Mapping[str, str] | None = None,
        naive_timezone: str | None = None,
    ) -> ValidationResult:
        """Validate a columnar table (CSV / Parquet); ``mapping`` names {canonical field: source column}.

        Columns named like a field or one of its `ALIASES` are picked up without a mapping; the
        other columns are kept in ``attributes``. ``naive_timezone``: the IANA zone of date-times
        written without one (text, or an Arrow timestamp type without a zone); None refuses them.
        """
        zone = None if naive_timezone is None else time_zone(naive_timezone)
        renames = _table_sources(table, mapping)
        n = table.num_rows
        raws = {
            name: _raw_column(table.column(renames[name])) if name in renames else _absent(n)
            for name in FIELDS
        }
        used = set(renames.values())
        extras = [c for c in table.column_names if c not in used]
        nothing: list[str | None] = [None] * n
        attributes = _attributes(table.select(extras).to_pylist(), set()) if extras else nothing
        return self._finish(raws, _Errors(), received_at_ms, attributes, zone)

    def _finish(
        self,
        raws: dict[str, _Raw],
        errors: _Errors,
        received_at_ms: int,
        attributes: list[str | None],
        zone: str | None,
    ) -> ValidationResult:
        ref = self.reference
        n = len(attributes)
        checked = _identifiers(raws, _IDENTIFIERS)
        out: dict[str, pa.Array] = {
            "transaction_id": _identifier("transaction_id", raws["transaction_id"], errors, True, checked),
            "timestamp": _timestamps(raws["timestamp"], errors, received_at_ms, zone=zone),
            "user_id": _identifier("user_id", raws["user_id"], errors, True, checked),
            "amount": _amounts(raws["amount"], errors, self.max_amount),
            "currency": _codes(
                "currency", raws["currency"], errors, ref.currencies, "an ISO 4217 code such as USD", "USD"
            ),
        }
        for name in ("merchant_id", "merchant_category", "terminal_id"):
            out[name] = _identifier(name, raws[name], errors, False, checked)
        out["channel"] = _codes(
            "channel",
            raws["channel"],
            errors,
            CHANNELS,
            ", ".join(sorted(CHANNELS)),
            None,
            upper=False,
            problem="is not a known channel",
        )
        out["location"] = _identifier("location", raws["location"], errors, False, checked)
        out["lat"] = _coordinate("lat", raws["lat"], errors, 90.0)
        out["lon"] = _coordinate("lon", raws["lon"], errors, 180.0)
        only_lat = raws["lat"].present & ~raws["lon"].present
        only_lon = raws["lon"].present & ~raws["lat"].present
        errors.flag(only_lat, "lon", "is missing while lat is given", "both lat and lon, or neither", None)
        errors.flag(only_lon, "lat", "is missing while lon is given", "both lat and lon, or neither", None)
        out["country"] = _codes(
            "country", raws["country"], errors, ref.countries, "an ISO 3166-1 alpha-2 code such as US", None
        )
        out["device_id"] = _identifier("device_id", raws["device_id"], errors, False, checked)
        out["ip"] = _ips(raws["ip"], errors)
        fingerprint, card_bin, last4 = _cards(raws["card_number"], errors, self._tokenizer)
        # Already tokenised cards (e.g. a Parquet file the simulator wrote) pass through.
        out["card_fingerprint"] = pc.coalesce(
            fingerprint, _identifier("card_fingerprint", raws["card_fingerprint"], errors, False, checked)
        )
        out["card_bin"] = pc.coalesce(
            card_bin, _identifier("card_bin", raws["card_bin"], errors, False, checked)
        )
        out["card_last4"] = pc.coalesce(
            last4, _identifier("card_last4", raws["card_last4"], errors, False, checked)
        )
        out["attributes"] = pa.array(attributes, pa.string())
        self._resolve_places(out, ~raws["lat"].present & ~raws["lon"].present)

        bad = np.zeros(n, dtype=bool)
        bad[list(errors.by_row)] = True
        good = np.flatnonzero(~bad).astype(np.int64)
        out["timestamp"] = out["timestamp"].cast(TRANSACTION_SCHEMA.field("timestamp").type)
        arrays = [out[f.name] for f in TRANSACTION_SCHEMA]
        data = pa.RecordBatch.from_arrays(arrays, schema=TRANSACTION_SCHEMA)
        if bad.any():
            data = data.take(pa.array(good))
        batch = TransactionBatch(data)
        ids = out["transaction_id"]
        row_errors = [
            RowError(row, ids[row].as_py() if ids[row].is_valid else None, tuple(errors.by_row[row]))
            for row in sorted(errors.by_row)
        ]
        return ValidationResult(batch=batch, rows=good, errors=row_errors)

    def _resolve_places(self, out: dict[str, pa.Array], no_coordinates: Bool) -> None:
        """Fill lat / lon (and a missing country) from the place name, once per distinct name."""
        ask = pa.array(no_coordinates & _valid(out["location"]))
        names = pc.if_else(ask, out["location"], pa.scalar(None, pa.string()))
        distinct = pc.unique(names).drop_null()
        if len(distinct) == 0:
            return
        lat, lon, countries = self.reference.places.resolve(distinct.to_pylist())
        position = pc.index_in(names, value_set=distinct)
        out["lat"] = pc.coalesce(out["lat"], pa.array(lat, pa.float64(), from_pandas=True).take(position))
        out["lon"] = pc.coalesce(out["lon"], pa.array(lon, pa.float64(), from_pandas=True).take(position))
        out["country"] = pc.coalesce(out["country"], pa.array(countries, pa.string()).take(position))

    def labels(
        self, records: Sequence[Any], *, received_at_ms: int
    ) -> tuple[list[dict[str, Any]], list[RowError]]:
        """Validate label records ``{transaction_id, is_fraud, label_time?}``.

        Returns plain rows ``{transaction_id, is_fraud, label_time (ms), index}`` rather than a
        `LabelBatch`: a label batch needs the labelled transaction's time and entity keys, which only
        the runtime's store knows. The runtime enriches the rows and calls `label_batch`.

        >>> v = Validator(ReferenceData(frozenset(), frozenset(), DictPlaceLookup({})), b"k")
        >>> good, bad = v.labels([{"transactionId": "t1", "is_fraud": True}, {"is_fraud": "yes"}],
        ...                      received_at_ms=5)
        >>> good
        [{'transaction_id': 't1', 'is_fraud': True, 'label_time': 5, 'index': 0}]
        >>> [e.field for e in bad[0].errors]
        ['transaction_id', 'is_fraud']
        """
        errors = _Errors()
        mappings = [r if isinstance(r, Mapping) else {} for r in records]
        for row, record in enumerate(records):
            if not isinstance(record, Mapping):
                errors.add(row, FieldError("body", f"is a {type(record).__name__}", "a JSON object", None))
        id_sources = ["transaction_id", *(k for k, v in ALIASES.items() if v == "transaction_id")]
        ids_raw = _raw_values(_coalesce_values(mappings, id_sources))
        ids = _identifier("transaction_id", ids_raw, errors, True).to_pylist()
        times_raw = _raw_values(_coalesce_values(mappings, ["label_time", "labelTime"]))
        times = _timestamps(times_raw, errors, received_at_ms, "label_time").to_pylist()
        flags = _coalesce_values(mappings, ["is_fraud", "isFraud"])
        for row, flag in enumerate(flags):
            if not isinstance(flag, bool):
                errors.add(
                    row,
                    FieldError("is_fraud", "is required and must be true or false", "true or false", flag),
                )
        good = [
            {"transaction_id": ids[row], "is_fraud": flags[row], "label_time": times[row], "index": row}
            for row in range(len(mappings))
            if row not in errors.by_row
        ]
        bad = [RowError(r, ids[r], tuple(e)) for r, e in sorted(errors.by_row.items())]
        return good, bad


def label_batch(rows: Sequence[Mapping[str, Any]]) -> LabelBatch:
    """Labels enriched with their transactions' time and entity keys, as a batch for the engine.

    >>> row = {"transaction_id": "t1", "is_fraud": True, "label_time": 9, "transaction_time": 1}
    >>> label_batch([row]).is_fraud
    array([ True])
    """
    columns: dict[str, Sequence[object]] = {f.name: [r.get(f.name) for r in rows] for f in LABEL_SCHEMA}
    return LabelBatch.from_pydict(columns)
