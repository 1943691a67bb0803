"""Compiled (numba) loops over a batch: entity-key hashing, window state updates, label feedback.

Every kernel walks the batch once, in order, and reads/writes flat state arrays; Python only calls
each kernel once per batch and entity kind. Processing order inside a kernel is the batch order, so
splitting a stream into batches of any size gives the same result.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "entity_kernel",
    "find_slots",
    "forget_newest",
    "hash_strings",
    "label_kernel",
    "rebuild_table",
    "user_extras_kernel",
]

_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)
_EARTH_RADIUS_KM = 6371.0088
_NO_TIME = np.int64(-(2**62))


@njit(cache=True, nogil=True)
def hash_strings(offsets, data, valid, out):  # type: ignore[no-untyped-def]
    """FNV-1a 64-bit hash of each UTF-8 string of an Arrow string array; 0 marks a null."""
    for i in range(out.shape[0]):
        if not valid[i]:
            out[i] = 0
            continue
        h = _FNV_OFFSET
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * _FNV_PRIME
        # Empty strings are treated as absent by validation; 0 is reserved for "no key".
        out[i] = h if h != 0 else np.uint64(1)


@njit(cache=True, nogil=True)
def _find(h, tkeys, tslots):  # type: ignore[no-untyped-def]
    mask = tkeys.shape[0] - 1
    pos = np.int64(h & np.uint64(mask))
    while True:
        k = tkeys[pos]
        if k == h:
            return tslots[pos], pos
        if k == 0:
            return -1, pos
        pos = (pos + 1) & mask


@njit(cache=True, nogil=True)
def find_slots(hashes, tkeys, tslots, out):  # type: ignore[no-untyped-def]
    """The state slot of each key, or -1 where the key is null or not remembered."""
    for i in range(hashes.shape[0]):
        out[i] = -1 if hashes[i] == 0 else _find(hashes[i], tkeys, tslots)[0]


@njit(cache=True, nogil=True)
def forget_newest(keys, n_keep, n_used, tkeys, tslots):  # type: ignore[no-untyped-def]
    """Remove the keys of slots ``n_keep..n_used`` from the table, newest first.

    Deleting in reverse insertion order is safe for linear probing: any key whose probe passed
    over a deleted position was inserted after it, and so is already gone.
    """
    for slot in range(n_used - 1, n_keep - 1, -1):
        _, pos = _find(keys[slot], tkeys, tslots)
        tkeys[pos] = 0
        tslots[pos] = -1
        keys[slot] = 0


@njit(cache=True, nogil=True)
def rebuild_table(keys, n_used, tkeys, tslots):  # type: ignore[no-untyped-def]
    """Fill an empty open-addressing table with the first ``n_used`` keys."""
    for slot in range(n_used):
        _, pos = _find(keys[slot], tkeys, tslots)
        tkeys[pos] = keys[slot]
        tslots[pos] = slot


@njit(cache=True, nogil=True)
def _haversine(lat1, lon1, lat2, lon2):  # type: ignore[no-untyped-def]
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2.0) ** 2
    return 2.0 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@njit(cache=True, nogil=True)
def _assign_slots(hashes, tkeys, tslots, keys, n_used, slots_out, fresh_out):  # type: ignore[no-untyped-def]
    """Find (or create) the state slot of every event's entity, in batch order."""
    for i in range(hashes.shape[0]):
        h = hashes[i]
        if h == 0:
            slots_out[i] = -1
            fresh_out[i] = False
            continue
        slot, pos = _find(h, tkeys, tslots)
        fresh_out[i] = slot < 0
        if slot < 0:
            slot = n_used[0]
            n_used[0] += 1
            tkeys[pos] = h
            tslots[pos] = slot
            keys[slot] = h
        slots_out[i] = slot


@njit(cache=True, nogil=True)
def _touch(slots, last_ts, heads, agg, sumsq):  # type: ignore[no-untyped-def]
    """Read one word of every cache line of the batch's state before the dependent loop needs it.

    The loads here do not depend on each other, so the processor overlaps their cache misses; the
    scoring loop that follows then finds its state in cache. This doubles throughput when the
    state is much larger than the cache.
    """
    total = 0.0
    flat = agg.reshape(agg.shape[0], -1)
    width = flat.shape[1]
    for i in range(slots.shape[0]):
        s = slots[i]
        if s < 0:
            continue
        total += last_ts[s] + heads[s, 0] + sumsq[s, 0]
        for k in range(0, width, 16):
            total += flat[s, k]
    return total


