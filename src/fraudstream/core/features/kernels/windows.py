"""The entity kernel: sliding-window count, sum, mean and max of the amount, the time since the previous
event and the amount against the entity's own history, event by event in batch order."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from fraudstream.core.features.kernels.labels import _label_features
from fraudstream.core.features.kernels.prefetch import _prefetch_ahead
from fraudstream.core.features.kernels.records import SEEN, _reset_row, record_layout
from fraudstream.core.features.kernels.slots import _assign_slots

__all__ = ["bucket_numbers", "entity_kernel"]


@njit(cache=True, nogil=True)
def _floor_divide(value, divisor, inverse):  # type: ignore[no-untyped-def]
    """``value // divisor`` for |value| < 2**53, given ``inverse = 1.0 / divisor``, without a
    division: the float product is within one of the quotient, and the remainder's sign fixes it.
    Branch-free, so the compiler vectorizes loops of it (integer division does not vectorize)."""
    q = np.int64(math.floor(value * inverse))
    r = value - q * divisor
    return q - np.int64(r < 0) + np.int64(r >= divisor)


@njit(cache=True, nogil=True)
def _bucket_numbers(ts, lengths, n_buckets):  # type: ignore[no-untyped-def]
    m = lengths.shape[0]
    numbers = np.empty((m, ts.shape[0]), dtype=np.int64)
    positions = np.empty((m, ts.shape[0]), dtype=np.int64)
    ring = 1.0 / n_buckets
    for j in range(m):
        length = lengths[j]
        inverse = 1.0 / length
        for i in range(ts.shape[0]):
            q = _floor_divide(ts[i], length, inverse)
            numbers[j, i] = q
            positions[j, i] = q - _floor_divide(q, n_buckets, ring) * n_buckets
    return numbers, positions


def bucket_numbers(ts: np.ndarray, lengths: np.ndarray, n_buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Each event's bucket number per bucket length (``ts // length``, one row per event) and its
    position in a ring of ``n_buckets``: once per batch, shared by every entity kind's kernel.

    Computed a length at a time (a vectorized loop), then laid out row by row: the entity kernel
    reads an event's buckets together, and one memory layout whatever the batch's size or block
    means numba compiles that kernel once (transposed views of one, of a group and of a block of a
    longer batch are three layouts, and each was compiled in its first batch).

    >>> numbers, positions = bucket_numbers(np.array([-1, 0, 59_999, 60_000]), np.array([10_000, 60_000]), 6)
    >>> numbers.tolist(), positions.tolist()
    ([[-1, -1], [0, 0], [5, 0], [6, 1]], [[5, 5], [0, 0], [5, 0], [0, 1]])
    """
    numbers, positions = _bucket_numbers(ts, lengths, n_buckets)
    return np.ascontiguousarray(numbers.T), np.ascontiguousarray(positions.T)


