"""The amount: a finite number >= 0 up to a maximum, sent as a number or as numeric text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.schema.raw import _parse_numbers, _Raw, _valid
from fraudstream.core.schema.results import _Errors, _type_name


def _amounts(raw: _Raw, errors: _Errors, maximum: float) -> pa.Array:
    allowed = f"a finite number >= 0 and <= {maximum:,.0f} (a number or numeric text such as '50.00')"
    parsed = _parse_numbers(raw.text)
    amount = raw.number if parsed.null_count == len(parsed) else pc.coalesce(raw.number, parsed)
    values = amount.fill_null(np.nan).to_numpy(zero_copy_only=False)
    given = _valid(amount)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(values)
        errors.flag(~raw.present, "amount", "is required", allowed, None)
        errors.flag(raw.other, "amount", _type_name, allowed, raw)
        errors.flag(_valid(raw.text) & ~given, "amount", "is not a number", allowed, raw)
        errors.flag(given & ~finite, "amount", "is not finite", allowed, raw, str)
        errors.flag(finite & (values < 0), "amount", "must be >= 0", allowed, raw)
        errors.flag(finite & (values > maximum), "amount", "is larger than allowed", allowed, raw)
    if np.signbit(values[values == 0]).any():  # -0.0 is a zero amount; kept as written, it shows "-0.0"
        amount = pc.if_else(pc.equal(amount, 0.0), 0.0, amount)
    return amount
