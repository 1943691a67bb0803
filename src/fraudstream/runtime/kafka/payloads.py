"""The worker's output messages for a whole scored batch, written as JSON text column by column.

A message is, byte for byte, ``orjson.dumps`` of the nested dicts the worker once built per row
(``TransactionBatch.to_rows``, ``DecisionBatch.to_records`` with ``key_feature_rows``), without
building them: each column is serialized once for the whole batch and cut into the text of each
value, and a row's message is the concatenation of its texts with the fixed text between them (one
``bytes.join`` per row, called from C). Only rows that hit a rule or are explained (about 1%) take
Python work of their own, through the same `DecisionBatch` methods as ``to_records``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa

from fraudstream.core.engine import KEY_FEATURES, DecisionBatch
from fraudstream.core.policy import DECISIONS

__all__ = ["SCHEMA_VERSION", "decision_payloads"]

#: Version of the output messages' layout (decisions, alerts and dead letters).
SCHEMA_VERSION: Final = 1

#: orjson indents a list one item per line, and never writes a raw newline inside a value (it
#: escapes control characters in strings), so this separator cuts its text into each item's text.
_ITEM_SEPARATOR: Final = b",\n  "
_ITEMS_OPTION: Final = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
_DECISION_TEXT: Final = np.array([orjson.dumps(d) for d in DECISIONS], dtype=object)
#: ``reasons``, ``rules`` and ``shadow_rules`` of a row that hit no rule and is not explained.
_NO_REASONS: Final = b"[]"


def decision_payloads(
    decisions: DecisionBatch, partitions: Sequence[int], offsets: Sequence[int]
) -> list[bytes]:
    """One output message per row, in order: the transaction, its decision with key features, and
    the input message it came from (``partitions[i]``, ``offsets[i]``).

    >>> from fraudstream.core.engine import Engine
    >>> from fraudstream.core.batch import TransactionBatch
    >>> batch = TransactionBatch.from_pydict({"transaction_id": ["t1"], "timestamp": [0],
    ...     "user_id": ["u1"], "amount": [50.0], "currency": ["USD"]})
    >>> message = orjson.loads(decision_payloads(Engine().score(batch), [0], [41])[0])
    >>> message["decision"]["decision"], message["transaction"]["amount"], message["source"]
    ('approve', 50.0, {'partition': 0, 'offset': 41})
    """
    n = len(decisions)
    if not n:
        return []
    reasons, rules, shadow_rules = [_NO_REASONS] * n, [_NO_REASONS] * n, [_NO_REASONS] * n
    for row in _rows_with_reasons(decisions):
        reasons[row] = orjson.dumps([r.as_dict() for r in decisions.reasons(row)])
        rules[row] = orjson.dumps(decisions.rules_hit(row))
        shadow_rules[row] = orjson.dumps(decisions.rules_hit(row, shadow=True))
    cells: list[bytes | list[bytes]] = [b'{"schema_version":' + orjson.dumps(SCHEMA_VERSION)]
    cells += _transaction_cells(decisions.batch.data)
    cells += [
        b',"decision":{"transaction_id":',
        _items(decisions.transaction_id.to_pylist()),
        b',"decision":',
        _DECISION_TEXT[decisions.decision_code].tolist(),
        b',"score":',
        _items(decisions.score),
        b',"probability":',
        _items(np.round(decisions.probability.astype(np.float64), 6)),
        b',"is_alert":',
        _items(decisions.is_alert),
        b',"reasons":',
        reasons,
        b',"rules":',
        rules,
        b',"shadow_rules":',
        shadow_rules,
        b',"late":',
        _items(decisions.features.late),
        b',"model_version":' + orjson.dumps(decisions.model_version),
        b',"ruleset_version":' + orjson.dumps(decisions.rules.version),
        b',"features":',
        _key_features(decisions),
        b'},"source":{"partition":',
        _items(list(partitions)),
        b',"offset":',
        _items(list(offsets)),
        b"}}",
    ]
    return _join_rows(cells, n)


def _join_rows(cells: list[bytes | list[bytes]], n: int) -> list[bytes]:
    """Per row, the concatenation of the cells: fixed text, or a list with one text per row."""
    columns = [repeat(cell, n) if isinstance(cell, bytes) else cell for cell in cells]
    # strict: a column cut into the wrong number of values fails here rather than shifting messages.
    return list(map(b"".join, zip(*columns, strict=True)))


def _items(values: Sequence[object] | npt.NDArray[np.generic]) -> list[bytes]:
    """The JSON text of each value (at least one), exactly as orjson writes it inside a document."""
    if isinstance(values, np.ndarray):
        values = np.ascontiguousarray(values)  # orjson writes only contiguous arrays
    text = orjson.dumps(values, option=_ITEMS_OPTION)
    return text[4:-2].split(_ITEM_SEPARATOR)  # between "[\n  " and "\n]"


def _column_items(column: pa.Array) -> list[bytes]:
    """A transaction column's values as ``to_rows`` gives them: times in integer milliseconds, a
    missing or NaN number null."""
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.int64())
    if pa.types.is_floating(column.type):
        return _items(column.fill_null(np.nan).to_numpy())
    return _items(column.to_pylist())


def _transaction_cells(data: pa.RecordBatch) -> list[bytes | list[bytes]]:
    cells: list[bytes | list[bytes]] = []
    opening = b',"transaction":{'
    for name, column in zip(data.schema.names, data.columns):
        cells += [opening + orjson.dumps(name) + b":", _column_items(column)]
        opening = b","
    cells.append(b"}")
    return cells


def _key_features(decisions: DecisionBatch) -> list[bytes]:
    """Each row's ``key_feature_rows`` object: the basic key features, which rows that are not
    explained have alone, written column-wise; explained rows' from ``key_feature_rows`` itself, as
    the model's top features join them (and may round a basic one differently)."""
    index = decisions.features.index
    names = [name for name in KEY_FEATURES if name in index]
    values = np.round(decisions.features.values[:, [index[name] for name in names]], 4).astype(np.float64)
    cells: list[bytes | list[bytes]] = []
    opening = b"{"
    for j, name in enumerate(names):
        cells += [opening + orjson.dumps(name) + b":", _items(values[:, j])]
        opening = b","
    cells.append(b"}" if names else b"{}")
    objects = _join_rows(cells, len(decisions))
    explained = decisions.explained_rows.tolist()
    for row, features in zip(explained, decisions.key_feature_rows(explained)):
        objects[row] = orjson.dumps(features)
    return objects


def _rows_with_reasons(decisions: DecisionBatch) -> list[int]:
    """Rows that hit a rule (acting or shadow) or are explained: ``needs_reasons`` of ``to_records``."""
    busy = np.asarray(decisions.rule_hits.hits.any(axis=0), dtype=np.bool_)
    busy[decisions.explained_rows] = True
    return np.flatnonzero(busy).tolist()
