"""Declared aggregations of one entity kind: count, sum, mean and max of a numeric field over bucketed
windows, and exact distinct counts of a field's values (bounded per entity), event by event in
batch order."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from fraudstream.core.features.kernels.prefetch import _prefetch_ahead
from fraudstream.core.features.kernels.records import _NO_TIME
from fraudstream.core.features.kernels.windows import _floor_divide

__all__ = ["aggregate_kernel", "aggregate_layout"]

#: Function codes of the numeric outputs, in the order of ``spec.AGGREGATE_FUNCTIONS``.
COUNT, SUM, MEAN, MAX = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def aggregate_layout(n_sources, n_buckets, n_distinct, limit):  # type: ignore[no-untyped-def]
    """Where an entity's aggregates row keeps what, and its length in 64-bit words.

    Word 0 (int64) is the entity's latest event time as these aggregations last saw it. From
    ``sources`` (read as float64), per source (a numeric field over a window), the count and sum of
    its whole window, then ``n_buckets`` buckets of (count, sum, max) of the field's values: the
    window's totals are kept as buckets come and go, so that count, sum and mean read two words
    rather than every bucket (max still reads the buckets). From ``distinct`` (int64), per distinct
    aggregation, ``limit`` value hashes followed by as many last-seen times. Rows are padded to
    whole 64-byte cache lines. Returns (sources, distinct, words).
    """
    sources = 1
    distinct = sources + (2 + 3 * n_buckets) * n_sources
    words = distinct + 2 * n_distinct * limit
    return sources, distinct, (words + 7) // 8 * 8


@njit(cache=True, nogil=True)
def _reset(rows, slot, distinct_at, n_distinct, limit):  # type: ignore[no-untyped-def]
    """Start entity ``slot``'s aggregations afresh: no previous event, empty buckets and value sets."""
    rows[slot, 0] = _NO_TIME
    for k in range(1, rows.shape[1]):
        rows[slot, k] = 0
    for d in range(n_distinct):
        times = distinct_at + 2 * limit * d + limit
        for k in range(limit):
            rows[slot, times + k] = _NO_TIME


@njit(cache=True, nogil=True)
def _count_distinct(rows, slot, hashes_at, limit, h, t, clock, window):  # type: ignore[no-untyped-def]
    """Note value ``h`` (0: none) seen at ``t``, then count the values seen in ``(clock - window, clock]``.

    The set keeps the ``limit`` values seen most recently: a new value replaces the one seen
    longest ago, unless that one is more recent than ``t`` (a late event). So the count is exact
    while a window holds at most ``limit`` values, and reads ``limit`` beyond."""
    times_at = hashes_at + limit
    cutoff = clock - window
    # One pass: the values seen in the window so far, the one equal to h and the one seen longest ago.
    distinct = 0
    found = -1
    oldest = 0
    for k in range(limit):
        seen = rows[slot, times_at + k]
        if rows[slot, hashes_at + k] != 0 and seen > cutoff:
            distinct += 1
        if rows[slot, hashes_at + k] == h:
            found = k
        if seen < rows[slot, times_at + oldest]:
            oldest = k
    if h == 0 or t <= cutoff:
        return distinct
    if found >= 0:
        before = rows[slot, times_at + found]
        if before <= cutoff:
            distinct += 1  # seen again within the window
        rows[slot, times_at + found] = max(before, t)
    elif rows[slot, times_at + oldest] < t:
        if rows[slot, hashes_at + oldest] != 0 and rows[slot, times_at + oldest] > cutoff:
            distinct -= 1  # the value it replaces was in the window
        rows[slot, hashes_at + oldest] = h
        rows[slot, times_at + oldest] = t
        distinct += 1
    return distinct


