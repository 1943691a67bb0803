"""Compiled (numba) loops over a batch: entity-key hashing, window state updates, label feedback.

Every kernel walks the batch once, in order, and reads/writes flat state arrays; Python only calls
each kernel once per batch and entity kind. Processing order inside a kernel is the batch order, so
splitting a stream into batches of any size gives the same result.

The loops index state rows as ``records[slot, k]`` rather than taking the row ``records[slot]``
once: a row is an array view, and each view costs the runtime reference counting (atomic
operations) per event and kind. Indexing in place made the feature kernels ~15% faster.

One module per subject: ``slots`` (key hashes and the table from a key to its state slot),
``records`` (what an entity's record keeps where), ``windows`` (the entity kernel), ``labels``
(label windows), ``user_extras`` (first-seen keys, distinct counts, travel), ``aggregates`` (the
aggregations declared in configuration) and ``prefetch``.

numba checks a cached kernel against its own file only, and these call each other across modules
(``_find``, ``_assign_slots``, ``_label_features``, ``_prefetch_ahead``, ...): the cache therefore
lives in a folder named after all the kernels' source (`fraudstream.kernel_cache`), so an edit to
any of them compiles every kernel afresh.
"""

from __future__ import annotations

from fraudstream.core.features.kernels.aggregates import aggregate_kernel, aggregate_layout
from fraudstream.core.features.kernels.labels import label_kernel
from fraudstream.core.features.kernels.records import SEEN, record_layout
from fraudstream.core.features.kernels.slots import find_slots, forget_newest, hash_strings, rebuild_table
from fraudstream.core.features.kernels.user_extras import extras_layout, user_extras_kernel
from fraudstream.core.features.kernels.windows import bucket_numbers, entity_kernel

__all__ = [
    "SEEN",
    "aggregate_kernel",
    "aggregate_layout",
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
