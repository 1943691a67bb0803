"""Compiled (numba) loops over a batch: entity-key hashing, window state updates, label feedback.

Every kernel walks the batch once, in order, and reads/writes flat state arrays; Python only calls
each kernel once per batch and entity kind. Processing order inside a kernel is the batch order, so
splitting a stream into batches of any size gives the same result.

The loops index state rows as ``records[slot, k]`` rather than taking the row ``records[slot]``
once: a row is an array view, and each view costs the runtime reference counting (atomic
operations) per event and kind. Indexing in place made the feature kernels ~15% faster.

The state is far larger than the processor's caches, so most of an event's records come from main
memory. The loops ask for the records of the event ``_AHEAD`` places further on (and the hash table
rows of its keys) with prefetch instructions, which do not wait: the memory works while the loop
computes, rather than in a pass of its own before it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "SEEN",
    "bucket_numbers",
    "entity_kernel",
    "extras_layout",
    "find_slots",
    "forget_newest",
    "hash_strings",
    "label_kernel",
    "rebuild_table",
    "record_layout",
    "user_extras_kernel",
]

_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)
_EARTH_RADIUS_KM = 6371.0088
_NO_TIME = np.int64(-(2**62))
#: How many events ahead the loops prefetch state: far enough for main memory to answer (~100 ns)
#: while they compute, near enough that the lines are still in cache when the loop gets there.
#: 8, 16 and 32 measured alike; 16 is in the middle.
_AHEAD = 16
_LINE_WORDS = 8  # int64 words per 64-byte cache line
SEEN = 1  # the record word holding the latest time an event of the entity reached the runtime


def _prefetch_line(typingctx, array, row, col):  # type: ignore[no-untyped-def]
    """Ask for the cache line holding ``array[row, col]``, to be written soon (``prefetchw``).

    A hint: it never faults, whatever the address, and the loop does not wait for it.
    """

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        index = [context.cast(builder, args[k], signature.args[k], types.intp) for k in (1, 2)]
        address = cgutils.get_item_pointer2(
            context,
            builder,
            data=view.data,
            shape=cgutils.unpack_tuple(builder, view.shape),
            strides=cgutils.unpack_tuple(builder, view.strides),
            layout=array_type.layout,
            inds=index,
            wraparound=False,
            boundscheck=False,
        )
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        # The name of typed-pointer LLVM (numba 0.60's); LLVM with opaque pointers accepts it too.
        signature_type = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
        prefetch = cgutils.get_or_insert_function(builder.module, signature_type, "llvm.prefetch.p0i8")
        # Arguments: the address, 1 = for writing, 3 = keep in every cache level, 1 = data.
        builder.call(prefetch, [builder.bitcast(address, byte_pointer), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row, col), codegen


#: ``_prefetch(array, row, col)`` inside compiled code (numba passes the typing context itself).
_prefetch: Any = intrinsic(_prefetch_line)


@njit(cache=True, nogil=True)
def _prefetch_row(rows, row):  # type: ignore[no-untyped-def]
    """Prefetch every cache line of ``rows[row]`` (int64 rows that start on a line, as records do)."""
    for k in range(0, rows.shape[1], _LINE_WORDS):
        _prefetch(rows, row, k)


@njit(cache=True, nogil=True)
def _prefetch_ahead(slots, rows, i):  # type: ignore[no-untyped-def]
    """Prefetch the row of the event ``_AHEAD`` after ``i``, and at the first event the rows of
    every event up to there (a slot below 0 has no row)."""
    n = slots.shape[0]
    for j in range(0 if i == 0 else i + _AHEAD, min(i + _AHEAD + 1, n)):
        if slots[j] >= 0:
            _prefetch_row(rows, slots[j])


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
def _find(h, table):  # type: ignore[no-untyped-def]
    """(slot, position) of key ``h`` in the table; slot -1 and the free position if absent.

    A table row holds a key and its slot side by side, so a lookup touches one cache line.
    """
    mask = table.shape[0] - 1
    pos = np.int64(h & np.uint64(mask))
    while True:
        k = table[pos, 0]
        if k == h:
            return np.int64(table[pos, 1]), pos
        if k == 0:
            return np.int64(-1), pos
        pos = (pos + 1) & mask


@njit(cache=True, nogil=True)
def find_slots(hashes, table, out):  # type: ignore[no-untyped-def]
    """The state slot of each key, or -1 where the key is null or not remembered."""
    for i in range(hashes.shape[0]):
        out[i] = -1 if hashes[i] == 0 else _find(hashes[i], table)[0]


@njit(cache=True, nogil=True)
def forget_newest(keys, n_keep, n_used, table):  # type: ignore[no-untyped-def]
    """Remove the keys of slots ``n_keep..n_used`` from the table, newest first.

    Deleting in reverse insertion order is safe for linear probing: any key whose probe passed
    over a deleted position was inserted after it, and so is already gone.
    """
    for slot in range(n_used - 1, n_keep - 1, -1):
        _, pos = _find(keys[slot], table)
        table[pos, 0] = 0
        table[pos, 1] = 0
        keys[slot] = 0


@njit(cache=True, nogil=True)
def rebuild_table(keys, n_used, table):  # type: ignore[no-untyped-def]
    """Fill an empty open-addressing table with the first ``n_used`` keys."""
    for slot in range(n_used):
        _, pos = _find(keys[slot], table)
        table[pos, 0] = keys[slot]
        table[pos, 1] = slot


@njit(cache=True, nogil=True)
def _haversine(lat1, lon1, lat2, lon2):  # type: ignore[no-untyped-def]
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2.0) ** 2
    return 2.0 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@njit(cache=True, nogil=True)
def record_layout(n_windows, n_buckets, ring_lengths):  # type: ignore[no-untyped-def]
    """Where an entity's record keeps what, and its length in int64 words.

    A record is one row of int64 words, read as int64 for its times and as float32 for the rest:

    - int64 ``[0]`` the latest event time, ``[1]`` the latest time an event of the entity reached
      the runtime (processing time: what idle expiry measures); for an entity with label feedback
      (``ring_lengths`` not empty) then, from ``heads``, the head bucket of each label ring, and
      after them the transaction times of the first and the last confirmed fraud of the entity's
      current run of frauds (a window's head bucket, the latest it has counted into, is not kept:
      it is the bucket of the latest event time);
    - float32 from ``first``: the buckets of every window (count, sum, max per bucket); from
      ``squares`` the sums of squared amounts of the longest window's buckets; from ``rings`` each
      label window's ring of buckets (transactions, frauds per bucket), one ring after the other.

    Rows are padded to whole 64-byte cache lines. Returns (heads, first, squares, rings, words).
    """
    n_label = ring_lengths.shape[0]
    heads = 2
    words_of_times = heads + (n_label + 2 if n_label > 0 else 0)
    first = 2 * words_of_times
    squares = first + 3 * n_windows * n_buckets
    rings = squares + n_buckets
    end = rings
    for k in range(n_label):
        end += 2 * ring_lengths[k]
    words = (end + 1) // 2
    return heads, first, squares, rings, (words + 7) // 8 * 8


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

    Computed a length at a time (a vectorized loop) and handed over as transposed views.

    >>> numbers, positions = bucket_numbers(np.array([-1, 0, 59_999, 60_000]), np.array([10_000, 60_000]), 6)
    >>> numbers.tolist(), positions.tolist()
    ([[-1, -1], [0, 0], [5, 0], [6, 1]], [[5, 5], [0, 0], [5, 0], [0, 1]])
    """
    numbers, positions = _bucket_numbers(ts, lengths, n_buckets)
    return numbers.T, positions.T


