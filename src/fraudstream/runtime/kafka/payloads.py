"""The worker's output messages for a whole scored batch, written as JSON text column by column.

A message is, byte for byte, ``orjson.dumps`` of the nested dicts the worker once built per row
(``TransactionBatch.to_rows``, ``DecisionBatch.to_records`` with ``key_feature_rows``), without
building them. Each column's values become JSON texts side by side in one buffer: numbers and flags
written by orjson for the whole column at once and cut at the commas, strings quoted where they
stand when none needs escaping (orjson writes the column otherwise). A row's message is then a list
of byte ranges (fixed text between the values, and the row's value in each column), and one compiled
pass copies every row's ranges into place. Only rows that hit a rule or are explained (about 1%) take
Python work of their own, through the same `DecisionBatch` methods as ``to_records``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
from numba import njit

from fraudstream.core.batch import string_bytes
from fraudstream.core.engine import KEY_FEATURES, DecisionBatch
from fraudstream.core.policy import DECISIONS

__all__ = ["SCHEMA_VERSION", "decision_payloads"]

#: Version of the output messages' layout (decisions, alerts and dead letters).
SCHEMA_VERSION: Final = 1

_DECISION_TEXT: Final = [orjson.dumps(d) for d in DECISIONS]
#: ``reasons``, ``rules`` and ``shadow_rules`` of a row that hit no rule and is not explained.
_NO_REASONS: Final = b"[]"
_COMMA: Final = ord(",")
_QUOTE: Final = ord('"')
_BACKSLASH: Final = ord("\\")

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]


def decision_payloads(
    decisions: DecisionBatch, partitions: Sequence[int], offsets: Sequence[int]
) -> list[bytes]:
    """One output message per row, in order: the transaction, its decision with the challengers'
    probabilities (``shadow_scores``, by model version) and key features, and the input message it
    came from (``partitions[i]``, ``offsets[i]``).

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
    if len(partitions) != n or len(offsets) != n:
        raise ValueError(
            f"{n} decisions need {n} partitions and offsets, got {len(partitions)} and {len(offsets)}"
        )
    busy = _rows_with_reasons(decisions)
    rows = _Rows(n)
    rows.text(b'{"schema_version":' + orjson.dumps(SCHEMA_VERSION) + b',"transaction":{')
    data = decisions.batch.data
    for j, (name, column) in enumerate(zip(data.schema.names, data.columns)):
        rows.text((b"," if j else b"") + orjson.dumps(name) + b":")
        rows.column(column)
    rows.text(b'},"decision":{"transaction_id":')
    rows.strings(decisions.transaction_id)
    rows.text(b',"decision":')
    rows.choice(_DECISION_TEXT, decisions.decision_code)
    rows.text(b',"score":')
    rows.numbers(decisions.score)
    rows.text(b',"probability":')
    rows.numbers(np.round(decisions.probability.astype(np.float64), 6))
    rows.text(b',"is_alert":')
    rows.numbers(decisions.is_alert)
    rows.text(b',"reasons":')
    reasons = decisions.reasons_rows(busy)
    rows.sparse(_NO_REASONS, busy, [orjson.dumps([r.as_dict() for r in found]) for found in reasons])
    rows.text(b',"rules":')
    rows.sparse(_NO_REASONS, busy, [orjson.dumps(decisions.rules_hit(i)) for i in busy])
    rows.text(b',"shadow_rules":')
    rows.sparse(_NO_REASONS, busy, [orjson.dumps(decisions.rules_hit(i, shadow=True)) for i in busy])
    rows.text(b',"snoozes":')
    rows.sparse(_NO_REASONS, busy, [orjson.dumps(decisions.snoozes_applied(i)) for i in busy])
    rows.text(b',"late":')
    rows.numbers(decisions.features.late)
    rows.text(b',"model_version":' + orjson.dumps(decisions.model_version))
    rows.text(b',"ruleset_version":' + orjson.dumps(decisions.rules.version))
    rows.text(b',"shadow_scores":{')
    for j, (version, probability) in enumerate(decisions.shadow_probability.items()):
        rows.text((b"," if j else b"") + orjson.dumps(version) + b":")
        # Not rounded: the probability the embedded server stores for the same challenger.
        rows.numbers(probability.astype(np.float64))
    rows.text(b"}")
    rows.text(b',"features":')
    _key_features(rows, decisions)
    rows.text(b'},"source":{"partition":')
    rows.numbers(np.asarray(partitions, dtype=np.int64))
    rows.text(b',"offset":')
    rows.numbers(np.asarray(offsets, dtype=np.int64))
    rows.text(b"}}")
    return rows.assemble()


