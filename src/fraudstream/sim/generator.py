"""Labelled, realistic card-payment traffic: a population, legitimate habits and named fraud scenarios.

Everything is drawn from one seeded generator with NumPy, a column at a time, so the same seed always
gives the same table and a million events take seconds. Each row carries ``is_fraud`` and
``fraud_scenario`` (empty for legitimate traffic); `with_label_times` adds when each fraud became
known (``label_time``, null when never reported). The world is in `fraudstream.sim.world`,
legitimate habits in `fraudstream.sim.legitimate`, fraud in `fraudstream.sim.scenarios`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.errors import ConfigError
from fraudstream.sim.labels import label_times
from fraudstream.sim.legitimate import legitimate
from fraudstream.sim.scenarios import DEFAULT_MIX, DRIFT_STARTS, SCENARIOS, scenario_rows
from fraudstream.sim.world import CATEGORIES, DAY_MS, Population, Rows, Span, cities, concatenate

__all__ = [
    "DRIFT_STARTS",
    "SCENARIOS",
    "SimulationConfig",
    "iter_batches",
    "labels_for",
    "simulate",
    "simulate_scenarios",
    "with_label_times",
]


@dataclass(frozen=True)
class SimulationConfig:
    """How much traffic, over how long, how much of it is fraud, and how much fraud is never reported."""

    count: int = 10_000
    seed: int = 7
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    duration_ms: int = 7 * DAY_MS
    fraud_rate: float = 0.01
    users: int | None = None
    merchants: int | None = None
    #: Draw the population (people, homes, cards, usual shops; merchants and their cities) from this
    #: seed instead of ``seed``: runs with different seeds then simulate other days of the same
    #: people. With ``population_seed == seed`` the population is the one ``seed`` alone gives.
    population_seed: int | None = None
    scenario_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    #: Share of fraud victims who never report it: their frauds never get a label.
    unreported_share: float = 0.15

    @property
    def n_users(self) -> int:
        return self.users or max(50, self.count // 40)

    @property
    def n_merchants(self) -> int:
        return self.merchants or max(20, self.count // 400)

    @property
    def span(self) -> Span:
        return Span(self.start_ms, self.duration_ms)


def simulate(config: SimulationConfig, progress: Callable[[str, int, int], None] | None = None) -> pa.Table:
    """A table of ``config.count`` transactions sorted by time, labelled with ``is_fraud`` and
    ``fraud_scenario``. ``progress(step, done, total)`` hears each step (drawing the people, the fraud
    scenarios one by one, the legitimate traffic, building the table), a few calls in all.

    >>> table = simulate(SimulationConfig(count=2000, seed=1))
    >>> table.num_rows, 0 < sum(table.column("is_fraud").to_pylist()) < 200
    (2000, True)
    """
    say = progress or _silent
    say(f"drawing {config.n_users:,} people and {config.n_merchants:,} merchants", 0, 0)
    rng, pop = _world(config)
    n_fraud = round(config.count * config.fraud_rate)
    weights = np.array([config.scenario_weights.get(s, 0.0) for s in SCENARIOS])
    parts: list[Rows] = []
    if n_fraud and weights.sum() > 0:
        per = np.floor(n_fraud * weights / weights.sum()).astype(int)
        for name, k in zip(SCENARIOS, per.tolist()):
            if k > 0:
                say("simulating fraud scenarios", len(parts), int((per > 0).sum()))
                parts.append(scenario_rows(name, k, config.span, pop, rng))
        say("simulating fraud scenarios", len(parts), len(parts))
    made = sum(len(p["timestamp"]) for p in parts)
    say(f"simulating {max(0, config.count - made):,} legitimate payments", 0, 0)
    parts.insert(0, legitimate(max(0, config.count - made), config.span, pop, rng))
    say("building the table", 0, 0)
    columns = concatenate(parts)
    order = np.argsort(columns["timestamp"], kind="stable")[: config.count]
    return _table({k: v[order] for k, v in columns.items()}, pop)


def _silent(step: str, done: int, total: int) -> None:
    """Progress that nobody hears."""


def simulate_scenarios(config: SimulationConfig, names: Sequence[str]) -> pa.Table:
    """Only the frauds of the named scenarios, ``config.count`` rows shared evenly among them and
    sorted by time, labelled as in `simulate`; no legitimate traffic (``fraud_rate`` and
    ``scenario_weights`` do not apply). The same seed draws the same people as `simulate`.

    >>> table = simulate_scenarios(SimulationConfig(count=300, seed=1), ["hacker"])
    >>> table.num_rows, set(table.column("fraud_scenario").to_pylist())
    (300, {'hacker'})
    >>> all(table.column("is_fraud").to_pylist())
    True
    """
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown or not names:
        raise ConfigError(
            f"unknown scenario {', '.join(unknown) or '(none)'}: choose from {', '.join(SCENARIOS)}"
        )
    rng, pop = _world(config)
    shares = np.full(len(names), config.count // len(names))
    shares[: config.count % len(names)] += 1
    # A scenario makes whole episodes, so at least its share: keep its share, in the order it made them.
    parts = [
        {k: v[:share] for k, v in scenario_rows(name, share, config.span, pop, rng).items()}
        for name, share in zip(names, shares.tolist())
    ]
    columns = concatenate(parts)
    order = np.argsort(columns["timestamp"], kind="stable")
    return _table({k: v[order] for k, v in columns.items()}, pop)


def _world(config: SimulationConfig) -> tuple[np.random.Generator, Population]:
    """The run's generator and its population (drawn from ``population_seed`` when that is set)."""
    rng = np.random.default_rng(config.seed)
    world = config.population_seed
    pop = Population.draw(
        config.n_users,
        config.n_merchants,
        rng if world is None or world == config.seed else np.random.default_rng(world),
    )
    return rng, pop


