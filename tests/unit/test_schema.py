"""Validation of JSON-like records: aliases, bounds, card handling, and errors that name the field."""

from __future__ import annotations

import math
import re
from datetime import datetime

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from factories import transaction
from fraudstream.core.geo import DictPlaceLookup
from fraudstream.core.schema import (
    ALIASES,
    CHANNELS,
    FIELDS,
    MAX_EXTRA_BYTES,
    MAX_EXTRA_DEPTH,
    NaiveTimes,
    ReferenceData,
    Validator,
    naive_times,
    time_zone,
)
from fraudstream.core.schema.card_numbers import _card_digits
from fraudstream.core.schema.raw import _CONTROL_BYTES, _has_byte
from fraudstream.errors import ConfigError, FieldError
from fraudstream.reference import load_reference

PAN = "4242-4242-4242-4242"
DIGITS = "4242424242424242"


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(load_reference(), card_key=b"test-key")


def only_errors(validator: Validator, record: object) -> dict[str, FieldError]:
    result = validator.records([record], received_at_ms=1_000)
    assert len(result.batch) == 0, "the row should have been refused"
    return {e.field: e for e in result.errors[0].errors}


@pytest.mark.parametrize(
    ("override", "field", "problem"),
    [
        ({"transaction_id": None}, "transaction_id", "is required"),
        ({"user_id": None}, "user_id", "is required"),
        ({"amount": None}, "amount", "is required"),
        ({"user_id": ""}, "user_id", "is empty"),
        ({"transaction_id": "   "}, "transaction_id", "is empty"),
        ({"user_id": "x" * 129}, "user_id", "129 characters"),
        ({"user_id": ["u"]}, "user_id", "has type list"),
        ({"user_id": 1.5}, "user_id", "has type float"),
        ({"merchant_id": {"id": 1}}, "merchant_id", "has type dict"),
        ({"amount": -5}, "amount", "must be >= 0"),
        ({"amount": -0.01}, "amount", "must be >= 0"),
        ({"amount": "-1.00"}, "amount", "must be >= 0"),
        ({"amount": "NaN"}, "amount", "not finite"),
        ({"amount": float("nan")}, "amount", "not finite"),
        ({"amount": float("inf")}, "amount", "not finite"),
        ({"amount": 1e12}, "amount", "larger than allowed"),
        ({"amount": "fifty"}, "amount", "not a number"),
        ({"amount": True}, "amount", "has type bool"),
        ({"currency": "XXY"}, "currency", "not a known code"),
        ({"currency": 840}, "currency", "has type int"),
        ({"timestamp": "2025-07-15T10:00:00"}, "timestamp", "no time zone"),
        ({"timestamp": "2025-07-15"}, "timestamp", "no time zone"),
        ({"timestamp": "yesterday"}, "timestamp", "not an RFC 3339"),
        ({"timestamp": "2025-02-30T10:00:00Z"}, "timestamp", "not an RFC 3339"),
        ({"timestamp": -1}, "timestamp", "not a valid Unix time"),
        ({"timestamp": [2025]}, "timestamp", "has type list"),
        ({"lat": 95.0, "lon": 10.0}, "lat", "out of range"),
        ({"lat": 10.0, "lon": -180.5}, "lon", "out of range"),
        ({"lat": 45.0}, "lon", "missing while lat is given"),
        ({"lon": 45.0}, "lat", "missing while lon is given"),
        ({"country": "USA"}, "country", "not a known code"),
        ({"channel": "carrier-pigeon"}, "channel", "not a known channel"),
        ({"ip": "999.1.1.1"}, "ip", "not an IP address"),
        ({"ip": "::g"}, "ip", "not an IP address"),
        ({"card_number": "4242424242424241"}, "card_number", "Luhn"),
        ({"card_number": "4242"}, "card_number", "not a card number"),
        ({"card_number": 4.2}, "card_number", "has type float"),
    ],
)
def test_each_bad_value_is_reported_with_its_field_problem_and_what_is_allowed(
    validator: Validator, override: dict[str, object], field: str, problem: str
) -> None:
    errors = only_errors(validator, transaction(**override))
    assert field in errors, errors
    assert problem in errors[field].problem
    assert errors[field].allowed, "every error says what is allowed"
    assert errors[field].message.startswith(f"{field}: ")


