"""Coded fields checked against a list: currency (ISO 4217), country (ISO 3166-1) and channel."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.schema.raw import _mask, _Raw, _trimmed, _valid
from fraudstream.core.schema.results import _Errors, _type_name


@lru_cache(maxsize=16)
def _value_set(known: frozenset[str]) -> pa.Array:
    return pa.array(sorted(known), pa.string())


def _codes(
    name: str,
    raw: _Raw,
    errors: _Errors,
    known: Iterable[str],
    allowed: str,
    default: str | None,
    *,
    upper: bool = True,
    problem: str = "is not a known code",
) -> pa.Array:
    if not raw.present.any():
        return pa.array([default] * len(raw.present), pa.string())
    trimmed = _trimmed(raw)
    code = pc.utf8_upper(trimmed) if upper else pc.utf8_lower(trimmed)
    ok = _mask(pc.is_in(code, value_set=_value_set(frozenset(known))))
    errors.flag(raw.other | _valid(raw.number), name, _type_name, allowed, raw)
    errors.flag(_valid(raw.text) & ~ok, name, problem, allowed, raw)
    return code.fill_null(default) if default is not None else code
