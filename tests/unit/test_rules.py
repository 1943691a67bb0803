"""The rule language and rule sets: safe parsing, exact vectorized evaluation, lists, YAML errors."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.core.engine import default_names, default_ruleset
from fraudstream.core.features import FeatureConfig
from fraudstream.core.rules import ListStore, compile_expression, load_ruleset
from fraudstream.errors import RuleError

NAMES: dict[str, Any] = {
    "amount": "number",
    "user.count_30s": "number",
    "geo.speed_kmh": "number",
    "country": "string",
    "device_id": "string",
}


class Columns:
    def __init__(self, **columns: Any) -> None:
        self.columns = {k.replace("__", "."): v for k, v in columns.items()}

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def column(self, name: str) -> Any:
        return self.columns[name]


def evaluate(expression: str, lists: ListStore | None = None, **columns: Any) -> list[bool]:
    return compile_expression(expression, NAMES, rule="t").evaluate(Columns(**columns), lists).tolist()


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('id')", "only the functions"),
        ("amount.__class__", "unknown name 'amount.__class__'"),
        ("(lambda: 1) == 1", "a lambda is not allowed"),
        ("[x for x in (1, 2)] == 1", "comprehension"),
        ("amount[0] > 1", "indexing"),
        ("amount ** 2 > 1", "only + - * /"),
        ("open('/etc/passwd')", "only the functions"),
        ("amount if amount else 1", "if-expression"),
        ("amount > 'big'", "cannot compare a number with a string"),
        ("country > 'US'", "text compares only with"),
        ("amout > 5", "did you mean amount"),
        ("amount >", "syntax error"),
        ("amount", "expected a bool"),
    ],
)
def test_unsafe_or_wrong_expressions_are_refused_with_a_reason(expression: str, reason: str) -> None:
    with pytest.raises(RuleError) as caught:
        compile_expression(expression, NAMES, rule="r1")
    assert reason in str(caught.value)
    assert caught.value.rule == "r1"


def test_the_error_position_points_at_the_offending_part() -> None:
    with pytest.raises(RuleError) as caught:
        compile_expression("amount > 5 and user.cnt_30s > 2", NAMES, rule="r")
    assert caught.value.position == 16


@pytest.mark.parametrize(
    ("expression", "column"),
    [
        ("amount >> 5", 8),  # the operator, not the start of the expression
        ("(amount + 1) >> 5", 14),  # past the left operand's closing parenthesis
        ("country < 'US'", 9),
        ("device_id == 5", 11),
    ],
)
def test_an_operator_error_points_at_the_operator(expression: str, column: int) -> None:
    with pytest.raises(RuleError) as caught:
        compile_expression(expression, NAMES, rule="r")
    assert caught.value.position == column, str(caught.value)


def test_missing_values_never_compare_true() -> None:
    amount = np.array([np.nan, 5.0, 20.0])
    assert evaluate("amount > 10", amount=amount) == [False, False, True]
    assert evaluate("amount != 5", amount=amount) == [False, False, True]
    assert evaluate("not (amount > 10)", amount=amount) == [True, True, False]
    assert evaluate("is_missing(amount)", amount=amount) == [True, False, False]
    assert evaluate("coalesce(amount, 100) > 50", amount=amount) == [True, False, False]
    country = pa.array([None, "US", "NG"])
    assert evaluate("country in ('NG', 'RU')", country=country) == [False, False, True]
    assert evaluate("country not in ('NG', 'RU')", country=country) == [False, True, False]


def test_division_by_zero_is_missing_not_an_error() -> None:
    assert evaluate(
        "amount / user.count_30s > 1", amount=np.array([5.0, 5.0]), user__count_30s=np.array([0.0, 2.0])
    ) == [False, True]


def test_named_lists_change_without_reloading_rules() -> None:
    lists = ListStore()
    lists.declare("blocked_devices", "device_id")
    devices = pa.array(["d1", "d2", None])
    expression = compile_expression("device_id in list('blocked_devices')", NAMES, rule="r")
    assert expression.evaluate(Columns(device_id=devices), lists).tolist() == [False, False, False]
    lists.replace("blocked_devices", ["d2"])
    assert expression.evaluate(Columns(device_id=devices), lists).tolist() == [False, True, False]


OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@settings(max_examples=60, deadline=None)
@given(
    amounts=st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=1, max_size=30),
    counts=st.data(),
    op=st.sampled_from(sorted(OPS)),
    threshold=st.floats(-100, 100),
    joiner=st.sampled_from(["and", "or"]),
)
def test_vectorized_evaluation_equals_a_row_by_row_reference(
    amounts: list[float], counts: st.DataObject, op: str, threshold: float, joiner: str
) -> None:
    n = len(amounts)
    count = counts.draw(st.lists(st.integers(0, 10), min_size=n, max_size=n))
    expression = f"amount {op} {threshold!r} {joiner} user.count_30s * 2 - 1 >= 5"
    got = evaluate(expression, amount=np.array(amounts), user__count_30s=np.array(count, dtype=float))

    def row(a: float, c: int) -> bool:
        left = (a == a) and OPS[op](a, threshold)
        right = c * 2 - 1 >= 5
        return (left and right) if joiner == "and" else (left or right)

    assert got == [row(a, c) for a, c in zip(amounts, count)]


def test_an_invalid_rule_set_names_the_rule_and_the_problem() -> None:
    names = default_names(FeatureConfig())
    head = "version: 1\nrules:\n"
    rule = "  - {code: a, expression: 'amount > 1', action: review"
    cases = {
        head + "  - {code: a, expression: 'amount > 1', action: block}\n": "action 'block'",
        head + rule + ", weight: 500}\n": "weight 500",
        head + rule + "}\n" + rule + "}\n": "unique",
        head + "  - {code: a, expression: \"device_id in list('nope')\", action: review}\n": "not declared",
        head + rule + ", colour: red}\n": "unknown keys",
        head + rule + ", description: 'Amount {amount:>5000000}'}\n": "width 5000000 is over 20",
        head + rule + ", description: 'Amount {amount.__class__}'}\n": "attributes and indexes",
        "version: 1\nrules: [\n": "not valid YAML",
    }
    for text, reason in cases.items():
        with pytest.raises(RuleError, match=reason):
            load_ruleset(text, names)


def test_the_default_rule_set_loads_round_trips_and_fills_its_descriptions() -> None:
    rules = default_ruleset()
    codes = {r.code for r in rules.rules}
    assert {
        "large_amount",
        "huge_amount",
        "amount_spike",
        "high_velocity",
        "geo_velocity",
        "new_device_high_amount",
        "card_testing",
    } <= codes
    again = load_ruleset(rules.to_yaml(), default_names(FeatureConfig()))
    assert again.rules == rules.rules
    assert rules.describe("large_amount", {"amount": 12345.0}) == "Amount 12,345.00 is over 10,000"


def test_flags_make_a_new_version_with_the_rule_in_shadow() -> None:
    rules = default_ruleset()
    shadowed = rules.with_flags("large_amount", default_names(FeatureConfig()), shadow=True)
    assert shadowed.version == rules.version + 1
    assert shadowed.rule("large_amount").shadow


_VALUES = st.sampled_from([0.0, -0.0, 1.0, -2.5, 3.0, 7.0, 1e9, -1e-9, np.nan])
_CONSTANTS = st.sampled_from(["0", "1", "2.5", "-3", "1000000000", "0.1"])


def _numbers() -> st.SearchStrategy[str]:
    leaves = st.one_of(st.sampled_from(["a", "b", "c"]), _CONSTANTS)
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds("-({})".format, inner),
            st.builds("({} {} {})".format, inner, st.sampled_from(["+", "-", "*", "/"]), inner),
            st.builds("abs({})".format, inner),
            st.builds("{}({}, {})".format, st.sampled_from(["min", "max"]), inner, inner),
            st.builds("min({}, {}, {})".format, inner, inner, inner),
            st.builds("coalesce({}, {})".format, inner, inner),
        ),
        max_leaves=6,
    )


def _booleans() -> st.SearchStrategy[str]:
    compare = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    leaves = st.one_of(
        st.builds("{} {} {}".format, _numbers(), compare, _numbers()),
        st.builds("{} {} {} {} {}".format, _numbers(), compare, _numbers(), compare, _numbers()),
        st.builds("is_missing({})".format, st.sampled_from(["a", "b", "s"])),
        st.sampled_from(["True", "False", "s == 'x'", "s != 'x'", "s in list('l')", "s not in list('l')",
                         "s in list('empty')", "s not in ('x', 'y')", "a in (1, 7)", "b not in (0, 3)"]),
    )  # fmt: skip
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds("not ({})".format, inner),
            st.builds("({}) {} ({})".format, inner, st.sampled_from(["and", "or"]), inner),
        ),
        max_leaves=4,
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_booleans(), min_size=1, max_size=4),
    st.lists(
        st.tuples(_VALUES, _VALUES, _VALUES, st.sampled_from(["x", "y", "z", None])), min_size=1, max_size=12
    ),
)
def test_a_rule_sets_compiled_program_equals_evaluating_each_expression(
    expressions: list[str], rows: list[tuple[float, float, float, str | None]]
) -> None:
    from fraudstream.core.rules.program import Program

    names: dict[str, Any] = {"a": "number", "b": "number", "c": "number", "s": "string"}
    compiled = [compile_expression(e, names, rule="t") for e in expressions]
    a, b, c, s = zip(*rows)
    columns = Columns(a=np.array(a), b=np.array(b), c=np.array(c), s=pa.array(s, type=pa.string()))
    lists = ListStore()
    lists.declare("l", "device_id", ["x", "z"])
    lists.declare("empty", "device_id")
    with np.errstate(all="ignore"):
        expected = [e.evaluate(columns, lists).tolist() for e in compiled]
    assert Program(compiled).run(columns, lists).tolist() == expected