class _Rows:
    """Messages under construction: per row, a list of byte ranges into one growing buffer. A part
    is fixed text (one range for every row) or a column (one range per row)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._buffers: list[U8] = []
        self._size = 0
        self._parts: list[tuple[int, int, int]] = []  # (fixed start, fixed end, column) per part
        self._starts: list[I64] = []  # per column
        self._ends: list[I64] = []
        self._pending = b""  # fixed text not yet added, so that neighbours merge into one range

    def _store(self, data: U8 | bytes) -> int:
        """Append to the buffer; return where it starts."""
        array = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
        at = self._size
        self._buffers.append(array)
        self._size += len(array)
        return at

    def _part(self, starts: I64, ends: I64) -> int:
        """Add a column part; return its column number."""
        self._flush()
        self._parts.append((0, 0, len(self._starts)))
        self._starts.append(starts)
        self._ends.append(ends)
        return len(self._starts) - 1

    def _flush(self) -> None:
        fixed, self._pending = self._pending, b""
        if fixed:
            at = self._store(fixed)
            self._parts.append((at, at + len(fixed), -1))

    def text(self, fixed: bytes) -> None:
        """The same text in every row."""
        self._pending += fixed

    def numbers(self, values: npt.NDArray[np.generic]) -> None:
        """Each row's number or flag, as orjson writes it inside a document (NaN as ``null``): the
        whole column written once, then cut at the commas."""
        text = orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY)
        inner = np.frombuffer(text, dtype=np.uint8)[1:-1]  # between "[" and "]"
        commas = np.flatnonzero(inner == _COMMA)
        if len(commas) != self.n - 1:  # a value cut wrongly would shift every message after it
            raise ValueError(f"{self.n} values were written as {len(commas) + 1} texts")
        at = self._store(inner)
        starts = np.empty(self.n, dtype=np.int64)
        ends = np.empty(self.n, dtype=np.int64)
        starts[0] = at
        starts[1:] = at + commas + 1
        ends[:-1] = at + commas
        ends[-1] = at + len(inner)
        self._part(starts, ends)

    def strings(self, column: pa.Array) -> None:
        """Each row's string as a JSON string (``null`` for a missing one), as orjson writes it."""
        if column.type != pa.string():
            raise TypeError(f"expected a string column, got {column.type}")
        offsets, data = string_bytes(column)
        region = data[offsets[0] : offsets[-1]]
        if ((region < 0x20) | (region == _QUOTE) | (region == _BACKSLASH)).any():
            # Some value needs escaping (free text, odd identifiers): orjson writes the column.
            text = orjson.dumps(column.to_pylist(), option=orjson.OPT_INDENT_2)
            self.each(text[4:-2].split(b",\n  "))  # between "[\n  " and "\n]"
            return
        at = self._store(region)
        starts = at + offsets[:-1].astype(np.int64) - offsets[0]
        ends = at + offsets[1:].astype(np.int64) - offsets[0]
        if not column.null_count:
            # Every value present: the quotes join the fixed text on either side.
            self.text(b'"')
            self._part(starts, ends)
            self.text(b'"')
            return
        quote = self._store(b'"')
        opening = np.full(self.n, quote, dtype=np.int64)
        closing = opening + 1
        missing = ~column.is_valid().to_numpy(zero_copy_only=False)
        null = self._store(b"null")
        closing[missing] = quote  # no quotes around null
        starts[missing] = null
        ends[missing] = null + 4
        self._part(opening, closing)
        self._part(starts, ends)
        self._part(opening, closing)

    def column(self, column: pa.Array) -> None:
        """A transaction column's values as ``to_rows`` gives them: times in integer milliseconds,
        a missing or NaN number null."""
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        if pa.types.is_floating(column.type):
            self.numbers(column.fill_null(np.nan).to_numpy())
        elif pa.types.is_string(column.type):
            self.strings(column)
        elif column.null_count == 0 and (
            pa.types.is_integer(column.type) or pa.types.is_boolean(column.type)
        ):
            self.numbers(column.to_numpy(zero_copy_only=False))
        else:
            self.each([orjson.dumps(v) for v in column.to_pylist()])

    def _store_texts(self, texts: list[bytes]) -> tuple[I64, I64]:
        """Append the texts one after another; return where each starts and ends."""
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        ends = self._store(b"".join(texts)) + np.cumsum(lengths)
        return ends - lengths, ends

    def each(self, texts: list[bytes]) -> None:
        """Every row's text, given one by one."""
        self._part(*self._store_texts(texts))

    def choice(self, texts: list[bytes], codes: npt.NDArray[np.integer]) -> None:
        """Row i gets ``texts[codes[i]]``."""
        starts, ends = self._store_texts(texts)
        self._part(starts[codes], ends[codes])

    def sparse(self, default: bytes, rows: list[int], texts: list[bytes]) -> None:
        """``default`` in every row except ``rows``, which get ``texts``."""
        at = self._store(default)
        starts = np.full(self.n, at, dtype=np.int64)
        self.replace(self._part(starts, starts + len(default)), rows, texts)

    def messages(self, data: U8, bounds: I64) -> int:
        """Row i gets ``data[bounds[i]:bounds[i + 1]]`` (another `_Rows`' result); return its column."""
        at = self._store(data)
        return self._part(at + bounds[:-1], at + bounds[1:])

    def replace(self, column: int, rows: list[int], texts: list[bytes]) -> None:
        """Rows ``rows`` get ``texts`` in the column ``column``."""
        if not rows:
            return
        index = np.asarray(rows, dtype=np.int64)
        self._starts[column][index], self._ends[column][index] = self._store_texts(texts)

    def joined(self) -> tuple[U8, I64]:
        """Every row's text, one after another, and where each starts: one compiled pass copies
        every row's ranges."""
        self._flush()
        data = np.concatenate(self._buffers) if self._buffers else np.zeros(0, dtype=np.uint8)
        parts = np.array(self._parts, dtype=np.int64).reshape(-1, 3)
        starts = np.stack(self._starts) if self._starts else np.zeros((0, self.n), dtype=np.int64)
        ends = np.stack(self._ends) if self._ends else np.zeros((0, self.n), dtype=np.int64)
        fixed = parts[parts[:, 2] < 0]
        if (len(starts) and (starts.min() < 0 or ends.max() > len(data) or (ends < starts).any())) or (
            len(fixed) and fixed[:, 1].max() > len(data)
        ):
            raise AssertionError("a message range falls outside the text buffer")  # never copy blindly
        bounds = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum((ends - starts).sum(axis=0) + (fixed[:, 1] - fixed[:, 0]).sum(), out=bounds[1:])
        out = np.empty(int(bounds[-1]), dtype=np.uint8)
        _copy_ranges(data, parts, starts, ends, bounds, out)
        return out, bounds

    def assemble(self) -> list[bytes]:
        """Every row's message."""
        out, bounds = self.joined()
        messages = pa.Array.from_buffers(
            pa.large_binary(), self.n, [None, pa.py_buffer(bounds), pa.py_buffer(out)]
        )
        return messages.to_pylist()  # type: ignore[no-any-return]


