"""List items that expire and snoozes, in the core: both go by each transaction's own time."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.core.batch import TransactionBatch
from fraudstream.core.engine import Engine, default_names
from fraudstream.core.features import FeatureConfig
from fraudstream.core.rules import ListStore, load_ruleset
from fraudstream.core.snoozes import Snooze, SnoozeTable

T0 = 1_780_000_000_000
HOUR = 3_600_000

RULES = """version: 1
lists:
  blocked_devices: {kind: device_id, values: []}
rules:
  - {code: blocked_device, description: blocked device, expression: "device_id in list('blocked_devices')",
     action: decline, weight: 100}
  - {code: big, description: big amount, expression: "amount > 1000", action: review, weight: 70}
  - {code: huge, description: huge amount, expression: "amount > 50000", action: decline, weight: 95}
  - {code: any_web, description: web, expression: "channel == 'web'", action: tag, weight: 5}
"""


def engine() -> Engine:
    return Engine(rules=load_ruleset(RULES, default_names(FeatureConfig())))


def batch(rows: list[dict[str, object]]) -> TransactionBatch:
    """One transaction per row: a user, a time (ms after T0), an amount and optional fields."""
    columns: dict[str, list[object]] = {
        "transaction_id": [],
        "timestamp": [],
        "user_id": [],
        "amount": [],
        "currency": [],
        "device_id": [],
        "card_fingerprint": [],
        "channel": [],
    }
    for i, row in enumerate(rows):
        columns["transaction_id"].append(f"t{i}-{row.get('at', 0)}")
        columns["timestamp"].append(T0 + int(row.get("at", 0)))  # type: ignore[call-overload]
        columns["user_id"].append(row.get("user", "u1"))
        columns["amount"].append(float(row.get("amount", 10.0)))  # type: ignore[arg-type]
        columns["currency"].append("USD")
        columns["device_id"].append(row.get("device"))
        columns["card_fingerprint"].append(row.get("card"))
        columns["channel"].append(row.get("channel"))
    return TransactionBatch.from_pydict(columns)


# --- lists -------------------------------------------------------------------------------------


def test_an_expired_list_item_stops_matching_by_the_transactions_time_not_a_clock() -> None:
    scorer = engine()
    scorer.update_list("blocked_devices", ["d1", "d2"], {"d1": T0 + HOUR})
    decided = scorer.score(
        batch(
            [
                {"device": "d1", "at": HOUR - 1},  # before the expiry: blocked
                {"device": "d1", "at": HOUR},  # at the expiry: no longer
                {"device": "d2", "at": HOUR},  # never expires
                {"device": "d3", "at": 0},
            ]
        )
    )
    assert decided.decisions == ["decline", "approve", "decline", "approve"]
    assert [decided.rules_hit(i) for i in range(4)] == [["blocked_device"], [], ["blocked_device"], []]


def test_list_expiries_decide_alike_whatever_the_batching() -> None:
    rows = [{"device": "d1", "at": k * HOUR // 4, "user": f"u{k}"} for k in range(8)]
    whole, parts = engine(), engine()
    for scorer in (whole, parts):
        scorer.update_list("blocked_devices", ["d1"], {"d1": T0 + HOUR})
    together = whole.score(batch(rows)).decisions
    one_by_one = [parts.score(batch([row])).decisions[0] for row in rows]
    assert together == one_by_one == ["decline"] * 4 + ["approve"] * 4


def test_list_items_keep_their_expiries_through_add_remove_snapshot_and_purge() -> None:
    lists = ListStore()
    lists.declare("l", "device_id")
    lists.add("l", ["a", "b"], {"a": 100})
    lists.add("l", ["c"], {"c": 300})
    assert lists.expiries("l") == {"a": 100, "c": 300}
    lists.add("l", ["a"])  # added again without an expiry: it no longer expires
    assert lists.expiries("l") == {"c": 300}
    lists.add("l", ["b"], {"b": 50})
    copy = ListStore.from_dict(lists.to_dict())
    assert copy.get("l").to_pylist() == ["a", "b", "c"]
    assert copy.expiries("l") == {"b": 50, "c": 300}
    assert copy.purge("l", 200) == ["b"]
    assert copy.get("l").to_pylist() == ["a", "c"]
    assert copy.expiries("l") == {"c": 300}
    scorer = engine()
    scorer.update_list("blocked_devices", ["d1"], {"d1": T0 + HOUR})
    restored = engine()
    restored.restore(scorer.snapshot())
    assert restored.lists.expiries("blocked_devices") == {"d1": T0 + HOUR}


# --- snoozes -----------------------------------------------------------------------------------


def test_a_snooze_silences_exactly_its_rule_for_its_entity_until_its_time() -> None:
    scorer = engine()
    scorer.set_snoozes(SnoozeTable([Snooze("s1", "card", "c1", "big", T0 + HOUR, "known customer")]))
    decided = scorer.score(
        batch(
            [
                {"card": "c1", "amount": 2000, "at": 0},  # silenced: approve
                {"card": "c2", "amount": 2000, "at": 0},  # another card: review
                {"card": "c1", "amount": 2000, "at": HOUR},  # at until: review again
                {"card": "c1", "amount": 60000, "at": 0},  # another rule (huge) still declines
                {"card": "c1", "amount": 10, "at": 0, "channel": "web"},  # no hit of its rule
            ]
        )
    )
    assert decided.decisions == ["approve", "review", "review", "decline", "approve"]
    records = decided.to_records()
    assert records[0]["rules"] == []
    assert records[0]["shadow_rules"] == ["big"]
    assert records[0]["snoozes"] == ["s1"]
    assert records[0]["score"] == 0
    assert [r["snoozes"] for r in records[1:]] == [[], [], ["s1"], []]
    assert records[3]["rules"] == ["huge"]
    assert records[3]["shadow_rules"] == ["big"]
    snoozed = [r for r in records[0]["reasons"] if r["kind"] == "snooze"]  # type: ignore[union-attr]
    assert len(snoozed) == 1
    assert snoozed[0]["text"].startswith("snoozed: rule big for card c1")
    assert snoozed[0]["text"].endswith("(known customer)")
    assert records[4]["rules"] == ["any_web"]
    assert records[4]["snoozes"] == []


def test_a_review_snooze_turns_review_into_approve_but_never_a_decline() -> None:
    scorer = engine()
    scorer.set_snoozes(SnoozeTable([Snooze("s2", "user", "u1", None, T0 + HOUR)]))
    decided = scorer.score(
        batch(
            [
                {"user": "u1", "amount": 2000},  # review → approve
                {"user": "u1", "amount": 60000},  # decline stays
                {"user": "u2", "amount": 2000},  # another user: review
                {"user": "u1", "amount": 2000, "at": HOUR + 1},  # after until: review
            ]
        )
    )
    assert decided.decisions == ["approve", "decline", "review", "review"]
    assert decided.is_alert.tolist() == [False, True, True, True]
    records = decided.to_records()
    assert [r["snoozes"] for r in records] == [["s2"], [], [], []]
    assert records[0]["rules"] == ["big"]  # the rule still hit and scored; the decision is approve
    assert records[0]["reasons"][-1]["text"].startswith("snoozed: review decisions for user u1")  # type: ignore[index]


def test_snoozes_look_up_entities_once_per_batch_and_ignore_rules_not_enabled() -> None:
    table = SnoozeTable(
        [
            Snooze("a", "device", "d1", "big", T0 + HOUR),
            Snooze("b", "device", "d1", "no_such_rule", T0 + HOUR),
            Snooze("c", "ip", "1.2.3.4", None, T0 + HOUR),
        ]
    )
    events = batch([{"device": "d1", "amount": 2000}, {"device": "d9", "amount": 2000}])
    match = table.match(events, ("blocked_device", "big"))
    assert match is not None
    assert [s.id for s in match.snoozes] == ["a", "b"]  # the ip is not in the batch
    assert match.rules.tolist() == [1, -2]
    assert np.array_equal(match.rows, [[True, False], [True, False]])
    assert table.match(batch([{"device": "d9"}]), ("big",)) is None


SNOOZES = st.tuples(
    st.sampled_from(["user", "device"]),
    st.integers(0, 4),
    st.sampled_from([None, "big", "huge"]),
    st.integers(0, 10),
)
ROWS = st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 10))


@settings(max_examples=60, deadline=None)
@given(snoozes=st.lists(SNOOZES, max_size=12), rows=st.lists(ROWS, min_size=1, max_size=25))
def test_snooze_matches_equal_a_row_by_row_reference(
    snoozes: list[tuple[str, int, str | None, int]], rows: list[tuple[int, int, int]]
) -> None:
    """Several snoozes per entity, of both kinds, against each row's own check of each snooze."""
    table = SnoozeTable(
        [Snooze(f"s{i}", kind, f"{kind[0]}{e}", rule, T0 + until * HOUR) for i, (kind, e, rule, until) in
         enumerate(snoozes)]
    )  # fmt: skip
    events = batch([{"user": f"u{u}", "device": f"d{d}", "at": at * HOUR} for u, d, at in rows])
    match = table.match(events, ("big", "huge"))
    expected = {
        (s.id, r)
        for s in table.snoozes
        for r, (u, d, at) in enumerate(rows)
        if s.entity_id == (f"u{u}" if s.entity_kind == "user" else f"d{d}") and T0 + at * HOUR < s.until_ms
    }
    found = (
        set() if match is None else {(match.snoozes[k].id, int(r)) for k, r in zip(*np.nonzero(match.rows))}
    )
    assert found == expected
    if match is not None:
        assert match.rules.tolist() == [{None: -1, "big": 0, "huge": 1}[s.rule] for s in match.snoozes]
