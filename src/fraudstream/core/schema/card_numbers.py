"""Card numbers in, keyed fingerprint, BIN and last four out: the number itself never leaves here."""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.cards import CARD_ALLOWED, CardTokenizer, mask_card
from fraudstream.core.schema.raw import Bool, _has_byte, _nulls, _Raw, _valid
from fraudstream.core.schema.results import _Errors, _type_name

#: What card numbers may be written with between digit groups (RE2's ``\s`` and the dash).
_CARD_SEPARATORS: Final = np.zeros(256, dtype=bool)
_CARD_SEPARATORS[list(b"\t\n\f\r -")] = True
_NOT_DIGITS: Final = np.ones(256, dtype=bool)
_NOT_DIGITS[list(b"0123456789")] = False


def _show_card(value: object) -> object:
    return mask_card(value) if isinstance(value, str) else mask_card(str(value))


def _card_digits(number: pa.Array) -> tuple[pa.Array, Bool]:
    """Card numbers without their separators, and which of them are 12 to 19 digits.

    >>> digits, shaped = _card_digits(pa.array(["4242 4242-4242 4242", "42", None]))
    >>> digits.to_pylist(), shaped.tolist()
    (['4242424242424242', '42', None], [True, False, False])
    """
    spaced = _has_byte(number, _CARD_SEPARATORS).any()
    digits = pc.replace_substring_regex(number, r"[\s-]", "") if spaced else number
    size = pc.binary_length(digits).fill_null(0).to_numpy(zero_copy_only=False)  # digits: 1 byte each
    shaped = _valid(digits) & ~_has_byte(digits, _NOT_DIGITS) & (size >= 12) & (size <= 19)
    return digits, shaped


def _cards(raw: _Raw, errors: _Errors, tokenizer: CardTokenizer) -> tuple[pa.Array, pa.Array, pa.Array]:
    if not raw.present.any():
        nothing = _nulls(len(raw.present), pa.string())
        return nothing, nothing, nothing
    number = pc.coalesce(raw.text, raw.integer.cast(pa.string()))
    digits, shaped = _card_digits(number)
    fingerprint, valid = tokenizer.fingerprints(digits, shaped)
    kept = pc.if_else(pa.array(valid), digits, pa.scalar(None, pa.string()))
    wrong = raw.other | (_valid(raw.number) & ~_valid(raw.integer))
    errors.flag(wrong, "card_number", _type_name, CARD_ALLOWED, raw, lambda v: type(v).__name__)
    not_card = _valid(number) & ~shaped
    errors.flag(not_card, "card_number", "is not a card number", CARD_ALLOWED, raw, _show_card)
    errors.flag(shaped & ~valid, "card_number", "fails the Luhn check", CARD_ALLOWED, raw, _show_card)
    return fingerprint, pc.utf8_slice_codeunits(kept, 0, 6), pc.utf8_slice_codeunits(kept, -4)
