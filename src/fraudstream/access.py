"""Who is calling: API keys and their roles, what each role may do, and client addresses whose key
checks are refused for a while after too many invalid keys. The API's routes and the dashboard's
pages both ask here."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from dataclasses import dataclass
from weakref import WeakKeyDictionary

import structlog
from starlette.requests import HTTPConnection

from fraudstream.runtime.embedded import ScoringService

__all__ = [
    "ALLOWED",
    "CALLER",
    "KEY_BLOCK_SECONDS",
    "KEY_FAILURES_PER_MINUTE",
    "Caller",
    "KeyFailures",
    "blocked_for",
    "forget_keys",
    "identify",
    "key_failures",
    "key_of",
    "known_key",
    "may",
]

log = structlog.get_logger("fraudstream.api")

#: The scope entry where `identify` leaves the caller's name for the access log.
CALLER = "fraudstream.caller"

#: Which roles may do what: ingest only submits; viewers read; analysts also work alerts; admins all.
ALLOWED = {
    "read": {"viewer", "analyst", "admin"},
    "ingest": {"ingest", "analyst", "admin"},
    "review": {"analyst", "admin"},
    "labels": {"ingest", "analyst", "admin"},
    "admin": {"admin"},
}


@dataclass(frozen=True)
class Caller:
    name: str
    role: str


def key_of(request: HTTPConnection) -> str | None:
    """The API key the caller sent: X-API-Key, Authorization: Bearer, or the dashboard's cookie."""
    header = request.headers.get("x-api-key")
    if header:
        return header
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return request.cookies.get("fraudstream_key")


def may(role: str, permission: str) -> bool:
    """Whether a key with ``role`` may do ``permission`` (read, ingest, review, labels, admin)."""
    return role in ALLOWED[permission]


async def identify(svc: ScoringService, connection: HTTPConnection, key: str | None = None) -> Caller | None:
    """Who is calling: the demo admin when keys are off, else the owner of the key (``key``, or the one
    the request carries); None without a key, with one that is not valid (the failure is logged and
    counted, see `KeyFailures`), or from an address whose key checks are refused for now."""
    if not svc.settings.keys_required:
        connection.scope[CALLER] = "demo"
        return Caller("demo", "admin")
    key = key or key_of(connection)
    if key is None:
        return None
    failures = key_failures(svc)
    address = _address(connection)
    now = time.monotonic()
    if failures.retry_after(address, now) is not None:
        return None
    found = await known_key(svc, key)
    if found is None:
        # Counted once per request however often it is identified; the mark also tells `blocked_for`
        # which request's refused key started a block.
        if not connection.scope.get(_REFUSED):
            connection.scope[_REFUSED] = True
            _refused(failures, address, key, connection.url.path, now)
        return None
    connection.scope[CALLER] = found[0]
    return Caller(*found)


def blocked_for(svc: ScoringService, connection: HTTPConnection) -> int | None:
    """Seconds until the caller's address may have keys checked again (too many failed), else None;
    None too for the request whose refused key started the block: it is answered like the others."""
    if connection.scope.get(_REFUSED):
        return None
    return key_failures(svc).retry_after(_address(connection), time.monotonic())


def _address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client is not None else "unknown"


def _refused(failures: KeyFailures, address: str, key: str, path: str, now: float) -> None:
    # A short fingerprint, never the key: it tells one mistyped key sent again and again from many
    # keys tried.
    fingerprint = hashlib.sha256(b"fraudstream-log:" + key.encode()).hexdigest()[:8]
    log.warning("api_key_refused", client=address, key_fingerprint=fingerprint, path=path)
    if failures.failed(address, now):
        log.warning(
            "api_key_checks_blocked",
            client=address,
            failures=failures.limit,
            seconds=failures.block_seconds,
        )


_REFUSED = "fraudstream.key_refused"