def _table(columns: Rows, pop: Population) -> pa.Table:
    """The rows as the transaction table users see (string ids, places, cards), built by Arrow's
    compute functions: a million rows of strings in a second."""
    names, lat, lon, countries, _ = cities()
    n = len(columns["timestamp"])
    user, merchant, city = columns["user"], columns["merchant"], columns["city"]
    # Online purchases have no physical place: location "Online", no coordinates.
    online = columns["channel"] == "online"
    scenario = pa.array(columns["scenario"], pa.string())
    terminal = merchant * 4 + (columns["timestamp"] // 7919) % 4
    # A compromised terminal is one device at the merchant: all its frauds go through terminal 0.
    terminal = np.where(columns["scenario"] == "compromised_terminal", merchant * 4, terminal)
    ip_octets = (user * 2654435761 + columns["device"]) % (2**24)
    octets = [(ip_octets >> shift) & 255 for shift in (16, 8, 0)]
    return pa.table(
        {
            "transaction_id": _numbered("sim-", np.arange(n)),
            "timestamp": pa.array(columns["timestamp"], pa.timestamp("ms", tz="UTC")),
            "user_id": _numbered("user-", user),
            "amount": pa.array(columns["amount"].astype(np.float64)),
            "currency": pa.array(np.full(n, "USD")),
            "merchant_id": _numbered("merchant-", merchant),
            "merchant_category": pa.array(CATEGORIES).take(pa.array(pop.merchant_category[merchant])),
            "terminal_id": _numbered("terminal-", terminal),
            "channel": pa.array(columns["channel"], pa.string()),
            "location": pc.if_else(pa.array(online), "Online", pa.array(names).take(pa.array(city))),
            "lat": pa.array(np.where(online, np.nan, lat[city]), from_pandas=True),
            "lon": pa.array(np.where(online, np.nan, lon[city]), from_pandas=True),
            "country": pa.array(countries).take(pa.array(city)),
            "device_id": _numbered("device-", columns["device"]),
            "ip": pc.binary_join_element_wise("10", *(pa.array(o).cast(pa.string()) for o in octets), "."),
            "card_number": pa.array(pop.cards).take(pa.array(user)),
            "is_fraud": pc.not_equal(scenario, ""),
            "fraud_scenario": scenario,
        }
    )


def _numbered(prefix: str, numbers: np.ndarray) -> pa.Array:
    """``prefix`` followed by each number: ``user-42``."""
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def with_label_times(table: pa.Table, config: SimulationConfig) -> pa.Table:
    """The simulated table with ``label_time``: when each fraud's label arrived, null for legitimate
    rows and for frauds never reported (see `fraudstream.sim.labels`).

    >>> config = SimulationConfig(count=2000, seed=1)
    >>> table = with_label_times(simulate(config), config)
    >>> known = table.filter(pc.is_valid(table.column("label_time")))
    >>> all(known.column("is_fraud").to_pylist()), pc.all(pc.greater(known.column("label_time"),
    ...     known.column("timestamp"))).as_py()
    (True, True)
    """
    return table.append_column("label_time", label_times(table, config.seed, config.unreported_share))


def labels_for(table: pa.Table, config: SimulationConfig | None = None) -> pa.Table:
    """Label events for the frauds that get reported, each at its ``label_time``."""
    config = config or SimulationConfig()
    labelled = table if "label_time" in table.column_names else with_label_times(table, config)
    chosen = labelled.filter(pc.is_valid(labelled.column("label_time")))
    return pa.table(
        {
            "transaction_id": chosen.column("transaction_id"),
            "is_fraud": pa.array(np.ones(chosen.num_rows, dtype=bool)),
            "label_time": chosen.column("label_time"),
            "transaction_time": chosen.column("timestamp"),
            "user_id": chosen.column("user_id"),
            "merchant_id": chosen.column("merchant_id"),
            "terminal_id": chosen.column("terminal_id"),
            "device_id": chosen.column("device_id"),
            "ip": chosen.column("ip"),
        }
    )


def iter_batches(config: SimulationConfig, batch_size: int) -> Iterator[pa.Table]:
    """The simulated table in time order, ``batch_size`` rows at a time (for live traffic)."""
    table = simulate(config)
    for start in range(0, table.num_rows, batch_size):
        yield table.slice(start, batch_size)
