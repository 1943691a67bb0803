"""Named fraud scenarios: the blatant ones, the ones that blend in, and one that appears mid-stream.

Each scenario makes episodes (one attack: a burst on one card, a compromised terminal's victims, a
slow drain of one account) and lays their rows out as columns (see `fraudstream.sim.world.Rows`),
all episodes of a scenario at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from fraudstream.sim.world import (
    DAY_MS,
    FAVOURITES,
    HOUR_MS,
    ONLINE_SERVICES,
    Population,
    Rows,
    Span,
    cities,
    episode_sizes,
)

__all__ = ["DEFAULT_MIX", "DRIFT_STARTS", "SCENARIOS", "scenario_rows"]

# Device ids of fraudsters, each kind in its own range (users' own devices are 2 * user + 0 or 1).
_LOCATION_JUMP_DEVICE = 1 * 10**7
_CARD_TESTING_DEVICE = 2 * 10**7
_TAKEOVER_DEVICE = 3 * 10**7
_HACKER_DEVICE = 4 * 10**7
_BURST_DEVICE = 5 * 10**7
_LOW_AND_SLOW_DEVICE = 8 * 10**7
_RING_DEVICE = 9 * 10**7

#: Gift card values the ring buys.
_GIFT_CARDS = np.array([25.0, 50.0, 100.0, 150.0, 200.0, 250.0])


def _rows(name: str, timestamp: np.ndarray, **columns: object) -> Rows:
    """Columns of one scenario's rows; scalars are repeated to the length of ``timestamp``."""
    n = len(timestamp)
    rows = {k: np.broadcast_to(np.asarray(v), (n,)).copy() for k, v in columns.items()}
    rows["timestamp"] = timestamp.astype(np.int64)
    rows["amount"] = np.round(rows["amount"].astype(np.float64), 2)
    rows["channel"] = rows["channel"].astype(object)
    rows["scenario"] = np.full(n, name, dtype=object)
    return rows


