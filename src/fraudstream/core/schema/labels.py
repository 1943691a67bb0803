"""Label records (``{transaction_id, is_fraud, label_time?}``): checked rows in, a label batch out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fraudstream.core.batch import LABEL_SCHEMA, LabelBatch
from fraudstream.core.schema.fields import ALIASES
from fraudstream.core.schema.identifiers import _identifier
from fraudstream.core.schema.raw import _raw_values
from fraudstream.core.schema.results import RowError, _Errors
from fraudstream.core.schema.sources import _coalesce_values
from fraudstream.core.schema.times import _timestamps
from fraudstream.errors import FieldError


def label_rows(records: Sequence[Any], *, received_at_ms: int) -> tuple[list[dict[str, Any]], list[RowError]]:
    """The label records that are valid as plain rows, and the others' errors (see `Validator.labels`)."""
    errors = _Errors()
    mappings = [r if isinstance(r, Mapping) else {} for r in records]
    for row, record in enumerate(records):
        if not isinstance(record, Mapping):
            errors.add(row, FieldError("body", f"is a {type(record).__name__}", "a JSON object", None))
    id_sources = ["transaction_id", *(k for k, v in ALIASES.items() if v == "transaction_id")]
    ids_raw = _raw_values(_coalesce_values(mappings, id_sources))
    ids = _identifier("transaction_id", ids_raw, errors, True).to_pylist()
    times_raw = _raw_values(_coalesce_values(mappings, ["label_time", "labelTime"]))
    times = _timestamps(times_raw, errors, received_at_ms, "label_time").to_pylist()
    flags = _coalesce_values(mappings, ["is_fraud", "isFraud"])
    for row, flag in enumerate(flags):
        if not isinstance(flag, bool):
            errors.add(
                row,
                FieldError("is_fraud", "is required and must be true or false", "true or false", flag),
            )
    good = [
        {"transaction_id": ids[row], "is_fraud": flags[row], "label_time": times[row], "index": row}
        for row in range(len(mappings))
        if row not in errors.by_row
    ]
    bad = [RowError(r, ids[r], tuple(e)) for r, e in sorted(errors.by_row.items())]
    return good, bad


def label_batch(rows: Sequence[Mapping[str, Any]]) -> LabelBatch:
    """Labels enriched with their transactions' time and entity keys, as a batch for the engine.

    >>> row = {"transaction_id": "t1", "is_fraud": True, "label_time": 9, "transaction_time": 1}
    >>> label_batch([row]).is_fraud
    array([ True])
    """
    columns: dict[str, Sequence[object]] = {f.name: [r.get(f.name) for r in rows] for f in LABEL_SCHEMA}
    return LabelBatch.from_pydict(columns)
