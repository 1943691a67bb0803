"""Where each field is found: a record's keys or a table's columns, by name, alias or mapping."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from fraudstream.core.schema.fields import ALIASES, FIELDS
from fraudstream.errors import ConfigError


def _coalesce_values(records: Sequence[Mapping[str, Any]], sources: list[str]) -> list[Any]:
    if len(sources) == 1:
        source = sources[0]
        return [r.get(source) for r in records]
    out: list[Any] = []
    for record in records:
        value = None
        for source in sources:
            value = record.get(source)
            if value is not None:
                break
        out.append(value)
    return out


def _record_sources(keys: Iterable[str]) -> dict[str, list[str]]:
    """{field: the record keys that may hold it}: its own name first, then its aliases among ``keys``."""
    sources: dict[str, list[str]] = {name: [name] for name in FIELDS}
    for key in sorted(keys):
        canonical = ALIASES.get(key)
        if canonical is not None:
            sources[canonical].append(key)
    return sources


def _table_sources(table: pa.Table, mapping: Mapping[str, str] | None) -> dict[str, str]:
    """{field: the table's column that holds it}: the mapping's, else the column named like the field,
    else one named like an alias."""
    renames = dict(mapping or {})
    for canonical, source in renames.items():
        if canonical not in FIELDS:
            raise ConfigError(
                f"column mapping names {canonical!r}, which is not a transaction field; "
                f"use one of: {', '.join(FIELDS)}"
            )
        if source not in table.column_names:
            raise ConfigError(
                f"column mapping sends {source!r} to {canonical!r}, but the table has no such "
                f"column; its columns are: {', '.join(table.column_names)}"
            )
    # A column named exactly like a field wins over one named like its alias.
    for name in table.column_names:
        if name in FIELDS and name not in renames:
            renames[name] = name
    for name in table.column_names:
        field = ALIASES.get(name)
        if field is not None and field not in renames:
            renames[field] = name
    return renames
