"""Rules on a client's own fields: ``attributes.NAME`` typed at first use, missing (or of another type)
is null, read from the batch's JSON in one compiled scan that agrees with a JSON parser."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factories import transaction, transaction_batch
from fraudstream.core.attributes import attribute_columns
from fraudstream.core.engine import Engine, default_names
from fraudstream.core.features import FeatureConfig
from fraudstream.core.rules import load_ruleset, ruleset_errors
from fraudstream.core.schema import Validator
from fraudstream.errors import RuleError
from fraudstream.reference import load_reference
from fraudstream.runtime.kafka.decode import decode_block

NAMES = default_names(FeatureConfig())

RULES = """version: 1
rules:
  - {code: web, expression: "attributes.channel == 'web'", action: tag}
  - {code: loyal, expression: "attributes.loyalty_points > 100", action: tag}
  - {code: no_channel, expression: "is_missing(attributes.channel)", action: tag}
"""


def hits(extras: list[dict[str, Any] | None]) -> list[list[str]]:
    """The rules of ``RULES`` each transaction hits, its extra fields as the validator keeps them."""
    batch = transaction_batch(
        transaction(f"t{i}", timestamp=i, attributes=orjson.dumps(e).decode() if e is not None else None)
        for i, e in enumerate(extras)
    )
    decisions = Engine(rules=load_ruleset(RULES, NAMES)).score(batch)
    return [decisions.rules_hit(row) for row in range(len(batch))]


def test_a_rule_on_attributes_channel_hits_web_and_not_pos_nor_a_missing_one() -> None:
    found = hits([{"channel": "web"}, {"channel": "pos"}, None, {"other": 1}, {"channel": 7}])
    assert found == [["web"], [], ["no_channel"], ["no_channel"], ["no_channel"]]


def test_a_numeric_attribute_compares_as_a_number_and_text_in_its_place_is_missing() -> None:
    found = hits([{"loyalty_points": 150}, {"loyalty_points": 100}, {"loyalty_points": "150"}, {}])
    assert [("loyal" in row) for row in found] == [True, False, False, False]


def test_extra_fields_sent_as_an_attributes_object_are_read_too_and_the_top_level_wins() -> None:
    found = hits([{"attributes": {"channel": "web"}}, {"channel": "pos", "attributes": {"channel": "web"}}])
    assert found == [["web"], []]


def test_an_attribute_used_as_two_types_is_a_rule_error_at_the_second_use() -> None:
    text = (
        RULES
        + '  - {code: channel_number, expression: "amount > 5 and attributes.channel > 2", action: tag}\n'
    )
    (error,) = ruleset_errors(text, NAMES)
    assert error.rule == "channel_number"
    assert error.position == len("amount > 5 and ") + 1
    assert "used as a number here but as text in rule 'web'" in error.reason


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("attributes.channel", "is a value, not a condition"),
        ("attributes.a == attributes.b", "compare an attribute with a literal"),
        ("attributes.channel.kind == 'x'", "only feature names of the form entity.feature"),
    ],
)
def test_attribute_misuse_is_refused_with_what_to_write(expression: str, reason: str) -> None:
    with pytest.raises(RuleError, match=reason):
        load_ruleset(f'version: 1\nrules:\n  - {{code: r, expression: "{expression}", action: tag}}\n', NAMES)


def test_the_rule_set_reads_each_attribute_with_the_type_its_rules_fixed() -> None:
    rules = load_ruleset(
        RULES + '  - {code: ghost, expression: "is_missing(attributes.ghost)", action: tag}\n', NAMES
    )
    assert rules.attributes == {"channel": "string", "ghost": "present", "loyalty_points": "number"}


def test_the_kafka_path_keeps_extra_fields_as_attributes_for_the_rules() -> None:
    """A worker's block decoder takes canonical fields only, so a block with extra fields goes the
    per-message path (as the worker does: `Worker` falls back when `decode_block` gives None), which
    keeps them as attributes in the same batch."""
    messages = [orjson.dumps(transaction("k1", loyalty_points=250, attributes={"channel": "web"}))]
    assert decode_block(messages) is None
    validator = Validator(load_reference(), b"key")
    batch = validator.records([orjson.loads(m) for m in messages], received_at_ms=0).batch
    decisions = Engine(rules=load_ruleset(RULES, NAMES)).score(batch)
    assert decisions.rules_hit(0) == ["web", "loyal"]


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=8),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
_KEYS = st.sampled_from(["a", "b", "ab", "é", "attributes", "x y"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.none() | st.dictionaries(_KEYS, _VALUES, max_size=5), max_size=12))
def test_the_compiled_scan_reads_what_a_json_parser_reads(rows: list[dict[str, Any] | None]) -> None:
    column = pa.array([orjson.dumps(r).decode() if r is not None else None for r in rows], pa.string())
    wanted = [(name, kind) for name in ("a", "b", "é") for kind in ("number", "string", "present")]
    found = attribute_columns(column, wanted)
    for name, kind in wanted:
        expected = []
        for row in rows:
            top = row or {}
            nested = top.get("attributes") if isinstance(top.get("attributes"), dict) else {}
            value = top[name] if name in top else nested.get(name)
            if kind == "number":
                number = isinstance(value, int | float) and not isinstance(value, bool)
                expected.append(float(value) if number else np.nan)
            elif kind == "string":
                expected.append(value if isinstance(value, str) else None)
            else:
                expected.append(1.0 if value is not None else np.nan)
        got = found[name, kind]
        if kind == "string":
            assert got.to_pylist() == expected
        else:
            np.testing.assert_array_equal(got, np.array(expected, dtype=np.float64))
