"""The worker's batch decoder: one Arrow table per batch when that is exact, else the per-message path.

Whatever JSON messages come in, decoding them as a block and validating the table gives the same batch,
rows and errors as decoding each message and validating the records — or the block decoder declines.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudstream.core.geo import DictPlaceLookup
from fraudstream.core.schema import ReferenceData, ValidationResult, Validator
from fraudstream.runtime.kafka.decode import decode_block

REFERENCE = ReferenceData(
    currencies=frozenset({"USD", "EUR"}),
    countries=frozenset({"US", "FR"}),
    places=DictPlaceLookup({"Paris": (48.85, 2.35, "FR")}),
)
VALIDATOR = Validator(REFERENCE, card_key=b"decode-key", max_amount=1e6)

FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "transaction_id": st.one_of(
        st.text(alphabet="ab", min_size=1, max_size=3), st.integers(0, 9), st.just("")
    ),
    "user_id": st.one_of(st.text(alphabet="uv", min_size=1, max_size=3), st.just("x" * 130)),
    "amount": st.one_of(st.floats(-10, 2e6, allow_nan=False), st.integers(-3, 10**7), st.just("12.5")),
    "timestamp": st.sampled_from(
        ["2025-07-15T10:00:00Z", "2025-07-15T10:00:00+05:30", "2025-07-15T10:00", "x"]
    ),
    "currency": st.sampled_from(["USD", "eur", "XXX"]),
    "location": st.sampled_from(["Paris", "Online", "Atlantis"]),
    "lat": st.floats(-100, 100),
    "lon": st.floats(-200, 200),
    "card_number": st.sampled_from(["4242 4242 4242 4242", "4242424242424241"]),
    "userId": st.text(alphabet="uv", min_size=1, max_size=2),  # an alias
    "segment": st.sampled_from(["gold", "2025-01-01T00:00:00Z"]),  # an extra field
}


@st.composite
def messages(draw: st.DrawFn) -> list[bytes]:
    names = draw(st.sets(st.sampled_from(sorted(FIELD_VALUES)), min_size=1))
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        row = {name: draw(FIELD_VALUES[name]) for name in names if draw(st.integers(0, 5)) > 0}
        rows.append(orjson.dumps(row))
    if draw(st.booleans()):
        rows.append(draw(st.sampled_from([b"not json", b"[1, 2]", b'{"a":\n 1}', b""])))
    return rows


def _comparable(result: ValidationResult) -> tuple[Any, ...]:
    errors = [e.as_dict() for e in result.errors]
    for error in errors:
        for field in error["errors"]:
            # The one allowed difference: a bad number is echoed as 0.0 where the message said 0 (the
            # block path reads every amount as a double).
            if isinstance(field["value"], int) and not isinstance(field["value"], bool):
                field["value"] = float(field["value"])
    return result.batch.data.to_pylist(), result.rows.tolist(), orjson.dumps(errors, default=str)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_a_decoded_block_validates_exactly_like_the_messages_one_by_one(values: list[bytes]) -> None:
    table = decode_block(values)
    if table is None:
        return  # declined: the worker takes the per-message path
    records = [orjson.loads(v) for v in values]  # a block decodes only when every message is JSON
    assert _comparable(VALIDATOR.table(table, received_at_ms=7)) == _comparable(
        VALIDATOR.records(records, received_at_ms=7)
    )


def test_clean_canonical_messages_take_the_block_path() -> None:
    values = [
        orjson.dumps(
            {
                "transaction_id": f"t{i}",
                "user_id": "u",
                "amount": 10 + i,
                "location": "Paris",
                "timestamp": "2025-07-15T10:00:00Z",
            }
        )
        for i in range(50)
    ]
    table = decode_block(values)
    assert table is not None
    assert table.num_rows == 50
    assert VALIDATOR.table(table, received_at_ms=0).batch.amount[49] == 59.0


def test_what_the_block_path_declines() -> None:
    good = orjson.dumps({"transaction_id": "t", "user_id": "u", "amount": 1})
    assert decode_block([]) is None
    assert decode_block([good, b"not json"]) is None
    assert decode_block([good, b'{"transaction_id": "t2",\n "user_id": "u", "amount": 1}']) is None
    assert decode_block([good, b""]) is None
    assert decode_block([good, b"[1]"]) is None
    assert decode_block([good, orjson.dumps({"transactionId": "t3", "user_id": "u", "amount": 1})]) is None
    assert decode_block([good, orjson.dumps({"transaction_id": 5, "user_id": "u", "amount": 1})]) is None
    assert decode_block([good, orjson.dumps({"transaction_id": "t", "amount": math.pi, "note": "x"})]) is None
