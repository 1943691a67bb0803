"""Identifier fields (transaction, user, merchant, terminal, device ...): trimmed text of 1-128 characters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.schema.raw import _CONTROL_BYTES, Bool, _has_byte, _nulls, _Raw, _valid
from fraudstream.core.schema.results import _Errors, _type_name

_MAX_ID: Final = 128
_ID_ALLOWED: Final = f"a string (or integer) of 1-{_MAX_ID} characters"

#: The identifier fields, checked together by `_identifiers`.
_IDENTIFIERS: Final = (
    "transaction_id", "user_id", "merchant_id", "merchant_category", "terminal_id", "location",
    "device_id", "card_fingerprint", "card_bin", "card_last4",
)  # fmt: skip


@dataclass(frozen=True)
class _Ids:
    """One identifier field's values (trimmed text, integers as text) and what is wrong with them."""

    ids: pa.Array
    wrong_type: Bool
    length: npt.NDArray[np.int64]  # characters after trimming; -1 where absent
    control: Bool

    def flag(self, name: str, raw: _Raw, errors: _Errors, required: bool) -> pa.Array:
        if required:
            errors.flag(~raw.present, name, "is required", _ID_ALLOWED, None)
        errors.flag(self.wrong_type, name, _type_name, _ID_ALLOWED, raw)
        errors.flag(self.length == 0, name, "is empty", _ID_ALLOWED, raw)
        errors.flag(
            self.length > _MAX_ID,
            name,
            lambda v: f"is {len(str(v).strip())} characters long",
            _ID_ALLOWED,
            raw,
        )
        # A NUL cannot be stored in PostgreSQL text; refused here, it never fails a whole write group.
        errors.flag(self.control, name, "contains a control character such as NUL", _ID_ALLOWED, raw)
        return self.ids


def _identifiers(raws: Mapping[str, _Raw], names: Sequence[str]) -> dict[str, _Ids]:
    """Trim, measure and scan every identifier field with one Arrow call per step over all of them
    at once (a batch of one event pays each call once, not once per field). Absent fields are left
    out: `_identifier` answers for them without Arrow work."""
    present = [name for name in names if raws[name].present.any()]
    if not present:
        return {}
    parts = []
    for name in present:
        raw = raws[name]
        n = len(raw.present)
        # Integer ids count as their decimal text; text is trimmed below, which digits never need.
        parts.append(
            raw.text if raw.integer.null_count == n else pc.coalesce(raw.text, raw.integer.cast(pa.string()))
        )
    trimmed = pc.utf8_trim_whitespace(pa.concat_arrays(parts))
    valid = _valid(trimmed)
    length = np.where(valid, pc.utf8_length(trimmed).to_numpy(zero_copy_only=False), -1)
    control = _has_byte(trimmed, _CONTROL_BYTES)
    checked: dict[str, _Ids] = {}
    start = 0
    for name in present:
        raw = raws[name]
        n = len(raw.present)
        wrong = raw.other
        if raw.number.null_count < n:  # a float such as 1.5 is not an identifier; 15 is
            wrong = wrong | (_valid(raw.number) & ~_valid(raw.integer))
        end = start + n
        checked[name] = _Ids(trimmed.slice(start, n), wrong, length[start:end], control[start:end])
        start = end
    return checked


def _identifier(
    name: str, raw: _Raw, errors: _Errors, required: bool, checked: Mapping[str, _Ids] | None = None
) -> pa.Array:
    """The field's trimmed identifiers, with its errors flagged (from ``checked`` when given)."""
    if not raw.present.any():  # an absent optional field costs nothing (single events have many)
        if required:
            errors.flag(~raw.present, name, "is required", _ID_ALLOWED, None)
        return _nulls(len(raw.present), pa.string())
    found = checked.get(name) if checked is not None else None
    if found is None:
        found = _identifiers({name: raw}, [name])[name]
    return found.flag(name, raw, errors, required)
