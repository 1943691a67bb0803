"""The demo's simulated traffic: one world of people, so a restarted demo continues their histories."""

from __future__ import annotations

import dataclasses

import pyarrow as pa

from fraudstream.config import DEMO_CARD_KEY
from fraudstream.core.batch import TransactionBatch
from fraudstream.core.engine import Engine
from fraudstream.core.schema import Validator
from fraudstream.demo import traffic_config
from fraudstream.reference import load_reference
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import records_for_http


def _batch(config: SimulationConfig, after_ms: int) -> TransactionBatch:
    """A chunk of traffic as the demo sends it: labels off, its clock moved on by ``after_ms``."""
    table = simulate(config).drop_columns(["is_fraud", "fraud_scenario"])
    times = table.column("timestamp").cast(pa.int64()).to_numpy() + after_ms
    table = table.set_column(1, "timestamp", pa.array(times, pa.timestamp("ms", tz="UTC")))
    validator = Validator(load_reference(), DEMO_CARD_KEY.encode())
    result = validator.records(records_for_http(table), received_at_ms=0)
    assert not result.errors
    return result.batch


def _alert_shares(first: SimulationConfig, second: SimulationConfig) -> tuple[float, float]:
    """Alert shares of a run, then of a second run scored by the same engine (a restart on saved state)."""
    engine = Engine()
    before = float(engine.score(_batch(first, 0)).is_alert.mean())
    after = float(engine.score(_batch(second, first.duration_ms)).is_alert.mean())
    return before, after


def test_a_restarted_demo_flags_its_traffic_as_often_as_before() -> None:
    first, second = traffic_config(101, rate=20.0), traffic_config(202, rate=20.0)
    before, after = _alert_shares(first, second)
    assert 0.01 < before < 0.1
    assert after < 1.4 * before, (before, after)
    # What a new world per run did: every user "moved" and "changed device" at the restart.
    unrelated = [dataclasses.replace(c, population_seed=None) for c in (first, second)]
    before, after = _alert_shares(*unrelated)
    assert after > 2 * before, (before, after)
