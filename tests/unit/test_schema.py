"""Validation at the edge: aliases, bounds, card handling, and errors that name the field."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from fraudstream.core.cards import card_fingerprint, luhn_valid
from fraudstream.core.schema import ReferenceData, Validator
from fraudstream.reference import load_reference

PAN = "4242-4242-4242-4242"


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(load_reference(), card_key=b"test-key")


def good(**overrides: object) -> dict[str, object]:
    record: dict[str, object] = {"transaction_id": "t1", "user_id": "u1", "amount": 50.0}
    record.update(overrides)
    return record


def field_errors(validator: Validator, record: object) -> dict[str, str]:
    result = validator.records([record], received_at_ms=1_000)
    assert len(result.batch) == 0
    return {e.field: e.problem for e in result.errors[0].errors}


@pytest.mark.parametrize(
    ("override", "field", "problem"),
    [
        ({"transaction_id": None}, "transaction_id", "is required"),
        ({"user_id": ""}, "user_id", "is empty"),
        ({"user_id": "x" * 129}, "user_id", "129 characters"),
        ({"user_id": ["u"]}, "user_id", "has type list"),
        ({"amount": -5}, "amount", "greater than 0"),
        ({"amount": 0}, "amount", "greater than 0"),
        ({"amount": "NaN"}, "amount", "not finite"),
        ({"amount": float("inf")}, "amount", "not finite"),
        ({"amount": 1e12}, "amount", "larger than allowed"),
        ({"amount": "fifty"}, "amount", "not a number"),
        ({"amount": True}, "amount", "has type bool"),
        ({"currency": "XXY"}, "currency", "not a known code"),
        ({"timestamp": "2025-07-15T10:00:00"}, "timestamp", "no time zone"),
        ({"timestamp": "yesterday"}, "timestamp", "not an RFC 3339"),
        ({"lat": 95.0, "lon": 10.0}, "lat", "out of range"),
        ({"lat": 45.0}, "lat/lon", "only one"),
        ({"country": "USA"}, "country", "not a known code"),
        ({"channel": "carrier-pigeon"}, "channel", "not a known channel"),
        ({"ip": "999.1.1.1"}, "ip", "not an IP address"),
        ({"card_number": "4242424242424241"}, "card_number", "Luhn"),
    ],
)
def test_each_bad_value_is_reported_with_its_field_and_problem(
    validator: Validator, override: dict[str, object], field: str, problem: str
) -> None:
    errors = field_errors(validator, good(**override))
    assert field in errors, errors
    assert problem in errors[field]


def test_a_mixed_batch_keeps_the_good_rows_in_order_and_maps_them_back(validator: Validator) -> None:
    records = [
        good(transaction_id="a"),
        good(transaction_id="b", amount=-1),
        "not an object",
        good(transaction_id="d"),
    ]
    result = validator.records(records, received_at_ms=0)
    assert result.batch.transaction_id.to_pylist() == ["a", "d"]
    assert result.rows.tolist() == [0, 3]
    assert [e.index for e in result.errors] == [1, 2]
    assert result.errors[1].errors[0].field == "body"


def test_aliases_of_the_seed_systems_map_to_canonical_fields(validator: Validator) -> None:
    result = validator.records(
        [
            {
                "transactionId": "t9",
                "userId": 1087,
                "amount": "1500",
                "currency": "usd",
                "location": "Hyderabad",
            }
        ],
        received_at_ms=42_000,
    )
    batch = result.batch
    assert batch.user_id.to_pylist() == ["1087"]
    assert batch.amount.tolist() == [1500.0]
    assert batch.strings("currency").to_pylist() == ["USD"]
    assert batch.timestamp_ms.tolist() == [42_000]
    assert batch.lat[0] == pytest.approx(17.38, abs=0.01)
    assert batch.strings("country").to_pylist() == ["IN"]


def test_timestamps_accept_zones_and_unix_times(validator: Validator) -> None:
    result = validator.records(
        [
            good(transaction_id="z", timestamp="2025-07-15T10:00:00Z"),
            good(transaction_id="o", timestamp="2025-07-15T15:30:00+05:30"),
            good(transaction_id="s", timestamp=1752573600),
            good(transaction_id="m", timestamp=1752573600000),
        ],
        received_at_ms=0,
    )
    assert set(result.batch.timestamp_ms.tolist()) == {1752573600000}


def test_an_unknown_place_has_no_location_and_is_not_an_error(validator: Validator) -> None:
    result = validator.records([good(location="Online")], received_at_ms=0)
    assert not result.errors
    assert math.isnan(result.batch.lat[0])


def test_the_card_number_is_never_kept_and_errors_show_it_masked(validator: Validator) -> None:
    result = validator.records([good(card_number=PAN, note=PAN)], received_at_ms=0)
    digits = PAN.replace("-", "")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, result.batch.data.schema) as writer:
        writer.write_batch(result.batch.data)
    raw = sink.getvalue().to_pybytes()
    assert digits.encode() not in raw
    assert PAN.encode() not in raw
    assert result.batch.strings("card_last4").to_pylist() == ["4242"]
    assert result.batch.strings("card_bin").to_pylist() == ["424242"]
    bad = validator.records([good(card_number="4242424242424241")], received_at_ms=0)
    assert "4242424242424241" not in str(bad.errors[0].as_dict())


def test_fingerprints_are_keyed() -> None:
    assert card_fingerprint("4242424242424242", b"a") != card_fingerprint("4242424242424242", b"b")
    assert luhn_valid("79927398713")


def test_extra_fields_are_kept_as_attributes(validator: Validator) -> None:
    result = validator.records([good(risk_segment="gold")], received_at_ms=0)
    assert result.batch.strings("attributes").to_pylist() == ['{"risk_segment":"gold"}']


def test_table_and_records_agree_on_the_same_data(validator: Validator) -> None:
    rows = [
        good(transaction_id=f"t{i}", amount=10.0 + i, merchant_id=f"m{i % 3}", timestamp=1_700_000_000 + i)
        for i in range(20)
    ]
    from_records = validator.records(rows, received_at_ms=0).batch
    table = pa.Table.from_pylist([{**r, "TX_AMOUNT": r["amount"]} for r in rows]).drop_columns(["amount"])
    from_table = validator.table(table, received_at_ms=0, mapping={"amount": "TX_AMOUNT"}).batch
    assert from_table.data.equals(from_records.data)


def test_reference_data_covers_the_cities_users_send() -> None:
    reference: ReferenceData = load_reference()
    lat, lon, countries = reference.places.resolve(["New York", "Tokyo", "London", "Bombay", "Paris, FR"])
    assert countries == ["US", "JP", "GB", "IN", "FR"]
    assert np.all(np.isfinite(lat))
    assert np.all(np.isfinite(lon))
