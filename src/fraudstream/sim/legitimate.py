"""Legitimate traffic: everyday shopping, and the honest habits that look like fraud.

People shop at their usual merchants at the usual hours, and now and then do what a fraudster does:
a trip far away (a new country, new merchants, a jump a plane explains), a shopping day (several
purchases within minutes at different shops), a once-a-year big purchase, a new phone or a borrowed
one. These rows are legitimate, so a detector that keys on the signals alone pays in false alerts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fraudstream.sim.world import (
    CATEGORY_SCALE,
    DAY_MS,
    ELECTRONICS,
    FAVOURITES,
    ONLINE_SERVICES,
    TRAVEL,
    Population,
    Rows,
    Span,
    concatenate,
    episode_sizes,
    running_sum_within,
)

__all__ = ["NEW_PHONE_DEVICE", "legitimate"]

_MONTH_MS = 30 * DAY_MS
#: Share of users who take one trip in a 30-day span; a trip lasts 2 to 7 days.
TRIPS_PER_USER_MONTH = 0.10
#: Share of the legitimate rows made on shopping days: 4 to 9 purchases at different shops, a
#: minute or two apart (some people tap through a checkout in seconds).
SHOPPING_DAY_SHARE = 0.02
#: Big purchases (electronics, a holiday) per user in a 30-day span: tens of times their usual basket.
BIG_TICKETS_PER_USER_MONTH = 0.08
#: Share of users who change phones in a 30-day span; their purchases move to the new device.
PHONE_CHANGES_PER_USER_MONTH = 0.10
#: Share of purchases from a device the user had not used before and may not use again (a work
#: laptop, a partner's phone, a fresh browser): device fingerprints churn.
ONE_OFF_DEVICE_SHARE = 0.015
#: Device ids of new phones are this plus the user's index, of one-off devices this plus a random
#: number (away from each other and from every fraudster's device).
NEW_PHONE_DEVICE = 7 * 10**7
_ONE_OFF_DEVICE = 10**9


def legitimate(n: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """``n`` legitimate transactions (unsorted): everyday purchases, shopping days and big tickets,
    some of them made on a trip or from a new phone."""
    months = span.duration_ms / _MONTH_MS
    big = min(n // 10, round(pop.users * BIG_TICKETS_PER_USER_MONTH * months))
    shopping = round(n * SHOPPING_DAY_SHARE)
    rows = concatenate(
        [
            _everyday(n - big - shopping, span, pop, rng),
            _shopping_days(shopping, span, pop, rng),
            _big_tickets(big, span, pop, rng),
        ]
    )
    rows = _trips(rows, span, pop, rng)
    return _phone_changes(rows, span, pop, rng)


def _by_activity(pop: Population, rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    return rng.choice(pop.users, size=n, p=pop.activity / pop.activity.sum())


def _rows(
    timestamp: np.ndarray,
    user: np.ndarray,
    merchant: np.ndarray,
    amount: np.ndarray,
    city: np.ndarray,
    channel: np.ndarray,
    device: np.ndarray,
) -> Rows:
    return {
        "timestamp": timestamp.astype(np.int64),
        "user": user,
        "merchant": merchant,
        "amount": np.maximum(np.round(amount, 2), 0.5),
        "city": city,
        "channel": channel.astype(object),
        "device": device,
        "scenario": np.full(len(timestamp), "", dtype=object),
    }


def _usual_channel(pop: Population, merchant: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Online services are bought online; elsewhere one purchase in ten goes through the phone."""
    online = pop.merchant_category[merchant] == ONLINE_SERVICES
    return np.where(online, "online", np.where(rng.random(len(merchant)) < 0.1, "mobile", "pos"))


