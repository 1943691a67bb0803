"""An entity's state record: where it keeps what (``record_layout``), and starting it afresh."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["SEEN", "record_layout"]

_NO_TIME = np.int64(-(2**62))
SEEN = 1  # the record word holding the latest time an event of the entity reached the runtime


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