#: A client address may fail this many key checks in a minute; then its key checks (valid keys too, so
#: a guess that hits is not told apart) are refused with 429 for `KEY_BLOCK_SECONDS`.
KEY_FAILURES_PER_MINUTE = 20
KEY_BLOCK_SECONDS = 60


class KeyFailures:
    """Failed key checks per client address; an address over ``limit`` failures in a minute is
    blocked for ``block_seconds``.

    >>> failures = KeyFailures(limit=2, block_seconds=60)
    >>> failures.failed("10.0.0.9", now=0.0), failures.retry_after("10.0.0.9", now=1.0)
    (False, None)
    >>> failures.failed("10.0.0.9", now=2.0)
    True
    >>> failures.retry_after("10.0.0.9", now=3.0), failures.retry_after("10.0.0.8", now=3.0)
    (59, None)
    >>> failures.retry_after("10.0.0.9", now=62.5) is None
    True
    """

    #: Addresses remembered at most; beyond that the least recently failed are forgotten, so memory
    #: stays bounded when many addresses each fail a few times.
    MAX_ADDRESSES = 10_000

    def __init__(self, limit: int = KEY_FAILURES_PER_MINUTE, block_seconds: int = KEY_BLOCK_SECONDS) -> None:
        self.limit = limit
        self.block_seconds = block_seconds
        self._recent: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def retry_after(self, address: str, now: float) -> int | None:
        """Whole seconds until ``address`` may try keys again, or None when it may now."""
        until = self._blocked_until.get(address)
        if until is None:
            return None
        if now >= until:
            del self._blocked_until[address]
            return None
        return max(1, int(until - now))

    def failed(self, address: str, now: float) -> bool:
        """Count a failed key check of ``address``; True when this one gets the address blocked."""
        recent = self._recent.pop(address, None) or deque(maxlen=self.limit)
        self._recent[address] = recent  # re-inserted: the dict's order is least recently failed first
        recent.append(now)
        while len(self._recent) > self.MAX_ADDRESSES:
            del self._recent[next(iter(self._recent))]
        if len(recent) < self.limit or now - recent[0] > 60.0:
            return False
        recent.clear()
        self._blocked_until[address] = now + self.block_seconds
        while len(self._blocked_until) > self.MAX_ADDRESSES:
            del self._blocked_until[next(iter(self._blocked_until))]
        return True


_key_failures: WeakKeyDictionary[ScoringService, KeyFailures] = WeakKeyDictionary()


def key_failures(svc: ScoringService) -> KeyFailures:
    """The failed key checks of ``svc``'s app (two apps in one process, as in tests, keep their own)."""
    found = _key_failures.get(svc)
    if found is None:
        found = _key_failures[svc] = KeyFailures()
    return found


_KEY_CACHE_SECONDS = 30.0
_known_keys: dict[tuple[int, str], tuple[float, tuple[str, str] | None]] = {}


async def known_key(svc: ScoringService, key: str) -> tuple[str, str] | None:
    """The key's (name, role), remembered for 30 s so that a busy client costs no query per request
    (a revoked key stops working within that time)."""
    now = time.monotonic()
    # Keyed by store too: two apps in one process (tests, embedding) must not share their answers.
    slot = (id(svc.store), key)
    cached = _known_keys.get(slot)
    if cached is not None and now - cached[0] < _KEY_CACHE_SECONDS:
        return cached[1]
    found = await asyncio.to_thread(svc.store.authenticate, key)
    if len(_known_keys) > 10_000:
        _known_keys.clear()
    _known_keys[slot] = (now, found)
    return found


def forget_keys(svc: ScoringService, name: str) -> None:
    """Drop the remembered answers for ``name``'s keys, so that revoking them takes effect at once in
    this process (other processes notice within the 30 s of `known_key`)."""
    store = id(svc.store)
    for slot, (_, found) in list(_known_keys.items()):
        if slot[0] == store and found is not None and found[0] == name:
            del _known_keys[slot]
