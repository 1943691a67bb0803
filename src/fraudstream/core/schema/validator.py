"""The Validator: checks and converts records or tables at the edge into a clean batch and row errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.batch import TRANSACTION_SCHEMA, TransactionBatch
from fraudstream.core.cards import CardTokenizer
from fraudstream.core.geo import PlaceLookup
from fraudstream.core.schema.amounts import _amounts
from fraudstream.core.schema.card_numbers import _cards
from fraudstream.core.schema.codes import _codes
from fraudstream.core.schema.coordinates import _coordinate
from fraudstream.core.schema.extras import _attributes, _check_extras
from fraudstream.core.schema.fields import CHANNELS, FIELDS
from fraudstream.core.schema.identifiers import _IDENTIFIERS, _identifier, _identifiers
from fraudstream.core.schema.ips import _ips
from fraudstream.core.schema.labels import label_rows
from fraudstream.core.schema.raw import Bool, _absent, _Raw, _raw_column, _raw_values, _valid
from fraudstream.core.schema.results import RowError, ValidationResult, _Errors
from fraudstream.core.schema.sources import _coalesce_values, _record_sources, _table_sources
from fraudstream.core.schema.times import _timestamps, time_zone
from fraudstream.errors import FieldError


@dataclass(frozen=True)
class ReferenceData:
    """Code lists and the gazetteer; built at the edge (see `fraudstream.reference.load_reference`)."""

    currencies: frozenset[str]
    countries: frozenset[str]
    places: PlaceLookup


@dataclass(frozen=True)
class Validator:
    """Checks and converts input at the edge; the only place a card number is ever seen.

    >>> from fraudstream.core.geo import DictPlaceLookup
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

        >>> from fraudstream.core.geo import DictPlaceLookup
        >>> v = Validator(ReferenceData(frozenset(), frozenset(), DictPlaceLookup({})), b"k")
        >>> good, bad = v.labels([{"transactionId": "t1", "is_fraud": True}, {"is_fraud": "yes"}],
        ...                      received_at_ms=5)
        >>> good
        [{'transaction_id': 't1', 'is_fraud': True, 'label_time': 5, 'index': 0}]
        >>> [e.field for e in bad[0].errors]
        ['transaction_id', 'is_fraud']
        """
        return label_rows(records, received_at_ms=received_at_ms)
