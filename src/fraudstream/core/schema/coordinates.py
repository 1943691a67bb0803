"""Latitude and longitude: numbers within their range."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.schema.raw import _nulls, _parse_numbers, _Raw
from fraudstream.core.schema.results import _Errors, _type_name


def _coordinate(name: str, raw: _Raw, errors: _Errors, limit: float) -> pa.Array:
    if not raw.present.any():
        return _nulls(len(raw.present), pa.float64())
    allowed = f"a number from -{limit:g} to {limit:g}"
    value = pc.coalesce(raw.number, _parse_numbers(raw.text))
    numbers = value.fill_null(np.nan).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        in_range = np.abs(numbers) <= limit
    errors.flag(raw.other, name, _type_name, allowed, raw)
    errors.flag(raw.present & ~raw.other & ~in_range, name, "is out of range or not a number", allowed, raw)
    return pa.array(np.where(in_range, numbers, np.nan), pa.float64(), mask=~in_range)
