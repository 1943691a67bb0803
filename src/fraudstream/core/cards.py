"""Card numbers at the edge: Luhn check, keyed fingerprint, BIN and last four; the number goes no further."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

__all__ = ["CardToken", "card_fingerprint", "luhn_valid", "mask_card", "normalise_card_number"]

_SEPARATORS = re.compile(r"[\s-]")


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
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
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


def mask_card(number: str) -> str:
    """A card number safe to show: BIN and last four, the middle starred.

    >>> mask_card("4242 4242 4242 4242")
    '424242******4242'
    """
    digits = re.sub(r"\D", "", number)
    if len(digits) < 10:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def card_fingerprint(digits: str, key: bytes) -> CardToken:
    """HMAC-SHA256 of the digits under ``key`` (first 32 hex characters), the BIN and the last four.

    The key comes from configuration, so a fingerprint cannot be reversed by hashing every possible
    card number without it, and two deployments with different keys cannot link their cards.

    >>> token = card_fingerprint("4242424242424242", b"k")
    >>> token.bin, token.last4, len(token.fingerprint)
    ('424242', '4242', 32)
    """
    fingerprint = hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()[:32]
    return CardToken(fingerprint=fingerprint, bin=digits[:6], last4=digits[-4:])