@njit(cache=True, nogil=True)
def _copy_ranges(data, parts, starts, ends, bounds, out):  # type: ignore[no-untyped-def]
    """Row i of ``out`` (from ``bounds[i]``) is, for every part, ``data[parts[k, 0]:parts[k, 1]]``
    when the part is fixed (``parts[k, 2] < 0``), else ``data[starts[c, i]:ends[c, i]]`` of its
    column ``c = parts[k, 2]``."""
    for i in range(bounds.shape[0] - 1):
        at = bounds[i]
        for k in range(parts.shape[0]):
            c = parts[k, 2]
            if c < 0:
                begin = parts[k, 0]
                stop = parts[k, 1]
            else:
                begin = starts[c, i]
                stop = ends[c, i]
            for j in range(begin, stop):
                out[at] = data[j]
                at += 1


def _key_features(rows: _Rows, decisions: DecisionBatch) -> None:
    """Each row's ``key_feature_rows`` object: the basic key features, which rows that are not
    explained have alone, written column-wise; explained rows' from ``key_feature_rows`` itself, as
    the model's top features join them (and may round a basic one differently)."""
    index = decisions.features.index
    names = [name for name in KEY_FEATURES if name in index]
    objects = _Rows(rows.n)
    if not names:
        objects.text(b"{}")
    else:
        values = np.round(decisions.features.values[:, [index[name] for name in names]].astype(np.float64), 4)
        opening = b"{"
        for j, name in enumerate(names):
            objects.text(opening + orjson.dumps(name) + b":")
            objects.numbers(values[:, j])
            opening = b","
        objects.text(b"}")
    column = rows.messages(*objects.joined())
    explained = decisions.explained_rows.tolist()
    rows.replace(column, explained, [orjson.dumps(f) for f in decisions.key_feature_rows(explained)])


def _rows_with_reasons(decisions: DecisionBatch) -> list[int]:
    """Rows that hit a rule (acting or shadow), are explained or snoozed: ``needs_reasons`` of
    ``to_records``."""
    busy = np.asarray(decisions.rule_hits.hits.any(axis=0), dtype=np.bool_)
    busy[decisions.explained_rows] = True
    busy[decisions.snoozed_rows()] = True
    return np.flatnonzero(busy).tolist()
