"""Per user: first-seen merchants, terminals, devices and countries, distinct counts over 24h, and the
distance and speed of travel from the previous located event."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from fraudstream.core.features.kernels.prefetch import _prefetch_ahead
from fraudstream.core.features.kernels.records import _NO_TIME

__all__ = ["extras_layout", "user_extras_kernel"]

_EARTH_RADIUS_KM = 6371.0088


@njit(cache=True, nogil=True)
def _haversine(lat1, lon1, lat2, lon2):  # type: ignore[no-untyped-def]
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2.0) ** 2
    return 2.0 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@njit(cache=True, nogil=True)
def extras_layout(sizes):  # type: ignore[no-untyped-def]
    """Where a user's extras record keeps each recent-key list, and its length in int64 words.

    Word 0 is the time of the user's latest located event, words 1 and 2 its latitude and longitude
    (read as float64); then, per kind, ``sizes[j]`` key hashes followed by as many last-seen times.
    Rows are padded to whole 64-byte cache lines.
    """
    starts = np.empty(sizes.shape[0], dtype=np.int64)
    at = 3
    for j in range(sizes.shape[0]):
        starts[j] = at
        at += 2 * sizes[j]
    return starts, (at + 7) // 8 * 8


@njit(cache=True, nogil=True)
def _seen(extras, slot, start, size, h, t, day_ms):  # type: ignore[no-untyped-def]
    """Record key ``h`` among a user's recent keys; return (was it new, distinct keys in the last day)."""
    times = start + size
    found = -1
    oldest = 0
    for k in range(size):
        if extras[slot, start + k] == h:
            found = k
        if extras[slot, times + k] < extras[slot, times + oldest]:
            oldest = k
    new = found < 0
    if new:
        found = oldest  # forget the least recently used key
        extras[slot, start + found] = h
        extras[slot, times + found] = t
    else:
        extras[slot, times + found] = max(extras[slot, times + found], t)
    distinct = 0
    for k in range(size):
        if extras[slot, start + k] != 0 and extras[slot, times + k] > t - day_ms:
            distinct += 1
    return new, distinct


@njit(cache=True, nogil=True)
def user_extras_kernel(  # type: ignore[no-untyped-def]
    slots,
    fresh,
    ts,
    lat,
    lon,
    merchant_h,
    terminal_h,
    device_h,
    country_h,
    sizes,
    extras,
    places,
    out,
    col0,
):
    """First-seen flags, distinct counts over 24h and travel distance/speed, per user, in order.

    ``extras`` holds one row per user (see ``extras_layout``), ``places`` is the same memory read as
    float64; key hashes come as int64 (the same bits).
    """
    nan = np.float32(np.nan)
    day_ms = np.int64(86_400_000)
    starts, _ = extras_layout(sizes)
    for i in range(slots.shape[0]):
        _prefetch_ahead(slots, extras, i)
        slot = slots[i]
        t = ts[i]
        if fresh[i]:
            for k in range(extras.shape[1]):
                extras[slot, k] = 0
            extras[slot, 0] = _NO_TIME
            places[slot, 1] = np.nan
            places[slot, 2] = np.nan
            for j in range(sizes.shape[0]):
                for k in range(starts[j] + sizes[j], starts[j] + 2 * sizes[j]):
                    extras[slot, k] = _NO_TIME
        for c in range(8):
            out[i, col0 + c] = nan
        if merchant_h[i] != 0:
            new, distinct = _seen(extras, slot, starts[0], sizes[0], merchant_h[i], t, day_ms)
            out[i, col0] = 1.0 if new else 0.0
            out[i, col0 + 4] = distinct
        if terminal_h[i] != 0:
            new, _ = _seen(extras, slot, starts[1], sizes[1], terminal_h[i], t, day_ms)
            out[i, col0 + 1] = 1.0 if new else 0.0
        if device_h[i] != 0:
            new, _ = _seen(extras, slot, starts[2], sizes[2], device_h[i], t, day_ms)
            out[i, col0 + 2] = 1.0 if new else 0.0
        if country_h[i] != 0:
            new, distinct = _seen(extras, slot, starts[3], sizes[3], country_h[i], t, day_ms)
            out[i, col0 + 3] = 1.0 if new else 0.0
            out[i, col0 + 5] = distinct
        if not (math.isnan(lat[i]) or math.isnan(lon[i])):
            if extras[slot, 0] != _NO_TIME:
                km = _haversine(places[slot, 1], places[slot, 2], lat[i], lon[i])
                # Travel time is floored at one minute so that two places at the same instant give a
                # large, finite speed rather than infinity.
                hours = max(abs(t - extras[slot, 0]) / 3_600_000.0, 1.0 / 60.0)
                out[i, col0 + 6] = km
                out[i, col0 + 7] = km / hours
            if t >= extras[slot, 0]:
                places[slot, 1] = lat[i]
                places[slot, 2] = lon[i]
                extras[slot, 0] = t
