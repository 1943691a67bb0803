"""The worker's output messages built a batch at a time are, byte for byte, the ones it built per row.

The reference below is the per-row construction the worker used before (``to_records``,
``key_feature_rows`` and ``to_rows``, nested and serialized one row at a time).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudstream.core.batch import STRING_FIELDS, TransactionBatch
from fraudstream.core.engine import DecisionBatch, Engine, EngineConfig, default_names
from fraudstream.core.features import FeatureConfig
from fraudstream.core.models import Model, fit_model
from fraudstream.core.policy import PolicyConfig
from fraudstream.core.rules import RuleSet, load_ruleset
from fraudstream.runtime.kafka.payloads import SCHEMA_VERSION, decision_payloads

START = 1_767_225_600_000
MINUTE = 60_000

#: Rules that act in every way, describe rows with their free text, one in shadow; most rows hit none.
RULES_YAML = """
version: 7
lists:
  odd_devices: {kind: device_id, values: ['d"1', 'd\\\\2']}
rules:
  - code: big_amount
    description: "Amount {amount:,.2f} at {location} ({merchant_id})"
    expression: "amount > 1000"
    action: review
    weight: 60
  - code: odd_device
    description: "Device {device_id} is odd"
    expression: "device_id in list('odd_devices')"
    action: decline
    weight: 95
  - code: tiny_amount
    description: "Amount {amount} is tiny"
    expression: "amount < 1"
    action: challenge
    weight: 10
  - code: busy_user
    description: "{user.count_30s:.0f} in 30 s"
    expression: "user.count_30s >= 3"
    action: tag
    weight: 20
  - code: foreign_currency
    description: "Paid in {currency}"
    expression: "currency != 'USD'"
    action: decline
    weight: 100
    shadow: true
