"""Validation of columnar input (CSV / Parquet): mappings, aliases, and agreement with the records path."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudstream.core.geo import DictPlaceLookup
from fraudstream.core.schema import NaiveTimes, ReferenceData, ValidationResult, Validator, naive_times
from fraudstream.errors import ConfigError

REFERENCE = ReferenceData(
    currencies=frozenset({"USD", "EUR", "INR"}),
    countries=frozenset({"US", "FR", "IN"}),
    places=DictPlaceLookup({"Paris": (48.85, 2.35, "FR"), "Hyderabad": (17.38, 78.46, "IN")}),
)
VALIDATOR = Validator(REFERENCE, card_key=b"table-key", max_amount=1e6)


def test_a_csv_file_with_mapped_and_aliased_columns_validates() -> None:
    text = (
        "TX_ID,customerId,TX_AMOUNT,time,ip_address,location,segment\n"
        "t1,1087,50.00,2025-07-15T10:00:00Z,10.0.0.1,Paris,gold\n"
        "t2,1088,-3,2025-07-15T10:00:00Z,10.0.0.2,Online,\n"
        "t3,1089,7.5,2025-07-15T10:00:00,10.0.0.3,Hyderabad,silver\n"
        "t4,1090,12,1752573600,10.0.0.4,Hyderabad,silver\n"
    )
    table = pacsv.read_csv(pa.py_buffer(text.encode()))
    result = VALIDATOR.table(
        table, received_at_ms=0, mapping={"transaction_id": "TX_ID", "amount": "TX_AMOUNT"}
    )
    assert result.rows.tolist() == [0, 3]
    assert result.batch.user_id.to_pylist() == ["1087", "1090"]
    assert result.batch.data.column("country").to_pylist() == ["FR", "IN"]
    assert result.batch.data.column("attributes").to_pylist() == [
        '{"segment":"gold"}',
        '{"segment":"silver"}',
    ]
    assert {e.index: e.errors[0].field for e in result.errors} == {1: "amount", 2: "timestamp"}
    assert result.batch.timestamp_ms.tolist() == [1752573600000, 1752573600000]


def test_arrow_timestamp_columns_need_a_zone() -> None:
    base = {"transaction_id": ["a"], "user_id": ["u"], "amount": [1.0]}
    zoned = pa.table({**base, "timestamp": pa.array([1752573600000], pa.timestamp("ms", tz="UTC"))})
    assert VALIDATOR.table(zoned, received_at_ms=0).batch.timestamp_ms.tolist() == [1752573600000]
    naive = pa.table({**base, "timestamp": pa.array([1752573600000], pa.timestamp("ms"))})
    error = VALIDATOR.table(naive, received_at_ms=0).errors[0].errors[0]
    assert error.field == "timestamp"
    assert "no time zone" in error.problem


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_arrow_timestamp_columns_without_a_zone_are_read_in_the_named_zone(unit: str) -> None:
    base = {"transaction_id": ["w", "s", "gap", "twice"], "user_id": ["u"] * 4, "amount": [1.0] * 4}
    local = ["2018-01-15 12:00:00", "2018-07-15 12:00:00", "2018-03-25 02:30:00", "2018-10-28 02:30:00"]
    stamps = pa.array(local).cast(pa.timestamp(unit))
    result = VALIDATOR.table(
        pa.table({**base, "timestamp": stamps}), received_at_ms=0, naive_timezone="Europe/Paris"
    )
    assert not result.errors
    assert result.batch.timestamp_ms.tolist() == [
        1516014000000,  # 2018-01-15T11:00:00Z: winter time, +01:00
        1531648800000,  # 2018-07-15T10:00:00Z: summer time, +02:00
        1521939600000,  # 2018-03-25T01:00:00Z: a time skipped by the clocks is the end of the gap
        1540686600000,  # 2018-10-28T00:30:00Z: a time the clocks show twice is the first
    ]


def test_naive_times_names_the_mapped_or_aliased_column_and_its_first_naive_value() -> None:
    naive = pa.array(["2018-04-01 00:00:31"]).cast(pa.timestamp("s"))
    table = pa.table({"TX_DATETIME": naive, "transaction_id": ["a"], "user_id": ["u"], "amount": [1.0]})
    assert naive_times(table, {"timestamp": "TX_DATETIME"}) == NaiveTimes(
        "column TX_DATETIME", "2018-04-01 00:00:31", 1
    )
    text = pa.table({"created_at": ["2018-04-01T00:00:00Z", None, "2018-04-01T00:00:31"]})
    assert naive_times(text) == NaiveTimes("column created_at", "2018-04-01T00:00:31", 1)
    zoned = pa.table({"timestamp": pa.array([0], pa.timestamp("s", tz="Europe/Paris"))})
    assert naive_times(zoned) is None
    assert naive_times(pa.table({"amount": [1.0]})) is None


def _handbook_table() -> pa.Table:
    """Rows as the Fraud Detection Handbook's data set writes them: integer ids, naive times."""
    return pa.table(
        {
            "TRANSACTION_ID": pa.array([0, 1, 2], pa.int64()),
            "TX_DATETIME": ["2018-04-01 00:00:31", "2018-04-01 00:02:10", "2018-04-01 00:07:56"],
            "CUSTOMER_ID": pa.array([596, 4961, 2], pa.int64()),
            "TERMINAL_ID": pa.array([3156, 3412, 1365], pa.int64()),
            "TX_AMOUNT": [57.16, 0.0, 146.0],
            "TX_AMOUNT_CENTS": pa.array([5716, 0, 14600], pa.int64()),
            "TX_FRAUD": pa.array([0, 0, 1], pa.int8()),
        }
    )


