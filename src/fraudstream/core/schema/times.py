"""Event and label times: RFC 3339 with a zone, Unix seconds or milliseconds, naive times in a zone."""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.schema.raw import Bool, _mask, _nulls, _Raw, _raw_column, _raw_values, _trimmed, _valid
from fraudstream.core.schema.results import _Errors, _type_name
from fraudstream.core.schema.sources import _coalesce_values, _record_sources, _table_sources
from fraudstream.errors import ConfigError

_TS_ALLOWED: Final = "RFC 3339 with a zone, e.g. 2025-07-15T10:00:00Z, or Unix seconds/milliseconds"
_UNIX_MS_FROM: Final = 1e11
#: 9999-12-31T23:59:59.999Z, the last instant RFC 3339 can write; later numbers would overflow int64.
_UNIX_MS_UNTIL: Final = 253_402_300_799_999.0
_ZONED_RE: Final = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"
_NAIVE_RE: Final = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"


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