def test_a_naive_timestamp_error_tells_how_to_fix_it(validator: Validator) -> None:
    error = only_errors(validator, transaction(timestamp="2025-07-15T10:00:00"))["timestamp"]
    assert "add Z" in error.problem


def test_a_row_reports_all_its_problems_not_only_the_first(validator: Validator) -> None:
    errors = only_errors(validator, transaction(user_id="", amount=-1, currency="EURO", ip="x"))
    assert set(errors) == {"user_id", "amount", "currency", "ip"}


def test_a_mixed_batch_keeps_the_good_rows_in_order_and_maps_them_back(validator: Validator) -> None:
    records = [
        transaction(transaction_id="a"),
        transaction(transaction_id="b", amount=-1),
        "not an object",
        transaction(transaction_id="d"),
        transaction(transaction_id="e", currency="nope"),
        transaction(transaction_id="f"),
    ]
    result = validator.records(records, received_at_ms=0)
    assert result.batch.transaction_id.to_pylist() == ["a", "d", "f"]
    assert result.rows.tolist() == [0, 3, 5]
    assert [e.index for e in result.errors] == [1, 2, 4]
    assert [e.transaction_id for e in result.errors] == ["b", None, "e"]
    assert result.errors[1].errors[0].field == "body"
    assert result.errors[0].as_dict()["errors"] == [
        {
            "field": "amount",
            "problem": "must be >= 0",
            "allowed": result.errors[0].errors[0].allowed,
            "value": -1,
        }
    ]


def test_aliases_of_the_seed_systems_map_to_canonical_fields(validator: Validator) -> None:
    record = {
        "transactionId": "t9",
        "customerId": 1087,
        "amount": "1500",
        "currency": "usd",
        "created_at": "2025-07-15T10:00:00Z",
        "merchantId": "m1",
        "mcc": 5411,
        "terminalId": "T7",
        "deviceId": "d1",
        "ip_address": "203.0.113.7",
        "latitude": 40.7,
        "longitude": -74.0,
        "cardNumber": PAN,
        "channel": "ONLINE",
        "country": "us",
    }
    result = validator.records([record], received_at_ms=42_000)
    assert not result.errors
    row = result.batch.data.to_pylist()[0]
    assert row["transaction_id"] == "t9"
    assert row["user_id"] == "1087"
    assert row["amount"] == 1500.0
    assert row["currency"] == "USD"
    assert row["merchant_id"] == "m1"
    assert row["merchant_category"] == "5411"
    assert row["terminal_id"] == "T7"
    assert row["device_id"] == "d1"
    assert row["ip"] == "203.0.113.7"
    assert (row["lat"], row["lon"]) == (40.7, -74.0)
    assert row["channel"] == "online"
    assert row["country"] == "US"
    assert row["card_last4"] == "4242"
    assert row["attributes"] is None
    assert result.batch.timestamp_ms.tolist() == [1752573600000]


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_every_alias_lands_in_its_field(validator: Validator, alias: str) -> None:
    field = ALIASES[alias]
    values = {
        "timestamp": "2025-07-15T10:00:00Z",
        "amount": 12.0,
        "currency": "EUR",
        "channel": "pos",
        "lat": 1.0,
        "lon": 1.0,
        "country": "FR",
        "ip": "10.0.0.1",
        "card_number": DIGITS,
    }
    record = {k: v for k, v in transaction().items() if k != field}
    record[alias] = values.get(field, "x1")
    if field in ("lat", "lon"):
        record["lon" if field == "lat" else "lat"] = 1.0
    result = validator.records([record], received_at_ms=0)
    assert not result.errors, result.errors
    assert result.batch.data.column("attributes").to_pylist() == [None]