HANDBOOK_MAP = {
    "transaction_id": "TRANSACTION_ID",
    "timestamp": "TX_DATETIME",
    "user_id": "CUSTOMER_ID",
    "terminal_id": "TERMINAL_ID",
}


@pytest.mark.parametrize("kind", ["csv", "parquet"])
@pytest.mark.parametrize(
    ("amount", "expected"), [("TX_AMOUNT", [57.16, 0.0, 146.0]), ("TX_AMOUNT_CENTS", [5716.0, 0.0, 14600.0])]
)
def test_a_file_with_integer_ids_integer_or_float_amounts_and_naive_times_reads_as_it_is(
    tmp_path: Path, kind: str, amount: str, expected: list[float]
) -> None:
    path = tmp_path / f"handbook.{kind}"
    if kind == "csv":
        pacsv.write_csv(_handbook_table(), path)
        table = pacsv.read_csv(path)  # Arrow reads the times as timestamp[s] without a zone
        assert table.schema.field("TX_DATETIME").type == pa.timestamp("s")
    else:
        pq.write_table(_handbook_table(), path)
        table = pq.read_table(path)
        assert table.schema.field("TX_DATETIME").type == pa.string()
    assert table.schema.field("CUSTOMER_ID").type == pa.int64()
    mapping = {**HANDBOOK_MAP, "amount": amount}
    refused = VALIDATOR.table(table, received_at_ms=0, mapping=mapping)
    assert [e.errors[0].field for e in refused.errors] == ["timestamp"] * 3
    result = VALIDATOR.table(table, received_at_ms=0, mapping=mapping, naive_timezone="UTC")
    assert not result.errors
    batch = result.batch
    assert batch.transaction_id.to_pylist() == ["0", "1", "2"]
    assert batch.user_id.to_pylist() == ["596", "4961", "2"]
    assert batch.data.column("terminal_id").to_pylist() == ["3156", "3412", "1365"]
    assert batch.amount.tolist() == expected
    assert batch.timestamp_ms.tolist() == [1522540831000, 1522540930000, 1522541276000]


def test_a_field_named_column_wins_over_an_alias_column() -> None:
    table = pa.table({"transaction_id": ["a"], "id": ["b"], "user_id": ["u"], "amount": [1.0]})
    result = VALIDATOR.table(table, received_at_ms=0)
    assert result.batch.transaction_id.to_pylist() == ["a"]
    assert result.batch.data.column("attributes").to_pylist() == ['{"id":"b"}']


def test_a_mapping_to_a_missing_column_or_an_unknown_field_is_a_config_error() -> None:
    table = pa.table({"transaction_id": ["a"], "user_id": ["u"], "amount": [1.0]})
    with pytest.raises(ConfigError, match=r"'TX_AMOUNT'.*no such column"):
        VALIDATOR.table(table, received_at_ms=0, mapping={"amount": "TX_AMOUNT"})
    with pytest.raises(ConfigError, match="'price', which is not a transaction field"):
        VALIDATOR.table(table, received_at_ms=0, mapping={"price": "amount"})


