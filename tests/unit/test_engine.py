"""The engine facade: decisions, reasons, batching, snapshots, labels and models end to end."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factories import fraud_labels, one_event
from fraudstream.core.batch import TransactionBatch
from fraudstream.core.engine import KEY_FEATURES, DecisionBatch, Engine, EngineConfig, default_names
from fraudstream.core.features import FeatureConfig
from fraudstream.core.models import fit_model
from fraudstream.core.policy import PolicyConfig
from fraudstream.core.replay import replay
from fraudstream.core.rules import load_ruleset
from fraudstream.errors import ModelError

MINUTE = 60_000
DAY = 86_400_000


def stream(seed: int, n: int, users: int = 6) -> tuple[TransactionBatch, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.exponential(40_000, n)).astype(np.int64) + 1_760_000_000_000
    fraud = rng.random(n) < 0.1
    amount = np.where(fraud, rng.uniform(2_000, 20_000, n), rng.lognormal(3.5, 0.6, n)).round(2)
    batch = TransactionBatch.from_pydict(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "timestamp": ts.tolist(),
            "user_id": [f"u{k}" for k in rng.integers(0, users, n)],
            "amount": amount.tolist(),
            "currency": ["USD"] * n,
            "terminal_id": [f"T{k}" for k in rng.integers(0, 3, n)],
            "merchant_id": [f"m{k}" for k in rng.integers(0, 4, n)],
            "device_id": [f"d{k}" for k in rng.integers(0, 9, n)],
        }
    )
    return batch, fraud


def trained_model(seed: int = 1, kind: str = "lightgbm", params: dict[str, object] | None = None) -> object:
    batch, fraud = stream(seed, 600, users=20)
    features = Engine().score(batch).features
    return fit_model(
        kind,
        features.values,
        fraud.astype(np.int8),
        features.names,
        version="test-1",
        created="2026-11-24T00:00:00Z",
        training_fingerprint="test",
        params={"num_trees": 20} if params is None else params,
    )


def test_a_large_jump_over_the_users_average_is_flagged_with_a_readable_reason() -> None:
    engine = Engine()
    first = engine.score(one_event(0, 50.0))
    second = engine.score(one_event(MINUTE, 5000.0))
    assert first.decisions == ["approve"]
    assert second.decisions[0] in {"review", "decline"}
    assert bool(second.is_alert[0])
    reasons = second.reasons(0)
    assert reasons[0].code == "amount_spike"
    assert "5,000.00" in reasons[0].text or "100" in reasons[0].text


def test_six_transactions_in_thirty_seconds_trip_high_velocity() -> None:
    engine = Engine()
    decisions = [engine.score(one_event(5 * 1000 * i, 20.0, user_id="burst")) for i in range(6)]
    assert "high_velocity" not in decisions[4].rules_hit(0)
    assert "high_velocity" in decisions[5].rules_hit(0)


def test_new_york_to_tokyo_in_ten_minutes_trips_geo_velocity() -> None:
    engine = Engine()
    engine.score(one_event(0, 40.0, user_id="traveller", lat=40.71, lon=-74.01))
    tokyo = engine.score(one_event(10 * MINUTE, 40.0, user_id="traveller", lat=35.68, lon=139.69))
    assert "geo_velocity" in tokyo.rules_hit(0)
    assert tokyo.decisions[0] in {"review", "decline"}


def test_a_single_event_is_a_batch_of_one_and_gives_the_decisions_of_a_whole_batch() -> None:
    batch, _ = stream(3, 120)
    model = trained_model()
    whole = Engine(model=model).score(batch)
    engine = Engine(model=model)
    singles = [engine.score(batch.slice(i, i + 1)) for i in range(len(batch))]
    assert [int(d.score[0]) for d in singles] == whole.score.tolist()
    assert list(itertools.chain.from_iterable(d.decisions for d in singles)) == whole.decisions
    assert [d.reasons(0) for d in singles] == [whole.reasons(i) for i in range(len(batch))]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000), cuts=st.lists(st.integers(1, 149), max_size=6))
def test_splitting_into_batches_gives_identical_decisions(seed: int, cuts: list[int]) -> None:
    batch, _ = stream(seed, 150)
    whole = Engine().score(batch)
    engine = Engine()
    bounds = [0, *sorted(set(cuts)), 150]
    parts = [engine.score(batch.slice(a, b)) for a, b in itertools.pairwise(bounds)]
    assert np.concatenate([p.score for p in parts]).tolist() == whole.score.tolist()
    assert list(itertools.chain.from_iterable(p.decisions for p in parts)) == whole.decisions


def test_snapshot_restore_continue_equals_an_uninterrupted_run_with_lists() -> None:
    batch, _ = stream(9, 200)
    straight = Engine()
    straight.update_list("blocked_devices", ["d3"])
    expected = straight.score(batch).score.tolist()

    first = Engine()
    first.update_list("blocked_devices", ["d3"])
    head = first.score(batch.slice(0, 80)).score.tolist()
    second = Engine()
    second.restore(first.snapshot())
    assert head + second.score(batch.slice(80, 200)).score.tolist() == expected


def test_a_blocked_device_is_declined_from_the_next_batch_without_reloading_rules() -> None:
    engine = Engine()
    assert engine.score(one_event(0, 10.0, device_id="bad-device")).decisions == ["approve"]
    engine.update_list("blocked_devices", ["bad-device"])
    assert engine.score(one_event(MINUTE, 10.0, device_id="bad-device")).decisions == ["decline"]


def test_shadow_rules_are_recorded_and_never_act() -> None:
    names = default_names(FeatureConfig())
    rules = load_ruleset(
        "version: 1\nrules:\n"
        "  - {code: any_amount, description: 'any amount', expression: 'amount > 0', action: decline,"
        " weight: 100, shadow: true}\n",
        names,
    )
    decisions = Engine(rules=rules).score(one_event(0, 10.0))
    assert decisions.decisions == ["approve"]
    assert decisions.rules_hit(0, shadow=True) == ["any_amount"]
    assert decisions.rules_hit(0) == []


def test_model_reasons_explain_non_approved_transactions_only() -> None:
    model = trained_model()
    engine = Engine(EngineConfig(policy=PolicyConfig(review_threshold=30, decline_threshold=95)), model=model)
    batch, _ = stream(4, 300)
    decisions = engine.score(batch)
    assert len(decisions.explained_rows) > 0
    assert set(decisions.explained_rows.tolist()) == set(
        np.flatnonzero(decisions.decision_code != 0).tolist()
    )
    for row in decisions.explained_rows[:5]:
        model_reasons = [r for r in decisions.reasons(int(row)) if r.kind == "model"]
        assert all(r.contribution > 0 and r.text for r in model_reasons)


MODELS_OF_EVERY_KIND = {
    "lightgbm": ("lightgbm", None),
    "lightgbm calibrated": ("lightgbm", {"num_trees": 20, "calibration": [0.6, -1.5]}),
    "logistic": ("logistic", {}),
    "random_forest": ("random_forest", {"n_estimators": 20}),
    "isolation_forest": ("isolation_forest", {"n_estimators": 20}),
}


@pytest.mark.parametrize("model_name", MODELS_OF_EVERY_KIND)
def test_model_reasons_are_score_points_adding_up_to_the_models_share_of_the_score(model_name: str) -> None:
    """Model reasons speak the score's language (they had read in log-odds, or the isolation
    forest's interquartile ranges, up to 21,768 on a 0-100 score): each within [-100, 100], a row's
    points add up to 100 x (probability - the model's baseline), the same baseline for every row,
    and those raising the risk never to more than 100 x probability, which is at most the score."""
    kind, params = MODELS_OF_EVERY_KIND[model_name]
    engine = Engine(
        EngineConfig(policy=PolicyConfig(review_threshold=30, decline_threshold=95)),
        model=trained_model(1, kind, params),
    )
    decisions = engine.score(stream(4, 300)[0])
    rows = decisions.explained_rows
    assert len(rows) > 10
    points = decisions.contributions
    probability = decisions.probability[rows].astype(np.float64)
    assert np.all(np.abs(points) <= 100)
    assert np.all(np.where(points > 0, points, 0).sum(axis=1) <= 100 * probability + 1e-3)
    # The isolation forest gives no points to a row no more unusual than its median training row.
    counted = points.any(axis=1) if kind == "isolation_forest" else np.ones(len(rows), dtype=bool)
    assert counted.sum() > 10
    baseline = 100 * probability[counted] - points[counted].sum(axis=1)
    assert baseline.min() >= 0
    assert np.ptp(baseline) < 1e-3, baseline
    for k, row in enumerate(rows.tolist()):
        shown = [r.contribution for r in decisions.reasons(row) if r.kind == "model"]
        assert all(0 < c <= 100 for c in shown)
        assert sum(shown) <= 100 * probability[k] + 1e-3 <= int(decisions.score[row]) + 0.5


@settings(max_examples=20, deadline=None)
@given(picks=st.lists(st.integers(0, 299), min_size=1, max_size=40))
def test_reasons_of_many_rows_at_once_are_each_rows_own_in_any_order(picks: list[int]) -> None:
    decisions = _explained_decisions()
    rows = sorted(set(np.flatnonzero(decisions.rule_hits.hits.any(axis=0)).tolist()) | set(picks))
    rows = rows[::-1] + picks  # any order, repeats too
    together = decisions.reasons_rows(rows)
    assert together == [decisions.reasons(row) for row in rows]
    assert any(r.kind == "rule" for found in together for r in found)
    for row, found in zip(rows, together):
        rules = [r for r in found if r.kind == "rule"]
        model = [r for r in found if r.kind == "model"]
        assert found == rules + model  # rules first, then the model's features
        assert {r.code for r in rules} == set(decisions.rules_hit(row))
        assert [r.contribution for r in model] == sorted((r.contribution for r in model), reverse=True)
        assert len(found) <= max(decisions.max_reasons, len(rules))
        assert bool(model) <= (row in set(decisions.explained_rows.tolist()))


@functools.lru_cache(maxsize=1)
def _explained_decisions() -> DecisionBatch:
    engine = Engine(
        EngineConfig(policy=PolicyConfig(review_threshold=30, decline_threshold=95)), model=trained_model()
    )
    return engine.score(stream(4, 300)[0])


def test_key_feature_values_read_with_at_most_four_decimals() -> None:
    """Rounded after widening to float64: a float32 rounded to 4 places would print as
    40.176300048828125 in the JSON a person reads."""
    decisions = _explained_decisions()
    for found in decisions.key_feature_rows():
        for name, value in found.items():
            assert value is None or len(repr(value).partition(".")[2]) <= 4, (name, value)


def test_the_feature_values_that_mattered_leave_out_unknown_ones_the_model_leaned_on() -> None:
    model = trained_model()
    engine = Engine(EngineConfig(policy=PolicyConfig(review_threshold=30, decline_threshold=95)), model=model)
    batch, _ = stream(4, 300)  # no card, IP or place here: those features are unknown on every row
    decisions = engine.score(batch)
    assert len(decisions.explained_rows)
    row = int(decisions.explained_rows[0])
    values = decisions.features.values[row]
    index = decisions.features.index
    names = decisions.model_features
    unknown = next(j for j, n in enumerate(names) if np.isnan(values[index[n]]))
    known = next(j for j, n in enumerate(names) if n not in KEY_FEATURES and not np.isnan(values[index[n]]))
    # The model leaning hardest on an unknown feature, then on a known one.
    leaning = np.zeros((len(decisions.explained_rows), len(names)))
    leaning[0, unknown], leaning[0, known] = 2.0, 1.0
    decisions._contributions = leaning
    shown = decisions.key_feature_rows([row])[0]
    assert names[unknown] not in shown
    assert shown[names[known]] == round(float(values[index[names[known]]]), 4)
    assert [r.code for r in decisions.reasons(row) if r.kind == "model"] == [f"model:{names[known]}"]


def test_a_model_needing_unknown_features_is_refused_with_the_names() -> None:
    model = fit_model(
        "logistic",
        np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32),
        (np.arange(200) % 7 == 0).astype(np.int8),
        ("amount", "user.count_99s"),
        version="bad",
        created="2026-11-24T00:00:00Z",
        training_fingerprint="x",
    )
    with pytest.raises(ModelError, match=r"user\.count_99s"):
        Engine(model=model)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), delay=st.sampled_from([MINUTE, DAY, 5 * DAY]))
def test_no_label_from_the_future_changes_a_score(seed: int, delay: int) -> None:
    batch, fraud = stream(seed, 200)
    ts = batch.timestamp_ms
    labelled = np.flatnonzero(fraud)
    labels = fraud_labels(batch, labelled, ts[labelled] + delay)
    with_labels = np.concatenate([d.score for _, d in replay(Engine(), batch, labels, batch_size=37)])
    rates = np.concatenate(
        [
            d.features.column("terminal.fraud_count_28d")
            for _, d in replay(Engine(), batch, labels, batch_size=37)
        ]
    )
    # Reference: the fraud count of each event's terminal, counting only labels known before it.
    label_times = ts[labelled] + delay
    terminals = batch.strings("terminal_id").to_pylist()
    for i in range(len(batch)):
        known = [j for j, lt in zip(labelled, label_times) if lt <= ts[i] and terminals[j] == terminals[i]]
        assert rates[i] == len([j for j in known if ts[i] - ts[j] < 20 * DAY])
    without = np.concatenate([d.score for _, d in replay(Engine(), batch, None, batch_size=37)])
    first_known = label_times.min() if len(label_times) else np.inf
    early = ts < first_known
    assert with_labels[early].tolist() == without[early].tolist()


def test_zero_amounts_are_scored_and_a_zero_mean_makes_no_feature_infinite() -> None:
    """0.00 authorizations (card verification) and then a purchase: the user's mean amount is 0."""
    amounts = [0.0, 0.0, 500.0, 0.0]
    batch = TransactionBatch.from_pydict(
        {
            "transaction_id": [f"v{i}" for i in range(4)],
            "timestamp": [1_760_000_000_000 + i * MINUTE for i in range(4)],
            "user_id": ["u"] * 4,
            "amount": amounts,
            "currency": ["USD"] * 4,
        }
    )
    decisions = Engine().score(batch)
    assert [r["transaction_id"] for r in decisions.to_records()] == ["v0", "v1", "v2", "v3"]
    assert not np.isinf(decisions.features.values).any()
    assert all(0 <= r["score"] <= 100 for r in decisions.to_records())