def test_ids_and_codes_are_trimmed_and_normalised(validator: Validator) -> None:
    result = validator.records(
        [
            transaction(
                user_id="  u1 ", currency=" eur ", channel=" Mobile", country="fr", ip="2001:DB8:0:0::1"
            )
        ],
        received_at_ms=0,
    )
    row = result.batch.data.to_pylist()[0]
    assert (row["user_id"], row["currency"], row["channel"], row["country"]) == ("u1", "EUR", "mobile", "FR")
    assert row["ip"] == "2001:db8::1"
    assert {"pos", "online", "atm", "mobile", "moto", "other"} == CHANNELS


def test_currency_defaults_to_usd_and_a_missing_timestamp_is_the_receive_time(validator: Validator) -> None:
    result = validator.records([transaction()], received_at_ms=1_752_573_600_123)
    assert result.batch.data.column("currency").to_pylist() == ["USD"]
    assert result.batch.timestamp_ms.tolist() == [1_752_573_600_123]


def test_timestamps_accept_zones_and_unix_seconds_or_milliseconds(validator: Validator) -> None:
    result = validator.records(
        [
            transaction(transaction_id="z", timestamp="2025-07-15T10:00:00Z"),
            transaction(transaction_id="o", timestamp="2025-07-15T15:30:00+05:30"),
            transaction(transaction_id="lower", timestamp="2025-07-15t10:00:00z"),
            transaction(transaction_id="space", timestamp="2025-07-15 06:00:00-04:00"),
            transaction(transaction_id="s", timestamp=1752573600),
            transaction(transaction_id="m", timestamp=1752573600000),
            transaction(transaction_id="fs", timestamp=1752573600.0),
        ],
        received_at_ms=0,
    )
    assert not result.errors
    assert set(result.batch.timestamp_ms.tolist()) == {1752573600000}
    fraction = validator.records([transaction(timestamp="2025-07-15T10:00:00.123456789Z")], received_at_ms=0)
    assert fraction.batch.timestamp_ms.tolist() == [1752573600123]


@pytest.mark.parametrize("zero", [0, 0.0, "0.00", " 0 ", -0.0])
def test_a_zero_amount_is_a_card_verification_and_is_accepted(validator: Validator, zero: object) -> None:
    result = validator.records([transaction(amount=zero)], received_at_ms=0)
    assert not result.errors
    amount = result.batch.amount
    assert amount.tolist() == [0.0]
    assert not np.signbit(amount).any(), "-0.0 is kept as 0.0, not shown as -0.0"


def test_a_negative_amount_says_what_is_allowed(validator: Validator) -> None:
    error = only_errors(validator, transaction(amount=-0.01))["amount"]
    assert error.problem == "must be >= 0"
    assert error.allowed.startswith("a finite number >= 0 and <= ")


