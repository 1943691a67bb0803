"""Label feedback: confirmed frauds counted into each entity's label windows, and the label features
read from them point-in-time, never counting a transaction younger than the label delay."""

from __future__ import annotations

import numpy as np
from numba import njit

from fraudstream.core.features.kernels.records import _NO_TIME, record_layout
from fraudstream.core.features.kernels.slots import _find

__all__ = ["label_kernel"]


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
