"""The transaction schema: aliases, types and bounds; JSON-like records in, a clean batch and errors out.

Validation works a column at a time: each field is pulled out of every record once, checked, and
converted; rows with a problem are reported with every field error they have, and the good rows go on
to be scored. Rules worth knowing:

- ``transaction_id`` and ``user_id`` are required, 1–128 characters; numbers are accepted as ids.
- ``amount`` is a finite number > 0 and at most ``max_amount``; numeric strings such as ``"50.00"``
  are accepted (some clients send money as text).
- ``timestamp`` is RFC 3339 **with a zone** (``2025-07-15T10:00:00Z``, ``...+05:30``), or a Unix
  time as a number: below 10^11 it is seconds, otherwise milliseconds. Missing: the receive time.
- ``currency`` is an ISO 4217 code (default USD), ``country`` ISO 3166-1 alpha-2, both upper-cased.
- ``card_number`` (12–19 digits, spaces or dashes allowed, Luhn-valid) becomes ``card_fingerprint``
  (keyed HMAC), ``card_bin`` and ``card_last4``; the number itself is never kept, logged, or echoed in
  an error (errors show it masked).
- A ``location`` name without ``lat``/``lon`` is looked up in a gazetteer; unknown places ("Online")
  simply have no coordinates. Unknown extra fields are kept, as JSON, in ``attributes``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa

from fraudstream.core.batch import LABEL_SCHEMA, TRANSACTION_SCHEMA, LabelBatch, TransactionBatch
from fraudstream.core.cards import card_fingerprint, luhn_valid, mask_card, normalise_card_number
from fraudstream.errors import FieldError

__all__ = [
    "ALIASES",
    "CHANNELS",
    "PlaceLookup",
    "ReferenceData",
    "RowError",
    "ValidationResult",
    "Validator",
]

CHANNELS: Final = frozenset({"pos", "online", "atm", "mobile", "moto", "other"})

_CANONICAL: Final = (
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
    **{_camel(name): name for name in _CANONICAL},
    "txn_id": "transaction_id",
    "tx_id": "transaction_id",
    "id": "transaction_id",
    "customer_id": "user_id",
    "customerId": "user_id",
    "account_id": "user_id",
    "accountId": "user_id",
    "user": "user_id",
    "time": "timestamp",
    "event_time": "timestamp",
    "created_at": "timestamp",
    "datetime": "timestamp",
    "amt": "amount",
    "merchant": "merchant_id",
    "mcc": "merchant_category",
    "merchant_category_code": "merchant_category",
    "category": "merchant_category",
    "terminal": "terminal_id",
    "device": "device_id",
    "ip_address": "ip",
    "ipAddress": "ip",
    "latitude": "lat",
    "longitude": "lon",
    "lng": "lon",
    "card": "card_number",
    "pan": "card_number",
    "city": "location",
}

_MAX_ID = 128
_CARD_LIKE = re.compile(r"^[\d\s-]{12,23}$")


class PlaceLookup(Protocol):
    """Place names → coordinates and country (NaN / None where the place is unknown)."""

    def resolve(
        self, names: Sequence[str]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[str | None]]: ...


@dataclass(frozen=True)
class ReferenceData:
    """Code lists and the gazetteer; built at the edge (see ``fraudstream.reference``)."""

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


class _Errors:
    def __init__(self) -> None:
        self.by_row: dict[int, list[FieldError]] = {}

    def add(self, row: int, error: FieldError) -> None:
        self.by_row.setdefault(row, []).append(error)


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _identifier(name: str, values: list[Any], errors: _Errors, required: bool) -> list[str | None]:
    out: list[str | None] = []
    for row, value in enumerate(values):
        if value is None:
            if required:
                errors.add(row, FieldError(name, "is required", f"a string of 1-{_MAX_ID} characters"))
            out.append(None)
            continue
        text = _text(value)
        if text is None:
            errors.add(
                row, FieldError(name, f"has type {type(value).__name__}", "a string or integer", value)
            )
        elif not text:
            errors.add(row, FieldError(name, "is empty", f"a string of 1-{_MAX_ID} characters", value))
        elif len(text) > _MAX_ID:
            errors.add(row, FieldError(name, f"is {len(text)} characters long", f"at most {_MAX_ID}", text))
        else:
            out.append(text)
            continue
        out.append(None)
    return out


def _amounts(values: list[Any], errors: _Errors, maximum: float) -> list[float]:
    allowed = f"a finite number > 0 and <= {maximum:,.0f}"
    out: list[float] = []
    for row, value in enumerate(values):
        number = math.nan
        if value is None:
            errors.add(row, FieldError("amount", "is required", allowed))
        elif isinstance(value, bool) or not isinstance(value, int | float | str):
            errors.add(row, FieldError("amount", f"has type {type(value).__name__}", allowed, value))
        else:
            try:
                number = float(value)
            except ValueError:
                errors.add(row, FieldError("amount", "is not a number", allowed, value))
            else:
                if not math.isfinite(number):
                    errors.add(row, FieldError("amount", "is not finite", allowed, str(value)))
                elif number <= 0:
                    errors.add(row, FieldError("amount", "must be greater than 0", allowed, value))
                elif number > maximum:
                    errors.add(row, FieldError("amount", "is larger than allowed", allowed, value))
        out.append(number)
    return out


def _timestamps(values: list[Any], errors: _Errors, received_at_ms: int) -> list[int]:
    allowed = "RFC 3339 with a zone, e.g. 2025-07-15T10:00:00Z, or Unix seconds/milliseconds"
    out: list[int] = []
    for row, value in enumerate(values):
        if value is None:
            out.append(received_at_ms)
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value) or value < 0:
                errors.add(row, FieldError("timestamp", "is not a valid Unix time", allowed, value))
                out.append(0)
            else:
                out.append(int(value * 1000) if value < 1e11 else int(value))
            continue
        if not isinstance(value, str):
            errors.add(row, FieldError("timestamp", f"has type {type(value).__name__}", allowed, value))
            out.append(0)
            continue
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            errors.add(row, FieldError("timestamp", "is not an RFC 3339 date-time", allowed, value))
            out.append(0)
            continue
        if parsed.tzinfo is None:
            errors.add(
                row,
                FieldError("timestamp", "has no time zone; add Z or an offset like +02:00", allowed, value),
            )
            out.append(0)
            continue
        out.append(int(parsed.timestamp() * 1000))
    return out


def _codes(
    name: str, values: list[Any], errors: _Errors, known: frozenset[str], allowed: str, default: str | None
) -> list[str | None]:
    out: list[str | None] = []
    for row, value in enumerate(values):
        if value is None:
            out.append(default)
            continue
        code = value.strip().upper() if isinstance(value, str) else None
        if code is None or code not in known:
            problem = "is not a known code" if isinstance(value, str) else f"has type {type(value).__name__}"
            errors.add(row, FieldError(name, problem, allowed, value))
        out.append(code)
    return out


def _channels(values: list[Any], errors: _Errors) -> list[str | None]:
    allowed = ", ".join(sorted(CHANNELS))
    out: list[str | None] = []
    for row, value in enumerate(values):
        channel = value.strip().lower() if isinstance(value, str) else None
        if value is not None and channel not in CHANNELS:
            errors.add(row, FieldError("channel", "is not a known channel", allowed, value))
        out.append(channel if value is not None else None)
    return out


def _coordinates(name: str, values: list[Any], errors: _Errors, limit: float) -> list[float]:
    allowed = f"a number from -{limit:g} to {limit:g}"
    out: list[float] = []
    for row, value in enumerate(values):
        if value is None:
            out.append(math.nan)
        elif isinstance(value, bool) or not isinstance(value, int | float) or not -limit <= value <= limit:
            errors.add(row, FieldError(name, "is out of range or not a number", allowed, value))
            out.append(math.nan)
        else:
            out.append(float(value))
    return out


def _ips(values: list[Any], errors: _Errors) -> list[str | None]:
    out: list[str | None] = []
    for row, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(str(ipaddress.ip_address(str(value).strip())))
        except ValueError:
            errors.add(
                row, FieldError("ip", "is not an IP address", "IPv4 or IPv6 text, e.g. 203.0.113.7", value)
            )
            out.append(None)
    return out


@dataclass
class _Cards:
    fingerprint: list[str | None] = field(default_factory=list)
    bin: list[str | None] = field(default_factory=list)
    last4: list[str | None] = field(default_factory=list)


def _cards(values: list[Any], errors: _Errors, key: bytes) -> _Cards:
    allowed = "12-19 digits (spaces or dashes allowed) passing the Luhn check"
    cards = _Cards()
    for row, value in enumerate(values):
        token = None
        if value is not None:
            digits = normalise_card_number(value) if isinstance(value, str) else None
            if isinstance(value, int) and not isinstance(value, bool):
                digits = normalise_card_number(str(value))
            if digits is None:
                shown = mask_card(str(value)) if isinstance(value, str | int) else type(value).__name__
                errors.add(row, FieldError("card_number", "is not a card number", allowed, shown))
            elif not luhn_valid(digits):
                errors.add(row, FieldError("card_number", "fails the Luhn check", allowed, mask_card(digits)))
            else:
                token = card_fingerprint(digits, key)
        cards.fingerprint.append(token.fingerprint if token else None)
        cards.bin.append(token.bin if token else None)
        cards.last4.append(token.last4 if token else None)
    return cards


def _safe_extra(value: Any) -> Any:
    """Extra fields are kept, but anything that looks like a card number is masked first."""
    if isinstance(value, str) and _CARD_LIKE.match(value):
        digits = normalise_card_number(value)
        if digits is not None and luhn_valid(digits):
            return mask_card(digits)
    if isinstance(value, int) and not isinstance(value, bool) and 12 <= len(str(abs(value))) <= 19:
        digits = str(abs(value))
        if luhn_valid(digits):
            return mask_card(digits)
    return value


def _attributes(records: Sequence[Mapping[str, Any]], known: set[str]) -> list[str | None]:
    out: list[str | None] = []
    for record in records:
        extra = {k: _safe_extra(v) for k, v in record.items() if k not in known}
        out.append(orjson.dumps(extra, default=str).decode() if extra else None)
    return out


def _gather(records: Sequence[Mapping[str, Any]], name: str, sources: list[str]) -> list[Any]:
    if len(sources) == 1:
        source = sources[0]
        return [r.get(source) for r in records]
    out = []
    for record in records:
        value = None
        for source in sources:
            value = record.get(source)
            if value is not None:
                break
        out.append(value)
    return out


@dataclass(frozen=True)
class Validator:
    """Checks and converts input at the edge; the only place a card number is ever seen.

    >>> from fraudstream.core.schema import ReferenceData
    >>> class NoPlaces:
    ...     def resolve(self, names):
    ...         return np.full(len(names), np.nan), np.full(len(names), np.nan), [None] * len(names)
    >>> v = Validator(ReferenceData(frozenset({"USD"}), frozenset({"US"}), NoPlaces()), card_key=b"k")
    >>> result = v.records([{"transactionId": "t1", "userId": 7, "amount": "12.50"},
    ...                     {"transaction_id": "t2", "user_id": "u", "amount": -1}], received_at_ms=0)
    >>> len(result.batch), result.errors[0].errors[0].message
    (1, 'amount: must be greater than 0 (got -1; allowed: a finite number > 0 and <= 1,000,000,000)')
    """

    reference: ReferenceData
    card_key: bytes
    max_amount: float = 1e9

    def records(self, records: Sequence[Any], *, received_at_ms: int) -> ValidationResult:
        """Validate JSON-like records (dicts); anything that is not an object is a row error."""
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
        sources: dict[str, list[str]] = {name: [name] for name in _CANONICAL}
        for key in keys:
            canonical = ALIASES.get(key)
            if canonical is not None and key != canonical:
                sources[canonical].append(key)
        known = {s for names in sources.values() for s in names}
        columns = {name: _gather(mappings, name, sources[name]) for name in _CANONICAL}
        return self._finish(mappings, columns, errors, received_at_ms, _attributes(mappings, known))

    def table(
        self, table: pa.Table, *, received_at_ms: int, mapping: Mapping[str, str] | None = None
    ) -> ValidationResult:
        """Validate a columnar table (CSV/Parquet); ``mapping`` renames {canonical: source column}."""
        renames = dict(mapping or {})
        for name in table.column_names:
            canonical = ALIASES.get(name)
            if canonical is not None and canonical not in renames and canonical not in table.column_names:
                renames[canonical] = name
        columns: dict[str, list[Any]] = {}
        for name in _CANONICAL:
            source = renames.get(name, name)
            if source in table.column_names:
                column = table.column(source)
                if pa.types.is_timestamp(column.type):
                    column = column.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
                columns[name] = column.to_pylist()
            else:
                columns[name] = [None] * table.num_rows
        used = {renames.get(n, n) for n in _CANONICAL}
        extras = [n for n in table.column_names if n not in used]
        attributes: list[str | None] = [None] * table.num_rows
        if extras:
            attributes = _attributes(table.select(extras).to_pylist(), set())
        return self._finish([{}] * table.num_rows, columns, _Errors(), received_at_ms, attributes)

    def _finish(
        self,
        records: Sequence[Mapping[str, Any]],
        columns: dict[str, list[Any]],
        errors: _Errors,
        received_at_ms: int,
        attributes: list[str | None],
    ) -> ValidationResult:
        ref = self.reference
        n = len(records)
        out: dict[str, Any] = {
            "transaction_id": _identifier("transaction_id", columns["transaction_id"], errors, True),
            "user_id": _identifier("user_id", columns["user_id"], errors, True),
            "amount": _amounts(columns["amount"], errors, self.max_amount),
            "timestamp": _timestamps(columns["timestamp"], errors, received_at_ms),
            "currency": _codes(
                "currency", columns["currency"], errors, ref.currencies, "an ISO 4217 code", "USD"
            ),
            "country": _codes(
                "country", columns["country"], errors, ref.countries, "ISO 3166-1 alpha-2", None
            ),
            "channel": _channels(columns["channel"], errors),
            "lat": _coordinates("lat", columns["lat"], errors, 90.0),
            "lon": _coordinates("lon", columns["lon"], errors, 180.0),
            "ip": _ips(columns["ip"], errors),
            "attributes": attributes,
        }
        for name in ("merchant_id", "merchant_category", "terminal_id", "device_id", "location"):
            out[name] = _identifier(name, columns[name], errors, False)
        self._pair_coordinates(out, errors)
        cards = _cards(columns["card_number"], errors, self.card_key)
        given = _identifier("card_fingerprint", columns["card_fingerprint"], errors, False)
        out["card_fingerprint"] = [c if c is not None else g for c, g in zip(cards.fingerprint, given)]
        out["card_bin"] = [c if c is not None else _text(g) for c, g in zip(cards.bin, columns["card_bin"])]
        out["card_last4"] = [
            c if c is not None else _text(g) for c, g in zip(cards.last4, columns["card_last4"])
        ]
        self._resolve_places(out)
        bad = sorted(errors.by_row)
        good = np.setdiff1d(np.arange(n, dtype=np.int64), np.array(bad, dtype=np.int64))
        arrays = [
            # from_pandas: a NaN coordinate is stored as null (no location), not as a NaN value.
            pa.array(out[f.name], type=f.type if f.name != "timestamp" else pa.int64(), from_pandas=True)
            for f in TRANSACTION_SCHEMA
        ]
        arrays[1] = arrays[1].cast(TRANSACTION_SCHEMA.field("timestamp").type)
        data = pa.RecordBatch.from_arrays(arrays, schema=TRANSACTION_SCHEMA.remove_metadata())
        batch = TransactionBatch(data.take(pa.array(good)) if len(bad) else data)
        row_errors = [
            RowError(
                row,
                out["transaction_id"][row] or _text(columns["transaction_id"][row]),
                tuple(errors.by_row[row]),
            )
            for row in bad
        ]
        return ValidationResult(batch=batch, rows=good, errors=row_errors)

    @staticmethod
    def _pair_coordinates(out: dict[str, Any], errors: _Errors) -> None:
        for row, (lat, lon) in enumerate(zip(out["lat"], out["lon"])):
            if math.isnan(lat) != math.isnan(lon):
                errors.add(row, FieldError("lat/lon", "only one of the pair is given", "both or neither"))

    def _resolve_places(self, out: dict[str, Any]) -> None:
        lat = np.asarray(out["lat"], dtype=np.float64)
        lookup = [i for i, place in enumerate(out["location"]) if place is not None and math.isnan(lat[i])]
        if not lookup:
            return
        names = sorted({out["location"][i] for i in lookup})
        found_lat, found_lon, found_country = self.reference.places.resolve(names)
        where = {name: k for k, name in enumerate(names)}
        for i in lookup:
            k = where[out["location"][i]]
            out["lat"][i] = float(found_lat[k])
            out["lon"][i] = float(found_lon[k])
            if out["country"][i] is None:
                out["country"][i] = found_country[k]

    def labels(
        self, records: Sequence[Any], *, received_at_ms: int
    ) -> tuple[list[dict[str, Any]], list[RowError]]:
        """Validate label records {transaction_id, is_fraud, label_time?}; the edge enriches them."""
        errors = _Errors()
        good: list[dict[str, Any]] = []
        mappings = [r if isinstance(r, Mapping) else {} for r in records]
        given_ids = _gather(mappings, "transaction_id", ["transaction_id", "transactionId"])
        ids = _identifier("transaction_id", given_ids, errors, True)
        times = _timestamps(
            _gather(mappings, "label_time", ["label_time", "labelTime"]), errors, received_at_ms
        )
        for row, record in enumerate(mappings):
            flag = record.get("is_fraud", record.get("isFraud"))
            if not isinstance(flag, bool):
                errors.add(
                    row,
                    FieldError("is_fraud", "is required and must be true or false", "true or false", flag),
                )
            if row not in errors.by_row:
                good.append(
                    {"transaction_id": ids[row], "is_fraud": flag, "label_time": times[row], "index": row}
                )
        bad = [RowError(r, ids[r], tuple(e)) for r, e in sorted(errors.by_row.items())]
        return good, bad


def label_batch(rows: Sequence[Mapping[str, Any]]) -> LabelBatch:
    """Labels enriched with their transactions' time and entity keys, as a batch for the engine."""
    columns: dict[str, Sequence[object]] = {f.name: [r.get(f.name) for r in rows] for f in LABEL_SCHEMA}
    return LabelBatch.from_pydict(columns)