@njit(cache=True, nogil=True)
def _assign_slots(hashes, table, keys, n_used, slots_out, fresh_out):  # type: ignore[no-untyped-def]
    """Find (or create) the state slot of every event's entity, in batch order."""
    n = hashes.shape[0]
    mask = np.uint64(table.shape[0] - 1)
    for i in range(min(_AHEAD, n)):
        _prefetch(table, np.int64(hashes[i] & mask), 0)
    for i in range(n):
        if i + _AHEAD < n:
            _prefetch(table, np.int64(hashes[i + _AHEAD] & mask), 0)  # where its probe starts
        h = hashes[i]
        if h == 0:
            slots_out[i] = -1
            fresh_out[i] = False
            continue
        slot, pos = _find(h, table)
        fresh_out[i] = slot < 0
        if slot < 0:
            slot = n_used[0]
            n_used[0] += 1
            table[pos, 0] = h
            table[pos, 1] = slot
            keys[slot] = h
        slots_out[i] = slot


@njit(cache=True, nogil=True)
def _reset_row(records, cells, slot, t, first, heads, ring_gran):  # type: ignore[no-untyped-def]
    """Start entity ``slot`` afresh at an event of time ``t``: no previous event, empty buckets, no
    confirmed fraud."""
    records[slot, 0] = _NO_TIME
    records[slot, SEEN] = _NO_TIME
    n_label = ring_gran.shape[0]
    if n_label > 0:
        for lw in range(n_label):
            records[slot, heads + lw] = t // ring_gran[lw]
        records[slot, heads + n_label] = _NO_TIME
        records[slot, heads + n_label + 1] = _NO_TIME
    for j in range(first, cells.shape[1]):
        cells[slot, j] = 0.0


