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
from fraudstream.core.schema import FIELDS, ReferenceData, ValidationResult, Validator
from fraudstream.runtime.kafka.decode import _arrow_block, _scan_block, decode_block
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import records_for_http

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


# --- the compiled scanner against pyarrow.json -------------------------------------------------------

#: Number texts as producers write them, and some that JSON forbids.
NUMBER_TEXTS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: orjson.dumps(x).decode()),
    st.integers(-(10**20), 10**20).map(str),
    st.integers(0, 12)
    .flatmap(lambda p: st.decimals(allow_nan=False, allow_infinity=False, places=p))
    .map(str),
    st.sampled_from(
        ["1e5", "1E-3", "2.5e+2", "-0", "-0.0", "0.000001234", "01", "1.", ".5", "-", "1e", "1e400"]
    ),
)
#: String values as JSON texts: written by orjson (which escapes what it must), or raw, where a
#: control character is not JSON.
TEXTS = st.one_of(
    st.text(alphabet="abc-_ 9é", max_size=6).map(lambda t: orjson.dumps(t).decode()),
    st.text(max_size=4).map(lambda t: orjson.dumps(t).decode()),
    st.text(max_size=4).filter(lambda t: '"' not in t and "\\" not in t).map(lambda t: f'"{t}"'),
)
CANONICAL = sorted(set(FIELDS))
NUMBER_FIELDS = {"amount", "lat", "lon"}


@st.composite
def plain_messages(draw: st.DrawFn) -> list[bytes]:
    """Flat messages over canonical fields, written with varied spacing; some not plain at all."""
    rows = []
    for _ in range(draw(st.integers(1, 5))):
        parts = []
        for name in draw(st.lists(st.sampled_from(CANONICAL), max_size=6)):
            usual = NUMBER_TEXTS if name in NUMBER_FIELDS else TEXTS
            odd = TEXTS if name in NUMBER_FIELDS else NUMBER_TEXTS
            value = draw(st.one_of(usual, usual, usual, st.just("null"), odd, st.just("true")))
            gap = draw(st.sampled_from(["", "", " ", "\t", "\n"]))
            parts.append(f'"{name}"{gap}:{gap}{value}')
        comma = draw(st.sampled_from([",", ", ", " ,"]))
        rows.append(("{" + comma.join(parts) + "}").encode())
    return rows


def _same_as_pyarrow_json(values: list[bytes]) -> bool:
    """Whether the scanner read the messages (and then, exactly as pyarrow.json does)."""
    scanned = _scan_block(values)
    if scanned is None:
        return False
    parsed = _arrow_block(values)
    assert parsed is not None, "the scanner accepted messages that pyarrow.json refuses"
    assert scanned.schema == parsed.schema
    assert scanned.to_pylist() == parsed.to_pylist()
    return True


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain_messages())
def test_the_scanner_reads_what_it_reads_exactly_as_pyarrow_json(values: list[bytes]) -> None:
    _same_as_pyarrow_json(values)


@settings(max_examples=500, deadline=None)
@given(NUMBER_TEXTS)
def test_numbers_are_read_to_the_same_double_as_pyarrow_json(text: str) -> None:
    read = _same_as_pyarrow_json([f'{{"amount": {text}}}'.encode()])
    digits = text.lstrip("-").replace(".", "").lstrip("0")
    if "e" not in text.lower() and text.lstrip("-")[:1].isdigit() and len(digits) <= 15 and "." in text:
        assert read or text.endswith("."), text  # plain decimals of up to 15 digits are read


def test_simulated_traffic_takes_the_scanner() -> None:
    records = records_for_http(
        simulate(SimulationConfig(count=500, seed=5)).drop_columns(["is_fraud", "fraud_scenario"])
    )
    values = [orjson.dumps(r) for r in records]
    scanned = _scan_block(values)
    assert scanned is not None
    assert scanned.to_pylist() == _arrow_block(values).to_pylist()


def test_what_the_scanner_leaves_to_pyarrow_json() -> None:
    plain = b'{"transaction_id": "t", "amount": 12.5}'
    assert _scan_block([plain]) is not None
    for other in [
        b'{"transaction_id": "t\\u00e9", "amount": 1}',  # an escape
        b'{"transaction_id": "t", "amount": 12345678901234567}',  # more digits than a double holds
        b'{"transaction_id": "t", "amount": 1e30}',  # beyond the exact powers of ten
        b'{"transaction_id": "t", "transaction_id": "u"}',  # a repeated key
        b'{"transaction_id": "t", "amount": true}',
        b'{"transaction_id": ["t"]}',
        b'{"transaction_id": "t"} x',
        b'{"transaction_id": "\xff"}',  # not UTF-8
    ]:
        assert _scan_block([plain, other]) is None, other


def test_a_zero_amount_is_decoded_validated_and_scored_on_the_block_and_message_paths() -> None:
    """A 0.00 authorization is a card-verification request: scored like any payment, never refused."""
    from fraudstream.core.engine import Engine

    zeros = [b"0", b"0.0", b"0.00", b"-0.0", b"-0.01"]
    values = [
        b'{"transaction_id": "t%d", "user_id": "u", "amount": %s}' % (i, z) for i, z in enumerate(zeros)
    ]
    scanned = _scan_block(values)
    assert scanned is not None, "plain messages take the compiled scanner"
    from_block = VALIDATOR.table(scanned, received_at_ms=7)
    from_messages = VALIDATOR.records([orjson.loads(v) for v in values], received_at_ms=7)
    for result in (from_block, from_messages):
        assert result.batch.amount.tolist() == [0.0] * 4
        assert [(e.transaction_id, e.errors[0].problem) for e in result.errors] == [("t4", "must be >= 0")]
    decisions = Engine().score(from_block.batch).to_records()
    assert [d["transaction_id"] for d in decisions] == ["t0", "t1", "t2", "t3"]
    assert all(0 <= d["score"] <= 100 for d in decisions)