"""

#: Characters JSON writers get wrong: quotes, backslashes, control characters, non-ASCII, separators.
AWKWARD = '"\\/\n\r\t\b\f\x00\x01\x1f\x7f\u2028\u2029é中😀,:{}[]'
free_text = st.text(alphabet=st.one_of(st.sampled_from(AWKWARD), st.characters(codec="utf-8")), max_size=12)
ids = st.one_of(st.sampled_from(["t1", "t2", "same"]), free_text.filter(bool))
amounts = st.one_of(
    st.floats(min_value=1e-7, max_value=1e17),
    st.sampled_from([100.0, 450.0, 750.25, 1000.5, 0.1, 1e16, 12345.678901234]),
    st.integers(1, 5000).map(float),
)
coordinates = st.one_of(st.none(), st.floats(-90, 90), st.just(float("nan")))
attributes = st.one_of(
    st.none(), st.dictionaries(free_text, free_text, max_size=3).map(lambda d: orjson.dumps(d).decode())
)
OPTIONAL_TEXT = [
    name for name in STRING_FIELDS if name not in {"transaction_id", "user_id", "currency", "attributes"}
]


@st.composite
def batches(draw: st.DrawFn) -> TransactionBatch:
    n = draw(st.integers(1, 25))
    columns: dict[str, list[Any]] = {
        "transaction_id": draw(st.lists(ids, min_size=n, max_size=n)),
        "timestamp": draw(st.lists(st.integers(START, START + 30 * MINUTE), min_size=n, max_size=n)),
        "user_id": draw(
            st.lists(st.one_of(st.sampled_from(["u1", "u2"]), free_text), min_size=n, max_size=n)
        ),
        "amount": draw(st.lists(amounts, min_size=n, max_size=n)),
        "currency": draw(st.lists(st.one_of(st.just("USD"), free_text), min_size=n, max_size=n)),
    }
    # Optional fields: absent from the batch altogether, or present with some rows missing them.
    for name in draw(st.sets(st.sampled_from(OPTIONAL_TEXT))):
        values = st.one_of(st.none(), st.sampled_from(['d"1', "d\\2", "m1"]), free_text)
        columns[name] = draw(st.lists(values, min_size=n, max_size=n))
    for name in draw(st.sets(st.sampled_from(["lat", "lon"]))):
        columns[name] = draw(st.lists(coordinates, min_size=n, max_size=n))
    if draw(st.booleans()):
        columns["attributes"] = draw(st.lists(attributes, min_size=n, max_size=n))
    return TransactionBatch.from_pydict(columns)


@functools.cache
def rules() -> RuleSet:
    return load_ruleset(RULES_YAML, default_names(FeatureConfig()))


@functools.cache
def model(version: str = 'champion "1" ü', trees: int = 10) -> Model:
    rng = np.random.default_rng(5)
    n = 400
    amount = rng.lognormal(5, 1.5, n)
    history = TransactionBatch.from_pydict(
        {
            "transaction_id": [f"h{i}" for i in range(n)],
            "timestamp": (START - n * MINUTE + np.arange(n) * MINUTE).tolist(),
            "user_id": [f"u{k}" for k in rng.integers(0, 5, n)],
            "amount": amount.round(2).tolist(),
            "currency": ["USD"] * n,
        }
    )
    features = Engine().score(history).features
    return fit_model(
        "lightgbm",
        features.values,
        (amount > 300).astype(np.int8),  # flags rows no rule does (below 1000)
        features.names,
        version=version,
        created="2026-11-29T00:00:00Z",
        training_fingerprint="test",
        params={"num_trees": trees},
    )


def reference_payloads(
    decisions: DecisionBatch, partitions: Sequence[int], offsets: Sequence[int]
) -> list[bytes]:
    """The messages as the worker built them per row before ``decision_payloads``."""
    payloads = []
    rows = zip(
        decisions.to_records(), decisions.key_feature_rows(), decisions.batch.to_rows(), partitions, offsets
    )
    for record, features, transaction, partition, offset in rows:
        record["shadow_scores"] = {
            version: float(probability[len(payloads)])
            for version, probability in decisions.shadow_probability.items()
        }
        record["features"] = features
        message = {
            "schema_version": SCHEMA_VERSION,
            "transaction": transaction,
            "decision": record,
            "source": {"partition": partition, "offset": offset},
        }
        payloads.append(orjson.dumps(message))
    return payloads


#: Bands low enough that the small model alone moves rows that hit no rule out of "approve".
POLICY = PolicyConfig(challenge_threshold=30, review_threshold=50, decline_threshold=90)


def score(batch: TransactionBatch, *, with_model: bool) -> DecisionBatch:
    """Decided by the rules alone, or by the model with two challengers in shadow."""
    challengers = [model("challenger-a", 3), model('challenger "b"', 6)] if with_model else []
    engine = Engine(
        EngineConfig(policy=POLICY),
        rules=rules(),
        model=model() if with_model else None,
        challengers=challengers,
    )
    return engine.score(batch)


def sources(n: int) -> tuple[list[int], list[int]]:
    return [i % 3 for i in range(n)], [10**12 + i for i in range(n)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(), with_model=st.booleans())
def test_batch_payloads_are_byte_identical_to_the_per_row_messages(
    batch: TransactionBatch, with_model: bool
) -> None:
    decisions = score(batch, with_model=with_model)
    partitions, offsets = sources(len(batch))
    assert decision_payloads(decisions, partitions, offsets) == reference_payloads(
        decisions, partitions, offsets
    )


def test_a_batch_with_every_kind_of_row_gives_the_per_row_messages() -> None:
    n = 40
    amounts = {0: 5000.0, 3: 450.0, 11: 0.5, 22: 0.5}  # rule hits; 450: the model's alone
    batch = TransactionBatch.from_pydict(
        {
            "transaction_id": [f't"{i}\\é\n' for i in range(n)],
            "timestamp": [START + i * 1000 for i in range(n)],
            "user_id": [f"u{i % 8}" for i in range(n)],
            "amount": [amounts.get(i % 25, 20.0 + i) for i in range(n)],
            "currency": ["EUR" if i % 9 == 4 else "USD" for i in range(n)],
            "device_id": ['d"1' if i % 13 == 0 else None for i in range(n)],
            "location": ['Saint-"Denis"\\\x01\u2028' if i % 2 else None for i in range(n)],
            "lat": [None if i % 3 else 48.9 for i in range(n)],
            "attributes": ['{"note": "a \\"quoted\\" \\\\ text"}'] * n,
        }
    )
    decisions = score(batch, with_model=True)
    # The batch holds the common row and every kind of row the builder treats apart.
    hits, shadow = decisions.rule_hits.hits, decisions.rule_hits.shadow
    explained = np.zeros(n, dtype=np.bool_)
    explained[decisions.explained_rows] = True
    acting = hits[~shadow].any(axis=0)
    assert (~hits.any(axis=0) & ~explained).any()
    assert (hits[shadow].any(axis=0) & ~acting).any()
    assert (explained & ~hits.any(axis=0)).any()
    assert acting.any()
    assert decisions.is_alert.any()
    assert set(decisions.decisions) == {"approve", "challenge", "review", "decline"}
    partitions, offsets = sources(n)
    built = decision_payloads(decisions, partitions, offsets)
    assert built == reference_payloads(decisions, partitions, offsets)
    message = orjson.loads(built[13])
    assert message["transaction"]["device_id"] == 'd"1'
    assert "odd_device" in message["decision"]["rules"]
    shadow = message["decision"]["shadow_scores"]
    assert list(shadow) == ["challenger-a", 'challenger "b"']
    assert shadow["challenger-a"] == float(decisions.shadow_probability["challenger-a"][13])


def test_an_empty_batch_has_no_payloads() -> None:
    decisions = score(TransactionBatch.empty(), with_model=False)
    assert decision_payloads(decisions, [], []) == []
