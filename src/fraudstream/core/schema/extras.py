"""Unknown extra fields, kept as attributes: bounded in depth and size, card numbers masked."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import orjson

from fraudstream.core.cards import luhn_valid_many, mask_card
from fraudstream.core.schema.results import _Errors
from fraudstream.errors import FieldError

_CARD_LIKE: Final = re.compile(r"^[\d\s-]{12,40}$")


def _safe_extra(value: Any) -> Any:
    """Extra fields are kept, but anything that holds a valid card number is masked first."""
    if isinstance(value, int) and not isinstance(value, bool):
        value_text = str(abs(value))
        if 12 <= len(value_text) <= 19 and luhn_valid_many([value_text])[0]:
            return mask_card(value_text)
    elif isinstance(value, str) and _CARD_LIKE.match(value):
        digits = re.sub(r"[\s-]", "", value)
        if 12 <= len(digits) <= 19 and luhn_valid_many([digits])[0]:
            return mask_card(digits)
    elif isinstance(value, Mapping):
        return {k: _safe_extra(v) for k, v in value.items()}
    elif isinstance(value, list):
        return [_safe_extra(v) for v in value]
    return value


#: Extra fields are kept for analysts and exports, not as a store for arbitrary documents: deeper or
#: larger ones are refused, so that nothing a client sends can break hashing or serialising (orjson
#: stops at 255 levels) or bloat every stored row.
MAX_EXTRA_DEPTH: Final = 16
MAX_EXTRA_BYTES: Final = 16_384
_EXTRA_DEPTH_ALLOWED: Final = f"objects and lists nested at most {MAX_EXTRA_DEPTH} levels deep"
_EXTRA_SIZE_ALLOWED: Final = f"at most {MAX_EXTRA_BYTES:,} bytes of JSON in extra fields altogether"


def _nesting_depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests objects and lists, counted up to ``limit + 1`` and no further
    (iterative: a document a thousand levels deep must not exhaust Python's recursion limit)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, Mapping | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return deepest
            children = item.values() if isinstance(item, Mapping) else item
            pending.extend((child, depth) for child in children)
    return deepest


def _check_extras(mappings: Sequence[Mapping[str, Any]], known: set[str], errors: _Errors) -> None:
    """Flag rows whose extra fields nest too deeply or weigh too much."""
    for row, record in enumerate(mappings):
        size = 0
        for name, value in record.items():
            if name in known:
                continue
            depth = _nesting_depth(value, MAX_EXTRA_DEPTH)
            if depth > MAX_EXTRA_DEPTH:
                problem = f"nests more than {MAX_EXTRA_DEPTH} levels deep"
                errors.add(row, FieldError(name, problem, _EXTRA_DEPTH_ALLOWED, None))
                size = -1
                break
            size += len(name) + len(orjson.dumps(value, default=str))
        if size > MAX_EXTRA_BYTES:
            problem = f"extra fields hold {size:,} bytes of JSON"
            errors.add(row, FieldError("body", problem, _EXTRA_SIZE_ALLOWED, None))


def _attributes(
    rows: Iterable[Mapping[str, Any]], known: frozenset[str] | set[str], skip: Iterable[int] = ()
) -> list[str | None]:
    """Each row's extra fields as compact JSON (None for none, and for the rows in ``skip``)."""
    out: list[str | None] = []
    skipped = set(skip)
    for row, record in enumerate(rows):
        extra = {} if row in skipped else {
            k: _safe_extra(v) for k, v in record.items() if k not in known and v is not None
        }  # fmt: skip
        out.append(orjson.dumps(extra, default=str).decode() if extra else None)
    return out