@njit(cache=True, nogil=True)
def entity_kernel(  # type: ignore[no-untyped-def]
    hashes,
    ts,
    amount,
    gran,
    n_buckets,
    longest,
    label_windows,
    idle_ms,
    lateness_ms,
    tkeys,
    tslots,
    keys,
    n_used,
    last_ts,
    heads,
    agg,
    sumsq,
    fraud,
    out,
    col0,
    slots_out,
    fresh_out,
    late_out,
):
    """Score-then-update one entity kind for every event of the batch.

    Writes, from column ``col0`` of ``out``: per window count, sum, mean, max (including the current
    event), then seconds since the entity's previous event, the amount's ratio to and z-score against
    the prior events of the longest window, then per label window the fraud count and fraud rate.
    """
    n_windows = gran.shape[0]
    n_label = label_windows.shape[0]
    nan = np.float32(np.nan)
    _assign_slots(hashes, tkeys, tslots, keys, n_used, slots_out, fresh_out)
    touched = _touch(slots_out, last_ts, heads, agg, sumsq)
    for i in range(hashes.shape[0]):
        h = hashes[i]
        width = 4 * n_windows + 3 + 2 * n_label
        if h == 0:
            for c in range(width):
                out[i, col0 + c] = nan
            continue
        t = ts[i]
        a = amount[i]
        slot = slots_out[i]
        fresh = fresh_out[i]
        if not fresh and t - last_ts[slot] >= idle_ms:
            fresh = True  # idle long enough to be forgotten: start over, as if expired
        if fresh:
            last_ts[slot] = _NO_TIME
            for w in range(n_windows):
                heads[slot, w] = t // gran[w]
                for k in range(n_buckets):
                    agg[slot, w, k, 0] = 0.0
                    agg[slot, w, k, 1] = 0.0
                    agg[slot, w, k, 2] = 0.0
            for k in range(n_buckets):
                sumsq[slot, k] = 0.0
            for lw in range(n_label):
                for k in range(n_buckets):
                    fraud[slot, lw, k] = 0.0
        fresh_out[i] = fresh
        prev = last_ts[slot]
        late_out[i] = (not fresh) and t < prev - lateness_ms
        col = col0
        ratio = nan
        zscore = nan
        for w in range(n_windows):
            b = t // gran[w]
            hd = heads[slot, w]
            if b > hd:
                steps = min(b - hd, n_buckets)
                for k in range(1, steps + 1):
                    idx = (hd + k) % n_buckets
                    agg[slot, w, idx, 0] = 0.0
                    agg[slot, w, idx, 1] = 0.0
                    agg[slot, w, idx, 2] = 0.0
                    if w == longest:
                        sumsq[slot, idx] = 0.0
                    for lw in range(n_label):
                        if label_windows[lw] == w:
                            fraud[slot, lw, idx] = 0.0
                heads[slot, w] = b
                hd = b
            count = 0.0
            total = 0.0
            peak = 0.0
            for k in range(n_buckets):
                count += agg[slot, w, k, 0]
                total += agg[slot, w, k, 1]
                peak = max(peak, agg[slot, w, k, 2])
            covered = b > hd - n_buckets
            if w == longest and count > 0.0:
                squares = 0.0
                for k in range(n_buckets):
                    squares += sumsq[slot, k]
                mean = total / count
                std = math.sqrt(max(squares / count - mean * mean, 0.0))
                # A floor of 10% of the mean keeps one or two equal prior amounts from giving an
                # infinite z-score.
                std = max(std, 0.1 * mean, 0.01)
                ratio = np.float32(a / mean)
                zscore = np.float32((a - mean) / std)
            if covered:
                idx = b % n_buckets
                agg[slot, w, idx, 0] += 1.0
                agg[slot, w, idx, 1] += a
                agg[slot, w, idx, 2] = max(agg[slot, w, idx, 2], a)
                if w == longest:
                    sumsq[slot, idx] += a * a
                count += 1.0
                total += a
                peak = max(peak, a)
            out[i, col] = count
            out[i, col + 1] = total
            out[i, col + 2] = total / count if count > 0.0 else nan
            out[i, col + 3] = peak if count > 0.0 else nan
            col += 4
        out[i, col] = nan if fresh else max(t - prev, 0) / 1000.0
        out[i, col + 1] = ratio
        out[i, col + 2] = zscore
        col += 3
        for lw in range(n_label):
            w = label_windows[lw]
            frauds = 0.0
            for k in range(n_buckets):
                frauds += fraud[slot, lw, k]
            count = out[i, col0 + 4 * w]
            out[i, col] = frauds
            out[i, col + 1] = frauds / count if count > 0.0 else nan
            col += 2
        last_ts[slot] = max(prev, t)
    return touched


