"""Entity keys to state slots: FNV-1a hashes of the key strings and the open-addressing table that
maps a hash to its entity's slot."""

from __future__ import annotations

import numpy as np
from numba import njit

from fraudstream.core.features.kernels.prefetch import _AHEAD, _prefetch

__all__ = ["find_slots", "forget_newest", "hash_strings", "rebuild_table"]

_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)


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