def test_a_card_column_in_a_file_is_tokenised_and_the_number_dropped() -> None:
    table = pa.table(
        {
            "transaction_id": ["a", "b"],
            "user_id": ["u", "u"],
            "amount": [1.0, 2.0],
            "card": [4242424242424242, 1],
        }
    )
    result = VALIDATOR.table(table, received_at_ms=0)
    assert result.batch.data.column("card_last4").to_pylist() == ["4242"]
    assert result.errors[0].errors[0].problem == "is not a card number"
    assert result.batch.data.column("attributes").to_pylist() == [None]


# --- records() and table() agree -----------------------------------------------------------------

ids = st.one_of(
    st.text(alphabet="abc ", max_size=4),
    st.integers(-5, 10**6),
    st.just("x" * 130),
)
amounts = st.one_of(
    st.one_of(st.floats(-10, 2e6), st.sampled_from([math.nan, math.inf, -math.inf])),
    st.sampled_from(["50.00", " 7 ", "abc", "NaN", "-1", "1e3"]),
)
timestamps = st.one_of(
    st.integers(-10, 2_000_000_000_000),
    st.sampled_from(
        [
            "2025-07-15T10:00:00Z",
            "2025-07-15T10:00:00+05:30",
            "2025-07-15T10:00:00",
            "2025-03-30 02:30",
            "soon",
        ]
    ),
)
COLUMN_KINDS: dict[str, list[st.SearchStrategy[Any]]] = {
    "transaction_id": [st.text(alphabet="abc", min_size=1, max_size=3), st.integers(0, 99), ids],
    "user_id": [st.text(alphabet="uv", min_size=1, max_size=3), st.integers(0, 9999), ids],
    "amount": [st.one_of(st.floats(-10, 2e6), st.sampled_from([math.nan, math.inf, -math.inf])), amounts],
    "timestamp": [timestamps],
    "currency": [st.sampled_from(["usd", "EUR", "inr ", "XXX", "dollars"])],
    "channel": [st.sampled_from(["POS", "online", "Mobile", "fax"])],
    "lat": [st.floats(-100, 100)],
    "country": [st.sampled_from(["us", "FR", "XX"])],
    "location": [st.sampled_from(["Paris", "Hyderabad", "Online", "web"])],
    "ip": [st.sampled_from(["10.0.0.1", "2001:DB8::1", "256.0.0.1", "::ffff:1.2.3.4", "ip"])],
    "card_number": [
        st.sampled_from(["4242 4242 4242 4242", "4242424242424241", "12", "5555-5555-5555-4444"])
    ],
    "note": [st.text(max_size=5)],
}


@st.composite
def uniform_records(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Rows whose every column holds one kind of value (or None), as a file's columns do."""
    required = ["transaction_id", "user_id", "amount"]
    optional = [name for name in sorted(COLUMN_KINDS) if name not in required and draw(st.booleans())]
    strategies = {
        name: COLUMN_KINDS[name][draw(st.integers(0, len(COLUMN_KINDS[name]) - 1))]
        for name in required + optional
    }
    n = draw(st.integers(1, 8))
    # Mostly present values, so that a good share of the rows is valid and reaches the batch.
    rows = [
        {
            name: None if draw(st.integers(0, 7)) == 0 else draw(strategy)
            for name, strategy in strategies.items()
        }
        for _ in range(n)
    ]
    if "lat" in strategies:  # coordinates mostly come as a pair
        for row in rows:
            row["lon"] = None if row["lat"] is None else draw(st.floats(-200, 200))
    return rows


def _comparable(result: ValidationResult) -> tuple[Any, ...]:
    errors = orjson.dumps([e.as_dict() for e in result.errors], default=str)
    return result.batch.data.to_pylist(), result.rows.tolist(), errors


def _table(records: list[dict[str, Any]]) -> pa.Table | None:
    try:
        return pa.Table.from_pylist(records)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None  # e.g. ints and floats mixed in a column: no file holds that


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uniform_records(), st.sampled_from([None, "UTC", "Europe/Paris"]))
def test_records_and_table_give_the_same_batch_rows_and_errors(
    records: list[dict[str, Any]], zone: str | None
) -> None:
    table = _table(records)
    if table is None:
        return
    from_records = VALIDATOR.records(records, received_at_ms=123, naive_timezone=zone)
    from_table = VALIDATOR.table(table, received_at_ms=123, naive_timezone=zone)
    assert _comparable(from_table) == _comparable(from_records)