@njit(cache=True, nogil=True)
def _label_features(  # type: ignore[no-untyped-def]
    records,
    cells,
    slot,
    t,
    clock,
    ring_gran,
    ring_len,
    heads,
    rings,
    n_buckets,
    delay_ms,
    horizon_ms,
    out,
    i,
    col,
):
    """Count event ``t`` into every label ring of entity ``slot``, then write its label features from
    ``col``: per label window the confirmed frauds and their share of the transactions of the window
    wholly before ``clock - delay_ms`` (``clock``: the entity's latest event), then the seconds since
    the first and the last fraud of the entity's current run of frauds (missing when the last is
    more than ``horizon_ms`` before ``clock - delay_ms``)."""
    nan = np.float32(np.nan)
    n_label = ring_gran.shape[0]
    at = rings
    for lw in range(n_label):
        g = ring_gran[lw]
        n = ring_len[lw]
        b = t // g
        hd = records[slot, heads + lw]
        if b > hd:
            steps = min(b - hd, n)
            for s in range(1, steps + 1):
                k = (b - steps + s) % n
                cells[slot, at + 2 * k] = 0.0
                cells[slot, at + 2 * k + 1] = 0.0
            records[slot, heads + lw] = b
            hd = b
        if b > hd - n:
            cells[slot, at + 2 * (b % n)] += 1.0
        # The last bucket wholly at or before clock - delay (with no delay: the clock's own bucket),
        # so that no transaction younger than the delay is counted, even within a bucket.
        end = (clock - delay_ms + 1) // g - 1 if delay_ms > 0 else clock // g
        count = 0.0
        frauds = 0.0
        for k in range(n_buckets):
            bb = end - k
            if hd - n < bb <= hd:
                count += cells[slot, at + 2 * (bb % n)]
                frauds += cells[slot, at + 2 * (bb % n) + 1]
        out[i, col] = frauds
        out[i, col + 1] = frauds / count if count > 0.0 else nan
        col += 2
        at += 2 * n
    first_fraud = records[slot, heads + n_label]
    last_fraud = records[slot, heads + n_label + 1]
    if last_fraud != _NO_TIME and clock - delay_ms - last_fraud <= horizon_ms:
        out[i, col] = max(clock - first_fraud, 0) / 1000.0
        out[i, col + 1] = max(clock - last_fraud, 0) / 1000.0
    else:
        out[i, col] = nan
        out[i, col + 1] = nan


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


@njit(cache=True, nogil=True)
def label_kernel(  # type: ignore[no-untyped-def]
    hashes, tx_ts, is_fraud, n_windows, n_buckets, ring_gran, ring_len, horizon_ms, table, records, cells
):
    """Count confirmed frauds into the ring bucket of the transaction's own time, where the ring still
    holds it, and extend the entity's run of frauds: a fraud more than ``horizon_ms`` after the run's
    last starts a new run."""
    n_label = ring_gran.shape[0]
    heads, _, _, rings, _ = record_layout(n_windows, n_buckets, ring_len)
    for i in range(hashes.shape[0]):
        h = hashes[i]
        if h == 0 or not is_fraud[i]:
            continue
        slot, _ = _find(h, table)
        if slot < 0:
            continue
        s = tx_ts[i]
        at = rings
        for lw in range(n_label):
            n = ring_len[lw]
            b = s // ring_gran[lw]
            hd = records[slot, heads + lw]
            if hd - n < b <= hd:
                cells[slot, at + 2 * (b % n) + 1] += 1.0
            at += 2 * n
        first_col = heads + n_label
        first_fraud = records[slot, first_col]
        last_fraud = records[slot, first_col + 1]
        if last_fraud == _NO_TIME or s > last_fraud + horizon_ms:
            records[slot, first_col] = s
            records[slot, first_col + 1] = s
        else:
            if first_fraud - horizon_ms <= s < first_fraud:
                records[slot, first_col] = s
            records[slot, first_col + 1] = max(last_fraud, s)


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