def _own_device(user: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each user's phone, one purchase in five from their second device (a tablet, a laptop), now
    and then from a device used once."""
    usual = user * 2 + (rng.random(len(user)) < 0.2)
    one_off = rng.random(len(user)) < ONE_OFF_DEVICE_SHARE
    return np.where(one_off, _ONE_OFF_DEVICE + rng.integers(0, 10**9, len(user)), usual)


def _everyday(n: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    user = _by_activity(pop, rng, n)
    merchant = pop.favourites[user, rng.integers(0, FAVOURITES, n)]
    amount = pop.everyday_amount(user, merchant, rng)
    timestamp = span.rhythmic(rng, n)
    channel = _usual_channel(pop, merchant, rng)
    return _rows(
        timestamp, user, merchant, amount, pop.merchant_city[merchant], channel, _own_device(user, rng)
    )


def _shopping_days(n: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """Sprees of 4-9 purchases, a minute or two apart: at the user's own shops, and online at shops
    anywhere, new to them."""
    sizes = episode_sizes(rng, n, 4, 9)
    episode = np.repeat(np.arange(len(sizes)), sizes)
    user = _by_activity(pop, rng, len(sizes))[episode]
    # The pace of a spree: a median of 90 s between purchases, from seconds to a quarter of an hour
    # (a few minutes at most in a span of minutes).
    pace = np.minimum(rng.lognormal(np.log(90_000), 1.0, len(sizes)), span.duration_ms / 20)[episode]
    gaps = rng.exponential(1.0, len(episode)) * pace
    timestamp = span.rhythmic(rng, len(sizes))[episode] + running_sum_within(gaps, sizes)
    usual = rng.random(len(episode)) < 0.5
    merchant = np.where(
        usual,
        pop.favourites[user, rng.integers(0, FAVOURITES, len(episode))],
        rng.integers(0, pop.merchants, len(episode)),
    )
    return _rows(
        span.fit(timestamp, sizes, rng),
        user,
        merchant,
        pop.everyday_amount(user, merchant, rng),
        np.where(usual, pop.merchant_city[merchant], pop.home[user]),
        np.where(usual, _usual_channel(pop, merchant, rng), "online"),
        _own_device(user, rng),
    )


def _big_tickets(n: int, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """One purchase each, some 40 times the user's everyday amount (hundreds to tens of thousands),
    half at a familiar merchant, half at an electronics or travel merchant new to them."""
    user = rng.integers(0, pop.users, n)
    big_merchants = np.flatnonzero(np.isin(pop.merchant_category, [ELECTRONICS, TRAVEL]))
    if len(big_merchants) == 0:
        big_merchants = np.arange(pop.merchants)
    familiar = rng.random(n) < 0.5
    merchant = np.where(
        familiar,
        pop.favourites[user, rng.integers(0, FAVOURITES, n)],
        big_merchants[rng.integers(0, len(big_merchants), n)],
    )
    amount = pop.scale[user] * rng.lognormal(np.log(40), 0.8, n)
    channel = np.where(familiar, _usual_channel(pop, merchant, rng), "online")
    city = np.where(familiar, pop.merchant_city[merchant], pop.home[user])
    return _rows(span.daytime(rng, n), user, merchant, amount, city, channel, _own_device(user, rng))


def _trips(rows: Rows, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """Travellers buy in their destination for the days of the trip, at its merchants (online
    purchases stay at their usual shops), then come home."""
    months = span.duration_ms / _MONTH_MS
    traveller = rng.random(pop.users) < min(1.0, TRIPS_PER_USER_MONTH * months)
    length = np.minimum(rng.integers(2, 8, pop.users) * DAY_MS, max(1, span.duration_ms // 4))
    start = span.start_ms + (rng.random(pop.users) * (span.duration_ms - length)).astype(np.int64)
    # Destinations are where merchants are: a trip is to a city with shops to buy in.
    destination = pop.merchant_city[rng.integers(0, pop.merchants, pop.users)]
    user, timestamp = rows["user"], rows["timestamp"]
    away = traveller[user] & (timestamp >= start[user]) & (timestamp < start[user] + length[user])
    away &= rows["channel"] != "online"
    merchant, city, amount = rows["merchant"].copy(), rows["city"].copy(), rows["amount"].copy()
    merchant[away] = pop.merchant_in(destination[user[away]], rng)
    city[away] = destination[user[away]]
    # The same purchase (a spree's, a big ticket's) in the destination's shop: its category's basket.
    basket = (
        CATEGORY_SCALE[pop.merchant_category[merchant]]
        / CATEGORY_SCALE[pop.merchant_category[rows["merchant"]]]
    )
    amount[away] = np.maximum(np.round(amount[away] * basket[away], 2), 0.5)
    return {**rows, "merchant": merchant, "city": city, "amount": amount}


def _phone_changes(rows: Rows, span: Span, pop: Population, rng: np.random.Generator) -> Rows:
    """From the day of the change, a user's purchases from their phone come from the new one."""
    months = span.duration_ms / _MONTH_MS
    changer = rng.random(pop.users) < min(1.0, PHONE_CHANGES_PER_USER_MONTH * months)
    when = span.start_ms + (rng.random(pop.users) * span.duration_ms).astype(np.int64)
    user = rows["user"]
    moved = changer[user] & (rows["timestamp"] >= when[user]) & (rows["device"] == user * 2)
    return {**rows, "device": np.where(moved, NEW_PHONE_DEVICE + user, rows["device"])}