def ms(text: str) -> int:
    """An RFC 3339 time with a zone as Unix milliseconds."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(
    ("zone", "naive", "instant"),
    [
        ("UTC", "2018-04-01 00:00:31", "2018-04-01T00:00:31+00:00"),
        ("UTC", "2018-04-01T00:00:31.250", "2018-04-01T00:00:31.250+00:00"),
        ("UTC", "2018-04-01", "2018-04-01T00:00:00+00:00"),
        ("Europe/Paris", "2018-01-15 12:00:00", "2018-01-15T11:00:00+00:00"),  # winter: +01:00
        ("Europe/Paris", "2018-07-15 12:00:00", "2018-07-15T10:00:00+00:00"),  # summer: +02:00
        ("Europe/Paris", "2018-03-25 01:59:59", "2018-03-25T00:59:59+00:00"),  # last second of winter time
        ("Europe/Paris", "2018-03-25 03:00:00", "2018-03-25T01:00:00+00:00"),  # first of summer time
        ("Europe/Paris", "2018-03-25 02:30:00", "2018-03-25T01:00:00+00:00"),  # skipped: end of the gap
        ("Europe/Paris", "2018-10-28 02:30:00", "2018-10-28T00:30:00+00:00"),  # twice: the first
        ("Europe/Paris", "2018-10-28 03:30:00", "2018-10-28T02:30:00+00:00"),  # winter time again
        ("America/New_York", "2018-07-04 09:00:00", "2018-07-04T13:00:00+00:00"),
    ],
)
def test_naive_times_are_read_in_the_zone_the_caller_names(
    validator: Validator, zone: str, naive: str, instant: str
) -> None:
    result = validator.records([transaction(timestamp=naive)], received_at_ms=0, naive_timezone=zone)
    assert not result.errors
    assert result.batch.timestamp_ms.tolist() == [ms(instant)]


def test_a_naive_timezone_leaves_zoned_and_unix_times_as_they_are(validator: Validator) -> None:
    records = [
        transaction(transaction_id="z", timestamp="2018-07-15T12:00:00Z"),
        transaction(transaction_id="o", timestamp="2018-07-15T12:00:00+05:30"),
        transaction(transaction_id="u", timestamp=1531656000),
        transaction(transaction_id="n", timestamp="2018-07-15 12:00:00"),
        transaction(transaction_id="bad", timestamp="2018-02-30 12:00:00"),
    ]
    result = validator.records(records, received_at_ms=0, naive_timezone="Asia/Kolkata")
    assert result.batch.timestamp_ms.tolist() == [
        ms("2018-07-15T12:00:00+00:00"),
        ms("2018-07-15T12:00:00+05:30"),
        1531656000000,
        ms("2018-07-15T12:00:00+05:30"),
    ]
    [error] = result.errors
    assert (error.transaction_id, error.errors[0].problem) == ("bad", "is not an RFC 3339 date-time")


def test_without_a_naive_timezone_naive_times_are_still_refused_row_by_row(validator: Validator) -> None:
    """The HTTP API and Kafka pass no zone: a live payment must carry its own."""
    result = validator.records([transaction(timestamp="2018-04-01 00:00:31")] * 2, received_at_ms=0)
    assert len(result.batch) == 0
    assert [e.errors[0].problem for e in result.errors] == [
        "has no time zone; add Z (UTC) or an offset such as +02:00"
    ] * 2


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "europe/paris/", "../etc/passwd", "+02:00"])
def test_an_unknown_time_zone_is_a_config_error_naming_it(validator: Validator, zone: str) -> None:
    with pytest.raises(ConfigError, match="is not known; give an IANA name such as UTC or Europe/Paris"):
        validator.records([transaction()], received_at_ms=0, naive_timezone=zone)
    with pytest.raises(ConfigError, match=re.escape(repr(zone))):
        time_zone(zone)


def test_naive_times_finds_the_first_naive_time_in_records(validator: Validator) -> None:
    records = [
        transaction(time="2018-04-01T00:00:00Z"),
        "not an object",
        transaction(time=" 2018-04-01 00:00:31 "),
    ]
    assert naive_times(records) == NaiveTimes("field time", " 2018-04-01 00:00:31 ", 1)
    assert naive_times([transaction(timestamp="2018-04-01T00:00:31+02:00"), transaction(timestamp=1)]) is None
    assert naive_times([transaction()]) is None


def test_unix_time_below_ten_to_the_eleven_is_seconds(validator: Validator) -> None:
    result = validator.records(
        [
            transaction(transaction_id="s", timestamp=99_999_999_999),
            transaction(transaction_id="m", timestamp=100_000_000_000),
        ],
        received_at_ms=0,
    )
    assert result.batch.timestamp_ms.tolist() == [99_999_999_999_000, 100_000_000_000]


def test_numeric_text_amounts_are_accepted_and_the_maximum_is_configurable() -> None:
    small = Validator(
        ReferenceData(frozenset({"USD"}), frozenset(), DictPlaceLookup({})), b"k", max_amount=100
    )
    result = small.records(
        [transaction(amount=" 50.00 "), transaction(amount="1e2"), transaction(amount=100.5)],
        received_at_ms=0,
    )
    assert result.batch.amount.tolist() == [50.0, 100.0]
    assert result.errors[0].errors[0].problem == "is larger than allowed"


def test_places_resolve_to_coordinates_and_fill_a_missing_country(validator: Validator) -> None:
    result = validator.records(
        [
            transaction(transaction_id="a", location="Hyderabad"),
            transaction(transaction_id="b", location="New York", country="CA"),
            transaction(transaction_id="c", location="London", lat=1.0, lon=2.0),
        ],
        received_at_ms=0,
    )
    batch = result.batch
    assert batch.lat[0] == pytest.approx(17.38, abs=0.01)
    assert batch.lat[1] == pytest.approx(40.71, abs=0.01)
    assert batch.data.column("country").to_pylist() == ["IN", "CA", None]
    assert (batch.lat[2], batch.lon[2]) == (1.0, 2.0), "given coordinates win over the place name"


@pytest.mark.parametrize("place", ["Online", "web", "Nowhereville-on-Sea"])
def test_an_unknown_place_has_no_location_and_is_not_an_error(validator: Validator, place: str) -> None:
    result = validator.records([transaction(location=place)], received_at_ms=0)
    assert not result.errors
    assert math.isnan(result.batch.lat[0])
    assert result.batch.data.column("lat").null_count == 1
    assert result.batch.data.column("location").to_pylist() == [place]


def test_extra_fields_are_kept_as_compact_json_attributes(validator: Validator) -> None:
    result = validator.records(
        [transaction(risk_segment="gold", tags=["a", 1], nested={"k": 2}), transaction(transaction_id="t2")],
        received_at_ms=0,
    )
    attributes = result.batch.data.column("attributes").to_pylist()
    assert attributes[1] is None
    assert orjson.loads(attributes[0]) == {"risk_segment": "gold", "tags": ["a", 1], "nested": {"k": 2}}
    assert " " not in attributes[0]


def _arrow_bytes(result_batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, result_batch.schema) as writer:
        writer.write_batch(result_batch)
    return bytes(sink.getvalue().to_pybytes())


def test_the_card_number_appears_nowhere_in_the_batch_attributes_or_errors(validator: Validator) -> None:
    result = validator.records(
        [
            transaction(transaction_id="a", card_number=PAN, note=PAN, nested={"pan": int(DIGITS)}),
            transaction(transaction_id="b", card_number="4242 4242 4242 4241"),
            transaction(transaction_id="c", card_number=PAN, amount=-1),
        ],
        received_at_ms=0,
    )
    raw = _arrow_bytes(result.batch.data)
    for form in (DIGITS, PAN, "4242 4242 4242 4241", "4242424242424241"):
        assert form.encode() not in raw
        assert form not in repr(result.errors)
        assert form not in str([e.as_dict() for e in result.errors])
        assert form not in " ".join(f.message for e in result.errors for f in e.errors)
    assert result.batch.data.column("card_last4").to_pylist() == ["4242"]
    assert result.batch.data.column("card_bin").to_pylist() == ["424242"]
    assert "424242******4242" in result.batch.data.column("attributes")[0].as_py()
    luhn = result.errors[0].errors[0]
    assert (luhn.field, luhn.value) == ("card_number", "424242******4241")


def test_a_card_number_becomes_a_keyed_fingerprint(validator: Validator) -> None:
    other_key = Validator(validator.reference, card_key=b"another-key")
    rows = [transaction(card_number=PAN), transaction(transaction_id="t2", card_number=DIGITS)]
    mine = validator.records(rows, received_at_ms=0).batch.data.column("card_fingerprint").to_pylist()
    theirs = other_key.records(rows, received_at_ms=0).batch.data.column("card_fingerprint").to_pylist()
    assert mine[0] == mine[1], "the same card written two ways is one card"
    assert mine[0] != theirs[0]
    assert len(mine[0]) == 32


def test_already_tokenised_cards_pass_through(validator: Validator) -> None:
    row = transaction(card_fingerprint="f" * 32, card_bin="424242", card_last4="4242")
    batch = validator.records([row], received_at_ms=0).batch
    assert batch.data.column("card_fingerprint").to_pylist() == ["f" * 32]


def test_the_batch_has_the_canonical_schema_even_when_empty(validator: Validator) -> None:
    from fraudstream.core.batch import TRANSACTION_SCHEMA

    for records in ([], [transaction(amount=-1)], [transaction()]):
        result = validator.records(records, received_at_ms=0)
        assert result.batch.data.schema.equals(TRANSACTION_SCHEMA)
        assert result.rows.dtype == np.int64
    assert FIELDS[0] == "transaction_id"


def test_labels_are_checked_and_returned_as_rows_for_the_runtime_to_enrich(validator: Validator) -> None:
    rows, bad = validator.labels(
        [
            {"transaction_id": "t1", "is_fraud": True, "label_time": "2025-07-15T10:00:00Z"},
            {"transactionId": 12, "isFraud": False},
            {"transaction_id": "t3", "is_fraud": "yes"},
            {"transaction_id": "t4", "is_fraud": True, "label_time": "tomorrow"},
        ],
        received_at_ms=7,
    )
    assert rows == [
        {"transaction_id": "t1", "is_fraud": True, "label_time": 1752573600000, "index": 0},
        {"transaction_id": "12", "is_fraud": False, "label_time": 7, "index": 1},
    ]
    assert [(e.index, e.errors[0].field) for e in bad] == [(2, "is_fraud"), (3, "label_time")]


@pytest.mark.parametrize("name", ["amount", "lat", "timestamp", "user_id", "transaction_id"])
def test_integers_too_large_for_a_double_are_field_errors(validator: Validator, name: str) -> None:
    result = validator.records([transaction(**{name: -5354537217707927552})], received_at_ms=0)
    assert len(result.batch) + len(result.errors) == 1


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=30),
    cut=st.integers(0, 5),
)
def test_control_characters_are_found_as_the_regular_expression_finds_them(
    values: list[str | None], cut: int
) -> None:
    # Sliced arrays too: their bytes start inside a larger buffer.
    text = pa.array(values, pa.string()).slice(min(cut, len(values) - 1))
    expected = pc.match_substring_regex(text, r"[\x00-\x1f\x7f]").fill_null(False).to_pylist()
    assert _has_byte(text, _CONTROL_BYTES).tolist() == expected
    assert _has_byte(text.cast(pa.large_string()), _CONTROL_BYTES).tolist() == expected


#: Card-number-like texts: digit groups (11 to 20 digits are likely), separators, look-alikes.
card_like = st.lists(st.sampled_from(["4", "42", "4242", " ", "-", "\t", "\v", "x", "٣"]), max_size=12).map(
    "".join
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.none(), card_like), min_size=1, max_size=20))
@example(values=["4" * 11, "4" * 12, "4" * 19, "4" * 20, "4242 4242-4242\t4242 424", None])
def test_card_numbers_are_shaped_as_the_regular_expressions_shape_them(values: list[str | None]) -> None:
    number = pa.array(values, pa.string())
    expected = pc.replace_substring_regex(number, r"[\s-]", "")
    digits, shaped = _card_digits(number)
    assert digits.to_pylist() == expected.to_pylist()
    assert shaped.tolist() == pc.match_substring_regex(expected, r"^\d{12,19}$").fill_null(False).to_pylist()


def _nested(depth: int) -> object:
    value: object = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def test_extra_fields_are_kept_up_to_a_depth_and_a_size(validator: Validator) -> None:
    kept = validator.records([transaction(shipping=_nested(MAX_EXTRA_DEPTH))], received_at_ms=0)
    assert kept.errors == []
    assert orjson.loads(kept.batch.data.column("attributes")[0].as_py())["shipping"] == _nested(
        MAX_EXTRA_DEPTH
    )
    too_deep = only_errors(validator, transaction(shipping=_nested(MAX_EXTRA_DEPTH + 1)))
    assert too_deep["shipping"].problem == f"nests more than {MAX_EXTRA_DEPTH} levels deep"
    too_big = only_errors(validator, transaction(notes="x" * MAX_EXTRA_BYTES))
    assert "bytes of JSON" in too_big["body"].problem


def test_a_field_nested_a_thousand_levels_is_an_error_not_a_crash(validator: Validator) -> None:
    # orjson reads 1,024 levels; Python's own repr and orjson's writer stop long before that.
    deep = orjson.loads(b"[" * 1000 + b"]" * 1000)
    result = validator.records(
        [transaction(amount=deep), transaction(transaction_id="t2", extra=deep)], received_at_ms=0
    )
    assert [e.errors[0].field for e in result.errors] == ["amount", "extra"]
    shown = result.errors[0].errors[0].as_dict()["value"]
    assert isinstance(shown, str)
    assert len(shown) < 100