@njit(cache=True, nogil=True)
def aggregate_kernel(  # type: ignore[no-untyped-def]
    slots,
    fresh,
    ts,
    values,
    keys,
    bucket_of,
    position_of,
    source_rows,
    source_gran,
    source_field,
    source_max,
    n_buckets,
    output_source,
    output_function,
    output_column,
    distinct_field,
    distinct_window,
    distinct_column,
    limit,
    rows,
    cells,
    out,
):
    """Score-then-update the declared aggregations of one entity kind for every event of the batch.

    ``slots`` and ``fresh`` are what the entity kernel of the same kind wrote for the batch (each
    event's state slot, -1 without a key; whether the entity started afresh). ``values[i, f]`` is
    event i's numeric field f (NaN: missing), ``keys[i, f]`` the hash of its field f for distinct
    counts (0: missing). Each source s (a field over a window) keeps buckets of ``source_gran[s]``
    ms (row ``source_rows[s]`` of ``bucket_of``/``position_of``), and reads its maximum only when
    ``source_max[s]`` (an output asks for it); output o writes
    ``output_function[o]`` of source ``output_source[o]`` into column ``output_column[o]`` of
    ``out``, and distinct aggregation d its count into ``distinct_column[d]``. Like the entity
    windows, every value includes the current event's. ``rows`` holds one row per entity (see
    ``aggregate_layout``); ``cells`` is the same memory read as float64.
    """
    n_sources = source_rows.shape[0]
    n_outputs = output_source.shape[0]
    n_distinct = distinct_field.shape[0]
    _, distinct_at, _ = aggregate_layout(n_sources, n_buckets, n_distinct, limit)
    inverse = 1.0 / source_gran
    nan = np.float32(np.nan)
    totals = np.zeros((max(n_sources, 1), 3))  # count, sum, max of each source for one event
    for i in range(slots.shape[0]):
        _prefetch_ahead(slots, rows, i)
        slot = slots[i]
        if slot < 0:
            for o in range(n_outputs):
                out[i, output_column[o]] = nan
            for d in range(n_distinct):
                out[i, distinct_column[d]] = nan
            continue
        t = ts[i]
        if fresh[i]:
            _reset(rows, slot, distinct_at, n_distinct, limit)
        prev = rows[slot, 0]
        new = prev == _NO_TIME
        for s in range(n_sources):
            b = bucket_of[i, source_rows[s]]
            here = position_of[i, source_rows[s]]
            hd = b if new else _floor_divide(prev, source_gran[s], inverse[s])
            at = 1 + (2 + 3 * n_buckets) * s  # the window's count and sum, then its buckets
            base = at + 2
            if b >= hd + n_buckets:
                # The whole window has passed since the entity's latest event: empty it at once.
                for c in range(at, base + 3 * n_buckets):
                    cells[slot, c] = 0.0
                hd = b
            elif b > hd:
                steps = b - hd
                idx = here - steps + 1
                if idx < 0:
                    idx += n_buckets
                for _ in range(steps):
                    c = base + 3 * idx
                    cells[slot, at] -= cells[slot, c]
                    cells[slot, at + 1] -= cells[slot, c + 1]
                    cells[slot, c] = 0.0
                    cells[slot, c + 1] = 0.0
                    cells[slot, c + 2] = 0.0
                    idx += 1
                    if idx == n_buckets:
                        idx = 0
                hd = b
            v = values[i, source_field[s]]
            if b > hd - n_buckets and not math.isnan(v):
                c = base + 3 * here
                cells[slot, c + 2] = v if cells[slot, c] == 0.0 else max(cells[slot, c + 2], v)
                cells[slot, c] += 1.0
                cells[slot, c + 1] += v
                cells[slot, at] += 1.0
                cells[slot, at + 1] += v
            count = cells[slot, at]
            if count <= 0.0:  # an empty window: exactly nothing, whatever rounding the sums left
                cells[slot, at] = 0.0
                cells[slot, at + 1] = 0.0
                count = 0.0
            totals[s, 0] = count
            totals[s, 1] = cells[slot, at + 1]
            if source_max[s]:
                peak = -np.inf
                for k in range(n_buckets):
                    c = base + 3 * k
                    if cells[slot, c] > 0.0:
                        peak = max(peak, cells[slot, c + 2])
                totals[s, 2] = peak
        for o in range(n_outputs):
            s = output_source[o]
            function = output_function[o]
            count = totals[s, 0]
            if function == COUNT:
                value = count
            elif function == SUM:
                value = totals[s, 1]
            elif function == MEAN:
                value = totals[s, 1] / count if count > 0.0 else np.nan
            else:
                value = totals[s, 2] if count > 0.0 else np.nan
            out[i, output_column[o]] = value
        clock = t if new else max(prev, t)
        for d in range(n_distinct):
            hashes_at = distinct_at + 2 * limit * d
            h = keys[i, distinct_field[d]]
            out[i, distinct_column[d]] = _count_distinct(
                rows, slot, hashes_at, limit, h, t, clock, distinct_window[d]
            )
        rows[slot, 0] = clock
