"""Card numbers at the edge: Luhn check, keyed fingerprint, BIN and last four; the number goes no further.

A fingerprint is ``HMAC-SHA256(key, digits)`` in hex, cut to its first 32 characters (128 bits: no
collision in any realistic card population). The key comes from configuration, so nobody without it
can link a fingerprint to a card by hashing every possible number, and two deployments with
different keys cannot link their cards. The validator computes it once per distinct card of a batch,
and not again for a card it has seen recently (`CardTokenizer`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from fraudstream.errors import FieldError, ValidationError

__all__ = [
    "CARD_ALLOWED",
    "CardToken",
    "CardTokenizer",
    "card_fingerprint",
    "card_tokens",
    "luhn_valid",
    "luhn_valid_many",
    "mask_card",
    "normalise_card_number",
]

CARD_ALLOWED: Final = "12-19 digits (spaces or dashes allowed) passing the Luhn check"
_SEPARATORS = re.compile(r"[\s-]")
_MAX_DIGITS = 19


@dataclass(frozen=True)
class CardToken:
    """What fraudstream keeps of a card: a keyed fingerprint, the BIN (first 6) and the last 4."""

    fingerprint: str
    bin: str
    last4: str


def normalise_card_number(number: str) -> str | None:
    """Digits of a card number written with optional spaces or dashes; ``None`` if it is not one.

    >>> normalise_card_number("4242-4242 4242-4242"), normalise_card_number("12ab")
    ('4242424242424242', None)
    """
    digits = _SEPARATORS.sub("", number)
    if not (digits.isascii() and digits.isdigit()) or not 12 <= len(digits) <= _MAX_DIGITS:
        return None
    return digits


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies.

    >>> luhn_valid("4242424242424242"), luhn_valid("4242424242424241")
    (True, False)
    """
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def luhn_valid_many(numbers: Sequence[str]) -> npt.NDArray[np.bool_]:
    """Luhn check of many digit strings (up to 19 digits each) at once, on a digits matrix.

    >>> luhn_valid_many(["4242424242424242", "4242424242424241", "79927398713"]).tolist()
    [True, False, True]
    """
    n = len(numbers)
    if n == 0:
        return np.zeros(0, dtype=bool)
    packed = np.array(numbers, dtype=f"S{_MAX_DIGITS}")
    lengths = np.char.str_len(packed)
    matrix = np.frombuffer(packed.tobytes(), dtype=np.uint8).reshape(n, _MAX_DIGITS).astype(np.int16) - 48
    column = np.arange(_MAX_DIGITS)
    inside = column[None, :] < lengths[:, None]
    matrix = np.where(inside, matrix, 0)
    # Every second digit counted from the right is doubled (and 9 taken off when it exceeds 9).
    doubled = ((lengths[:, None] - 1 - column[None, :]) % 2 == 1) & inside
    matrix = np.where(doubled, matrix * 2 - 9 * (matrix > 4), matrix)
    valid: npt.NDArray[np.bool_] = matrix.sum(axis=1) % 10 == 0
    return valid


def mask_card(number: str) -> str:
    """A card number safe to show: BIN and last four, the middle starred.

    >>> mask_card("4242 4242 4242 4242")
    '424242******4242'
    """
    digits = re.sub(r"\D", "", number)
    if len(digits) < 10:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def _hmac_hex(digits: str, key: bytes) -> str:
    return hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()[:32]


def card_fingerprint(number: str, key: bytes) -> CardToken:
    """Fingerprint (HMAC-SHA256 under ``key``, first 32 hex characters), BIN and last four of a card.

    Raises `ValidationError` (showing the number masked) when it is not a Luhn-valid card number.

    >>> token = card_fingerprint("4242 4242 4242 4242", b"k")
    >>> token.bin, token.last4, len(token.fingerprint)
    ('424242', '4242', 32)
    """
    digits = normalise_card_number(number)
    if digits is None or not luhn_valid(digits):
        problem = "is not a card number" if digits is None else "fails the Luhn check"
        raise ValidationError([FieldError("card_number", problem, CARD_ALLOWED, mask_card(number))])
    return CardToken(fingerprint=_hmac_hex(digits, key), bin=digits[:6], last4=digits[-4:])


def card_tokens(digits: Sequence[str], key: bytes) -> list[str]:
    """Fingerprints of already-normalised, valid digit strings (call it on the distinct cards only).

    The same HMAC-SHA256 as `card_fingerprint`, written out (RFC 2104) so that the key's inner and
    outer states are hashed once per call rather than once per card: about half the cost per card.

    >>> card_tokens(["4242424242424242"], b"k") == [card_fingerprint("4242424242424242", b"k").fingerprint]
    True
    >>> long_key = b"k" * 100  # longer than SHA-256's block: hashed first, as RFC 2104 says
    >>> card_tokens(["4242424242424242"], long_key)[0] == _hmac_hex("4242424242424242", long_key)
    True
    """
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
    tokens = []
    for number in digits:
        step = inner.copy()
        step.update(number.encode())
        final = outer.copy()
        final.update(step.digest())
        tokens.append(final.hexdigest()[:32])
    return tokens


class CardTokenizer:
    """`card_tokens` that remembers the fingerprints of recent cards, so that a returning card (most
    are) is not hashed again.

    What it remembers holds no card number: an entry is keyed by Python's keyed hash of the digits
    (SipHash with a secret drawn per process) and holds the fingerprint with the BIN and last four,
    which a hit must match too, so that two cards sharing a hash are still told apart. At most
    ``remember`` entries (about 200 bytes each): when full, it starts again from empty.

    >>> tokenizer = CardTokenizer(b"k", remember=2)
    >>> cards = ["4242424242424242", "4000056655665556", "4242424242424242"]
    >>> tokenizer.tokens(cards) == card_tokens(cards, b"k")
    True
    """

    def __init__(self, key: bytes, remember: int = 100_000) -> None:
        self.key = key
        self.remember = remember
        self._known: dict[int, tuple[str, str]] = {}

    def tokens(self, digits: Sequence[str]) -> list[str]:
        """Fingerprints of already-normalised, valid digit strings, in order."""
        known = self._known
        hashes = list(map(hash, digits))
        tokens: list[str] = []
        missing: list[int] = []
        for i, (number, entry) in enumerate(zip(digits, map(known.get, hashes))):
            if entry is not None and entry[0] == number[:6] + number[-4:]:
                tokens.append(entry[1])
            else:
                tokens.append("")
                missing.append(i)
        if missing:
            fresh = card_tokens([digits[i] for i in missing], self.key)
            if len(known) + len(fresh) > self.remember:
                known.clear()
            for i, token in zip(missing, fresh):
                tokens[i] = token
                if len(known) < self.remember:
                    number = digits[i]
                    known[hashes[i]] = (number[:6] + number[-4:], token)
        return tokens
