"""Rule descriptions are checked templates: only known names, plainly formatted, in reasons of bounded
length whatever a rule author writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudstream.core.engine import default_names
from fraudstream.core.explain import MAX_REASON_CHARS, describe_feature
from fraudstream.core.features import FeatureConfig
from fraudstream.core.rules import load_ruleset
from fraudstream.core.rules.template import MAX_FORMAT_SIZE, compile_template
from fraudstream.errors import RuleError

NAMES = default_names(FeatureConfig())


@pytest.mark.parametrize(
    ("description", "reason"),
    [
        ("Amount {amount:>5000000}", "uses {amount:>5000000}: width 5000000 is over 20"),
        ("Amount {amount:.30000f}", "precision 30000 is over 20"),
        ("Amount {amount:,.21f}", "precision 21 is over 20"),
        ("Amount {amount:021.2f}", "width 21 is over 20"),
        ("Amount {amount:>" + "9" * 5000 + "}", "width 99999999999… is over 20"),
        ("{merchant_id:*^400}", "width 400 is over 20"),
        ("{amount.__class__}", "attributes and indexes are not allowed"),
        ("{amount.__class__.__mro__}", "attributes and indexes are not allowed"),
        ("{device_id[0]}", "attributes and indexes are not allowed"),
        ("{x[0]}", "attributes and indexes are not allowed"),
        ("{amount!r}", "conversions (!r, !s, !a) are not allowed; write {amount}"),
        ("{amount!s:>10}", "conversions (!r, !s, !a) are not allowed"),
        ("{amount:{amount}}", "is not a format a description can use"),
        ("{amount:q}", "'q' is not a format a description can use"),
        ("{amout:,.2f}", "{amout:,.2f}, which is not a known name; did you mean amount"),
        ("{}", "a placeholder names a field or feature"),
        ("{0}", "a placeholder names a field or feature"),
        ("Amount } over", "not a valid template"),
        ("Amount {amount", "not a valid template"),
    ],
)
def test_an_unsafe_or_unknown_placeholder_is_refused_naming_the_rule_and_the_problem(
    description: str, reason: str
) -> None:
    with pytest.raises(RuleError) as refused:
        compile_template(description, NAMES, rule="big")
    assert refused.value.rule == "big"
    assert refused.value.reason.startswith("description ")
    assert reason in refused.value.reason
    assert len(str(refused.value)) < 300  # a long placeholder is shown cut short


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Amount {amount:,.2f} is over 10,000", "Amount 12,345.50 is over 10,000"),
        ("{amount:>20,.2f}|", "           12,345.50|"),
        ("{amount:.20f}", "12345.50000000000000000000"),
        ("{terminal.fraud_rate_7d:.0%} fraud", "25% fraud"),
        ("{user.count_30s:.0f} in 30 s, {user.count_30s}", "7 in 30 s, 7.0"),
        ("{merchant_id:.0f} falls back to the text", "m-1 falls back to the text"),
        ("{device_id} missing", "unknown missing"),
        ("braces {{amount}} stay literal", "braces {amount} stay literal"),
        ("no placeholder at all", "no placeholder at all"),
    ],
)
def test_an_allowed_template_fills_as_the_format_language_says(description: str, expected: str) -> None:
    values = {"amount": 12345.5, "terminal.fraud_rate_7d": 0.25, "user.count_30s": 7.0, "merchant_id": "m-1"}
    assert compile_template(description, NAMES).fill(values) == expected


def test_width_and_precision_up_to_the_bound_are_allowed() -> None:
    bound = MAX_FORMAT_SIZE
    filled = compile_template(f"{{amount:>{bound}.{bound}g}}", NAMES).fill({"amount": 1.0})
    assert len(filled) == bound


def test_a_reason_is_cut_at_the_maximum_whatever_the_template_or_the_values() -> None:
    long_text = compile_template("x" * 20_000, NAMES).fill({})
    long_value = compile_template("device {device_id} is blocked", NAMES).fill({"device_id": "d" * 50_000})
    many = compile_template("{amount:>20}" * 1_000, NAMES).fill({"amount": 1.0})
    for reason in (long_text, long_value, many):
        assert len(reason) == MAX_REASON_CHARS
        assert reason.endswith("…")
    assert long_value.startswith("device ddd")
    assert len(describe_feature("user.count_30s", 1e300)) <= MAX_REASON_CHARS


def test_the_default_rule_set_and_its_shipped_file_load() -> None:
    import fraudstream.core.rules as rules_package

    shipped = Path(rules_package.__file__).with_name("default.yaml").read_text(encoding="utf-8")
    loaded = load_ruleset(shipped, NAMES)
    assert {r.code for r in loaded.rules} >= {"large_amount", "amount_spike", "geo_velocity"}
    assert loaded.description_names("amount_spike") == ("amount", "user.amount_ratio_30d")