@njit(cache=True, nogil=True)
def label_kernel(hashes, tx_ts, is_fraud, gran, n_buckets, label_windows, tkeys, tslots, heads, fraud):  # type: ignore[no-untyped-def]
    """Count confirmed frauds into the bucket of the transaction's own time, where still covered."""
    for i in range(hashes.shape[0]):
        h = hashes[i]
        if h == 0 or not is_fraud[i]:
            continue
        slot, _ = _find(h, tkeys, tslots)
        if slot < 0:
            continue
        for lw in range(label_windows.shape[0]):
            w = label_windows[lw]
            b = tx_ts[i] // gran[w]
            hd = heads[slot, w]
            if hd - n_buckets < b <= hd:
                fraud[slot, lw, b % n_buckets] += 1.0


@njit(cache=True, nogil=True)
def _seen(recent_h, recent_t, slot, h, t, day_ms):  # type: ignore[no-untyped-def]
    """Record key ``h`` among a user's recent keys; return (was it new, distinct keys in the last day)."""
    size = recent_h.shape[1]
    found = -1
    oldest = 0
    for k in range(size):
        if recent_h[slot, k] == h:
            found = k
        if recent_t[slot, k] < recent_t[slot, oldest]:
            oldest = k
    new = found < 0
    if new:
        found = oldest  # forget the least recently used key
        recent_h[slot, found] = h
        recent_t[slot, found] = t
    else:
        recent_t[slot, found] = max(recent_t[slot, found], t)
    distinct = 0
    for k in range(size):
        if recent_h[slot, k] != 0 and recent_t[slot, k] > t - day_ms:
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
    geo,
    geo_ts,
    recent_m_h,
    recent_m_t,
    recent_t_h,
    recent_t_t,
    recent_d_h,
    recent_d_t,
    recent_c_h,
    recent_c_t,
    out,
    col0,
):
    """First-seen flags, distinct counts over 24h and travel distance/speed, per user, in order.

    Returns a checksum of the prefetch pass only so that the compiler keeps it.
    """
    nan = np.float32(np.nan)
    day_ms = np.int64(86_400_000)
    total = 0.0
    for i in range(slots.shape[0]):  # overlap the cache misses first, as in _touch
        s = slots[i]
        total += geo[s, 0] + geo_ts[s] + recent_m_h[s, 0] + recent_m_t[s, 0] + recent_t_h[s, 0]
        total += recent_t_t[s, 0] + recent_d_h[s, 0] + recent_d_t[s, 0] + recent_c_h[s, 0] + recent_c_t[s, 0]
    for i in range(slots.shape[0]):
        slot = slots[i]
        t = ts[i]
        if fresh[i]:
            geo_ts[slot] = _NO_TIME
            geo[slot, 0] = np.nan
            geo[slot, 1] = np.nan
            recent_m_h[slot, :] = 0
            recent_m_t[slot, :] = _NO_TIME
            recent_t_h[slot, :] = 0
            recent_t_t[slot, :] = _NO_TIME
            recent_d_h[slot, :] = 0
            recent_d_t[slot, :] = _NO_TIME
            recent_c_h[slot, :] = 0
            recent_c_t[slot, :] = _NO_TIME
        for c in range(8):
            out[i, col0 + c] = nan
        if merchant_h[i] != 0:
            new, distinct = _seen(recent_m_h, recent_m_t, slot, merchant_h[i], t, day_ms)
            out[i, col0] = 1.0 if new else 0.0
            out[i, col0 + 4] = distinct
        if terminal_h[i] != 0:
            new, _ = _seen(recent_t_h, recent_t_t, slot, terminal_h[i], t, day_ms)
            out[i, col0 + 1] = 1.0 if new else 0.0
        if device_h[i] != 0:
            new, _ = _seen(recent_d_h, recent_d_t, slot, device_h[i], t, day_ms)
            out[i, col0 + 2] = 1.0 if new else 0.0
        if country_h[i] != 0:
            new, distinct = _seen(recent_c_h, recent_c_t, slot, country_h[i], t, day_ms)
            out[i, col0 + 3] = 1.0 if new else 0.0
            out[i, col0 + 5] = distinct
        if not (math.isnan(lat[i]) or math.isnan(lon[i])):
            if geo_ts[slot] != _NO_TIME:
                km = _haversine(geo[slot, 0], geo[slot, 1], lat[i], lon[i])
                # Travel time is floored at one minute so that two places at the same instant give a
                # large, finite speed rather than infinity.
                hours = max(abs(t - geo_ts[slot]) / 3_600_000.0, 1.0 / 60.0)
                out[i, col0 + 6] = km
                out[i, col0 + 7] = km / hours
            if t >= geo_ts[slot]:
                geo[slot, 0] = lat[i]
                geo[slot, 1] = lon[i]
                geo_ts[slot] = t
    return total