@njit(cache=True, nogil=True)
def entity_kernel(  # type: ignore[no-untyped-def]
    hashes,
    ts,
    seen,
    amount,
    bucket_of,
    position_of,
    rows,
    gran,
    n_buckets,
    longest,
    ring_gran,
    ring_len,
    delay_ms,
    horizon_ms,
    idle_ms,
    lateness_ms,
    table,
    keys,
    n_used,
    records,
    cells,
    out,
    col0,
    slots_out,
    fresh_out,
    late_out,
):
    """Score-then-update one entity kind for every event of the batch.

    ``seen`` is when each event reached the runtime (processing time). An entity starts afresh when
    its own events are ``idle_ms`` apart, in event time or in processing time: so expiry, which
    forgets an entity not seen for longer than that (``FeatureState.expire``), never changes a
    feature, and an entity's features depend on its own events only.

    ``records`` holds one row per entity (see ``record_layout``); ``cells`` is the same memory read
    as float32. ``bucket_of[i, rows[w]]`` is event i's bucket number in window w (its time divided by
    the bucket length ``gran[w]``) and ``position_of`` the same modulo ``n_buckets``: computed once
    per batch for every entity kind (`bucket_numbers`), they keep integer divisions out of this loop.

    Writes, from column ``col0`` of ``out``: per window count, sum, mean, max (including the current
    event), then seconds since the entity's previous event, the amount's ratio to and
    z-score against the prior events of the longest window, then the label features (see
    ``_label_features``) when ``ring_gran`` is not empty.
    """
    n_windows = rows.shape[0]
    n_label = ring_gran.shape[0]
    heads, first, squares_at, rings, _ = record_layout(n_windows, n_buckets, ring_len)
    nan = np.float32(np.nan)
    width = 4 * n_windows + 3 + (2 * n_label + 2 if n_label > 0 else 0)
    inverse = 1.0 / gran
    _assign_slots(hashes, table, keys, n_used, slots_out, fresh_out)
    for i in range(hashes.shape[0]):
        _prefetch_ahead(slots_out, records, i)
        if hashes[i] == 0:
            for c in range(width):
                out[i, col0 + c] = nan
            continue
        t = ts[i]
        arrived = seen[i]
        a = amount[i]
        slot = slots_out[i]
        fresh = fresh_out[i]
        if not fresh and (t - records[slot, 0] >= idle_ms or arrived - records[slot, SEEN] >= idle_ms):
            fresh = True  # idle long enough to be forgotten: start over, as if expired
        if fresh:
            _reset_row(records, cells, slot, t, first, heads, ring_gran)
        fresh_out[i] = fresh
        prev = records[slot, 0]
        late_out[i] = (not fresh) and t < prev - lateness_ms
        col = col0
        ratio = nan
        zscore = nan
        for w in range(n_windows):
            b = bucket_of[i, rows[w]]
            here = position_of[i, rows[w]]
            # The head bucket, the latest counted into: the bucket of the entity's latest event.
            hd = b if fresh else _floor_divide(prev, gran[w], inverse[w])
            base = first + 3 * n_buckets * w
            expired = False
            if b >= hd + n_buckets:
                # The whole window has passed since the head (the usual case for short windows of
                # a sparse entity): empty it in one contiguous sweep and skip summing zeros.
                expired = True
                for c in range(base, base + 3 * n_buckets):
                    cells[slot, c] = 0.0
                if w == longest:
                    for k in range(n_buckets):
                        cells[slot, squares_at + k] = 0.0
                hd = b
            elif b > hd:
                # Empty the buckets between the head and b: positions here-steps+1 .. here, wrapping.
                steps = b - hd
                idx = here - steps + 1
                if idx < 0:
                    idx += n_buckets
                for _ in range(steps):
                    c = base + 3 * idx
                    cells[slot, c] = 0.0
                    cells[slot, c + 1] = 0.0
                    cells[slot, c + 2] = 0.0
                    if w == longest:
                        cells[slot, squares_at + idx] = 0.0
                    idx += 1
                    if idx == n_buckets:
                        idx = 0
                hd = b
            count = 0.0
            total = 0.0
            peak = 0.0
            if not expired:
                for k in range(n_buckets):
                    c = base + 3 * k
                    count += cells[slot, c]
                    total += cells[slot, c + 1]
                    peak = max(peak, cells[slot, c + 2])
            covered = b > hd - n_buckets
            if w == longest and count > 0.0:
                squares = 0.0
                for k in range(n_buckets):
                    squares += cells[slot, squares_at + k]
                mean = total / count
                if mean > 0.0:  # prior amounts may all be 0.00 (card verifications): no ratio then
                    std = math.sqrt(max(squares / count - mean * mean, 0.0))
                    # A floor of 10% of the mean keeps one or two equal prior amounts from giving an
                    # infinite z-score.
                    std = max(std, 0.1 * mean, 0.01)
                    ratio = np.float32(a / mean)
                    zscore = np.float32((a - mean) / std)
            if covered:
                idx = here
                c = base + 3 * idx
                cells[slot, c] += 1.0
                cells[slot, c + 1] += a
                cells[slot, c + 2] = max(cells[slot, c + 2], a)
                if w == longest:
                    cells[slot, squares_at + idx] += a * a
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
        clock = max(prev, t)
        if n_label > 0:
            _label_features(
                records, cells, slot, t, clock, ring_gran, ring_len, heads, rings, n_buckets, delay_ms,
                horizon_ms, out, i, col,
            )  # fmt: skip
        records[slot, 0] = clock
        records[slot, SEEN] = max(records[slot, SEEN], arrived)