def _starts(span: Span, rng: np.random.Generator, episodes: int) -> npt.NDArray[np.int64]:
    """Episode start times, at any hour (most fraudsters do not keep the victim's hours)."""
    latest = max(1, span.duration_ms - min(2 * HOUR_MS, span.duration_ms // 2))
    return span.start_ms + rng.integers(0, latest, episodes)


def _offsets(
    rng: np.random.Generator, sizes: npt.NDArray[np.int64], within_ms: npt.ArrayLike, span: Span
) -> np.ndarray:
    """Times of each episode's rows after its start, sorted, inside ``within_ms`` (one for all
    episodes, or one per episode) or half the span if that is shorter."""
    episode = np.repeat(np.arange(len(sizes)), sizes)
    within = np.broadcast_to(span.at_most(within_ms), (len(sizes),))[episode]
    offset = (rng.random(len(episode)) * within).astype(np.int64)
    return offset[np.lexsort((offset, episode))]


def _episode_times(
    span: Span,
    rng: np.random.Generator,
    sizes: npt.NDArray[np.int64],
    within_ms: npt.ArrayLike,
    starts: np.ndarray,
) -> npt.NDArray[np.int64]:
    """Times of the episodes' rows: each episode from its start, spread over ``within_ms``, inside
    the span."""
    return span.fit(np.repeat(starts, sizes) + _offsets(rng, sizes, within_ms, span), sizes, rng)


def _favourite(
    pop: Population, user: npt.NDArray[np.int64], rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """One of each user's usual merchants."""
    return np.asarray(pop.favourites[user, rng.integers(0, FAVOURITES, len(user))], dtype=np.int64)


def _large_amount(count: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """One large online purchase on the card (3,000 to 30,000: as large as some honest big tickets),
    at one of its usual merchants."""
    user = rng.integers(0, pop.users, count)
    return _rows(
        "large_amount",
        timestamp=_starts(span, rng, count),
        user=user,
        merchant=pop.favourites[user, 0],
        amount=np.exp(rng.uniform(np.log(3_000), np.log(30_000), count)),
        city=pop.home[user],
        channel="online",
        device=user * 2,
    )


def _rapid_burst(count: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """A stolen card spent fast: 6-9 purchases within 25 seconds, from the fraudster's device."""
    sizes = episode_sizes(rng, count, 6, 9)
    user = np.repeat(rng.integers(0, pop.users, len(sizes)), sizes)
    return _rows(
        "rapid_burst",
        timestamp=_episode_times(span, rng, sizes, 25_000, _starts(span, rng, len(sizes))),
        user=user,
        merchant=_favourite(pop, user, rng),
        amount=pop.scale[user] * rng.uniform(1, 3, len(user)),
        city=pop.home[user],
        channel="online",
        device=_BURST_DEVICE + user,
    )


def _location_jump(count: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """A purchase in the city farthest from the user's home, with a new device."""
    _, lat, lon, _, _ = cities()
    far = np.argmax(np.abs(lat[:, None] - lat[None, :]) + np.abs(lon[:, None] - lon[None, :]) / 2, axis=1)
    user = rng.integers(0, pop.users, count)
    return _rows(
        "location_jump",
        timestamp=_starts(span, rng, count) + span.at_most(rng.integers(5, 30, count) * 60_000.0),
        user=user,
        merchant=pop.favourites[user, 0],
        amount=pop.scale[user] * rng.uniform(2, 6, count),
        city=far[pop.home[user]],
        channel="pos",
        device=_LOCATION_JUMP_DEVICE + user,
    )


def _card_testing(count: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """8-13 tiny payments within 8 minutes at one merchant, then a large one: the card works."""
    sizes = episode_sizes(rng, count, 8, 13)
    user = np.repeat(rng.integers(0, pop.users, len(sizes)), sizes)
    last = np.cumsum(sizes) - 1
    amount = rng.uniform(0.5, 3.0, len(user))
    amount[last] = rng.uniform(800, 3000, len(sizes))
    return _rows(
        "card_testing",
        timestamp=_episode_times(span, rng, sizes, 8 * 60_000, _starts(span, rng, len(sizes))),
        user=user,
        merchant=pop.favourites[user, 0],
        amount=amount,
        city=pop.home[user],
        channel="online",
        device=_CARD_TESTING_DEVICE + user,
    )


def _account_takeover(count: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """A large payment from an unknown phone, in a city anywhere in the world."""
    user = rng.integers(0, pop.users, count)
    return _rows(
        "account_takeover",
        timestamp=_starts(span, rng, count),
        user=user,
        merchant=pop.favourites[user, 0],
        amount=rng.uniform(2_000, 9_000, count),
        city=rng.integers(0, len(cities()[0]), count),
        channel="mobile",
        device=_TAKEOVER_DEVICE + rng.integers(0, 10**6, count),
    )


def _compromised_terminal(count: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """A skimmer on one terminal: 5-11 victims' cards charged there over 3 days."""
    sizes = episode_sizes(rng, count, 5, 11)
    merchant = np.repeat(rng.integers(0, pop.merchants, len(sizes)), sizes)
    victim = rng.integers(0, pop.users, len(merchant))
    return _rows(
        "compromised_terminal",
        timestamp=_episode_times(span, rng, sizes, 3 * DAY_MS, _starts(span, rng, len(sizes))),
        user=victim,
        merchant=merchant,
        amount=pop.scale[victim] * rng.uniform(2, 5, len(victim)),
        city=pop.merchant_city[merchant],
        channel="pos",
        device=victim * 2,
    )


def _compromised_card(count: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """3-6 large purchases over 4 days at the card's usual merchants."""
    sizes = episode_sizes(rng, count, 3, 6)
    user = np.repeat(rng.integers(0, pop.users, len(sizes)), sizes)
    return _rows(
        "compromised_card",
        timestamp=_episode_times(span, rng, sizes, 4 * DAY_MS, _starts(span, rng, len(sizes))),
        user=user,
        merchant=_favourite(pop, user, rng),
        amount=pop.scale[user] * rng.uniform(8, 20, len(user)),
        city=pop.home[user],
        channel="online",
        device=user * 2,
    )


def _hacker(count: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """One attacker's device against 4-8 accounts within 20 minutes (a new device each attack)."""
    sizes = episode_sizes(rng, count, 4, 8)
    episode = np.repeat(np.arange(len(sizes)), sizes)
    victim = rng.integers(0, pop.users, int(sizes.sum()))
    return _rows(
        "hacker",
        timestamp=_episode_times(span, rng, sizes, 20 * 60_000, _starts(span, rng, len(sizes))),
        user=victim,
        merchant=pop.favourites[victim, 0],
        amount=rng.uniform(300, 2500, len(victim)),
        city=rng.integers(0, len(cities()[0]), len(victim)),
        channel="mobile",
        device=_HACKER_DEVICE + episode,
    )


def _low_and_slow(count: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """Stolen card details used with care: 3-8 everyday-sized purchases spread over 2-14 days, at
    the victim's usual merchants (or others of their city), at the hours people shop, from one
    device of the fraudster's. Only the device is new to the victim, and only at first."""
    sizes = episode_sizes(rng, count, 3, 8)
    episode = np.repeat(np.arange(len(sizes)), sizes)
    user = rng.integers(0, pop.users, len(sizes))[episode]
    length = span.at_most(rng.uniform(2, 14, len(sizes)) * DAY_MS)
    start = span.start_ms + (rng.random(len(sizes)) * (span.duration_ms - length)).astype(np.int64)
    raw = start[episode] + _offsets(rng, sizes, length, span)
    # At the hours people shop: the same day at another time, where the span holds that time.
    snapped = raw // DAY_MS * DAY_MS + span.daytime(rng, len(raw)) % DAY_MS
    timestamp = np.where((snapped >= span.start_ms) & (snapped < span.end_ms), snapped, raw)
    usual = rng.random(len(episode)) < 0.75
    merchant = np.where(usual, _favourite(pop, user, rng), pop.merchant_in(pop.home[user], rng))
    online = pop.merchant_category[merchant] == ONLINE_SERVICES
    return _rows(
        "low_and_slow",
        timestamp=timestamp,
        user=user,
        merchant=merchant,
        amount=pop.everyday_amount(user, merchant, rng),
        city=pop.home[user],
        channel=np.where(online, "online", "mobile"),
        device=_LOW_AND_SLOW_DEVICE + episode,
    )


def _gift_card_ring(count: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """A ring cashing out stolen cards in gift cards at a few online-services merchants: 2-5 round
    amounts per card within 3 hours, at the hours people shop, each card from a fresh device."""
    sizes = episode_sizes(rng, count, 2, 5)
    episode = np.repeat(np.arange(len(sizes)), sizes)
    user = rng.integers(0, pop.users, len(sizes))[episode]
    shops = np.flatnonzero(pop.merchant_category == ONLINE_SERVICES)
    ring = rng.choice(shops if len(shops) else np.arange(pop.merchants), size=4)
    return _rows(
        "gift_card_ring",
        timestamp=_episode_times(span, rng, sizes, 3 * HOUR_MS, span.daytime(rng, len(sizes))),
        user=user,
        merchant=ring[rng.integers(0, len(ring), len(episode))],
        amount=rng.choice(_GIFT_CARDS, len(episode)),
        city=pop.home[user],
        channel="online",
        device=_RING_DEVICE + episode,
    )


_BUILDERS: dict[str, Callable[[int, Span, Population, np.random.Generator], Rows]] = {
    "large_amount": _large_amount,
    "rapid_burst": _rapid_burst,
    "location_jump": _location_jump,
    "card_testing": _card_testing,
    "account_takeover": _account_takeover,
    "compromised_terminal": _compromised_terminal,
    "compromised_card": _compromised_card,
    "hacker": _hacker,
    "low_and_slow": _low_and_slow,
    "gift_card_ring": _gift_card_ring,
}
SCENARIOS = tuple(_BUILDERS)
#: Scenarios that appear mid-stream, and when: the share of the time span before their first row.
DRIFT_STARTS = {"gift_card_ring": 0.55}
#: Relative weights of the scenarios in the default mix of fraudulent rows.
DEFAULT_MIX = {**dict.fromkeys(SCENARIOS, 1.0), "low_and_slow": 2.5}


def scenario_rows(name: str, count: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """About ``count`` (at least) fraudulent rows of one scenario, inside ``span`` (or the part of it
    after the scenario's drift start)."""
    late = DRIFT_STARTS.get(name, 0.0)
    offset = int(span.duration_ms * late)
    inside = Span(span.start_ms + offset, span.duration_ms - offset)
    rows = _BUILDERS[name](count, inside, pop, rng)
    rows["timestamp"] = inside.clip(rows["timestamp"])
    return rows
