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
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from fraudstream.core.batch import string_bytes
from fraudstream.core.features.kernels import hash_strings
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
    """Fingerprints of a batch's card numbers, remembering recent cards so that a returning card
    (most are) is neither Luhn-checked nor hashed again: one compiled pass finds them.

    What it remembers holds no card number: an entry is a 64-bit hash of the digits, seeded with a
    secret drawn per tokenizer, next to the BIN and last four (a hit must match both, so that two
    cards sharing a hash are still told apart) and the fingerprint. At most ``remember`` cards
    (about 100 bytes each): when full, it starts again from empty.

    >>> import pyarrow as pa, numpy as np
    >>> tokenizer = CardTokenizer(b"k", remember=2)
    >>> digits = pa.array(["4242424242424242", "4242424242424241", "42", "4242424242424242"])
    >>> fingerprint, valid = tokenizer.fingerprints(digits, np.array([True, True, False, True]))
    >>> valid.tolist(), fingerprint[0].as_py() == card_tokens(["4242424242424242"], b"k")[0]
    ([True, False, False, True], True)
    """

    def __init__(self, key: bytes, remember: int = 100_000) -> None:
        self.key = key
        self.remember = remember
        size = 1 << max(4, (2 * remember - 1).bit_length())  # at most half full
        self._hashes = np.zeros(size, dtype=np.uint64)
        self._marks = np.zeros(size, dtype=np.int64)
        self._tokens = np.zeros((size, _TOKEN_CHARS), dtype=np.uint8)
        self._count = 0
        self._seed = np.uint64(secrets.randbits(64))
        # The kernels release the GIL: one batch at a time reads and writes the table.
        self._lock = threading.Lock()

    def fingerprints(
        self, digits: pa.Array, shaped: npt.NDArray[np.bool_]
    ) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
        """Each row's fingerprint (null where it is not a card), and which rows are valid cards.

        ``digits`` holds normalised digit strings; only rows where ``shaped`` (12 to 19 digits) are
        looked at.
        """
        with self._lock:
            return self._fingerprints(digits, shaped)

    def _fingerprints(
        self, digits: pa.Array, shaped: npt.NDArray[np.bool_]
    ) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
        hashes, marks = self._keys(digits, shaped)
        slots = np.full(len(digits), -1, dtype=np.int64)
        _find_cards(hashes, marks, self._hashes, self._marks, slots)
        missing = shaped & (slots < 0)
        if missing.any():
            good = _luhn_distinct(digits.filter(pa.array(missing)))
            if len(good) > self.remember:  # more new cards than it keeps: no remembering this batch
                return _fingerprints_of(
                    digits, shaped, _luhn_distinct(digits.filter(pa.array(shaped))), self.key
                )
            if self._count + len(good) > self.remember:
                self._clear()
                return self._fingerprints(digits, shaped)
            tokens = card_tokens(good, self.key)
            good_hashes, good_marks = self._keys(
                pa.array(good, pa.string()), np.ones(len(good), dtype=np.bool_)
            )
            text = np.frombuffer("".join(tokens).encode("ascii"), dtype=np.uint8).reshape(-1, _TOKEN_CHARS)
            self._count += _add_cards(good_hashes, good_marks, text, self._hashes, self._marks, self._tokens)
            _find_cards(hashes, marks, self._hashes, self._marks, slots)
        valid = slots >= 0
        chars = self._tokens[slots[valid]].reshape(-1)
        offsets = np.zeros(len(digits) + 1, dtype=np.int32)
        np.cumsum(np.where(valid, _TOKEN_CHARS, 0), out=offsets[1:])
        bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
        fingerprint = pa.Array.from_buffers(
            pa.string(), len(digits), [bitmap, pa.py_buffer(offsets), pa.py_buffer(chars)]
        )
        return fingerprint, valid

    def _keys(
        self, digits: pa.Array, shaped: npt.NDArray[np.bool_]
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
        n = len(digits)
        hashes = np.zeros(n, dtype=np.uint64)
        marks = np.zeros(n, dtype=np.int64)
        if n:
            offsets, data = string_bytes(digits)
            shaped = shaped & np.asarray(digits.is_valid(), dtype=np.bool_)
            hash_strings(offsets, data, shaped, hashes)  # the key hashing's FNV-1a, then seeded below
            _card_keys(offsets, data, shaped, self._seed, hashes, marks)
        return hashes, marks

    def _clear(self) -> None:
        self._hashes[:] = 0
        self._marks[:] = 0
        self._count = 0


#: Hex characters of a fingerprint.
_TOKEN_CHARS: Final = 32


def _luhn_distinct(candidates: pa.Array) -> list[str]:
    """The distinct digit strings of ``candidates`` that pass the Luhn check."""
    uniques = pc.unique(candidates).drop_null().to_pylist()
    return [d for d, ok in zip(uniques, luhn_valid_many(uniques)) if ok]


def _fingerprints_of(
    digits: pa.Array, shaped: npt.NDArray[np.bool_], good: list[str], key: bytes
) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
    """Without remembering: each shaped row's fingerprint when its digits are among ``good``."""
    candidates = pc.if_else(pa.array(shaped), digits, pa.scalar(None, pa.string()))
    position = pc.index_in(candidates, value_set=pa.array(good, pa.string()))
    fingerprint = pa.array(card_tokens(good, key), pa.string()).take(position)
    return fingerprint, np.asarray(fingerprint.is_valid(), dtype=np.bool_)


@njit(cache=True, nogil=True)
def _card_keys(offsets, data, shaped, seed, hashes, marks):  # type: ignore[no-untyped-def]
    """Per shaped row: its digits' hash (given in ``hashes``) mixed with the seed (never 0), and its
    BIN and last four as one number; 0 and 0 for the other rows."""
    for i in range(hashes.shape[0]):
        if not shaped[i]:
            hashes[i] = 0
            continue
        # splitmix64's finaliser over hash ^ seed: the seed's bits reach every bit, and the bits
        # spread over the table positions.
        h = hashes[i] ^ seed
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
        hashes[i] = h if h != 0 else np.uint64(1)
        start = offsets[i]
        end = offsets[i + 1]
        mark = 0
        for j in range(start, start + 6):
            mark = mark * 10 + (data[j] - 48)
        for j in range(end - 4, end):
            mark = mark * 10 + (data[j] - 48)
        marks[i] = mark


@njit(cache=True, nogil=True)
def _find_cards(hashes, marks, table_hashes, table_marks, slots):  # type: ignore[no-untyped-def]
    """The table slot of each row's card (same hash, same BIN and last four), else -1. Two cards
    sharing a hash are two entries."""
    mask = table_hashes.shape[0] - 1
    for i in range(hashes.shape[0]):
        h = hashes[i]
        slots[i] = -1
        if h == 0:
            continue
        pos = np.int64(h & np.uint64(mask))
        while table_hashes[pos] != 0:
            if table_hashes[pos] == h and table_marks[pos] == marks[i]:
                slots[i] = pos
                break
            pos = (pos + 1) & mask


@njit(cache=True, nogil=True)
def _add_cards(hashes, marks, tokens, table_hashes, table_marks, table_tokens):  # type: ignore[no-untyped-def]
    """Remember each card not remembered yet; return how many that was."""
    mask = table_hashes.shape[0] - 1
    added = 0
    for i in range(hashes.shape[0]):
        h = hashes[i]
        pos = np.int64(h & np.uint64(mask))
        while table_hashes[pos] != 0 and not (table_hashes[pos] == h and table_marks[pos] == marks[i]):
            pos = (pos + 1) & mask
        if table_hashes[pos] == 0:
            added += 1
            table_hashes[pos] = h
            table_marks[pos] = marks[i]
            table_tokens[pos, :] = tokens[i]
    return added
