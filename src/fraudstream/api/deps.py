"""Dependencies shared by the routes: the running service, the caller and the caller's role."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Depends, HTTPException, Request
from starlette.requests import HTTPConnection

from fraudstream.runtime.embedded import ScoringService

__all__ = [
    "Caller",
    "forget_keys",
    "identify",
    "key_of",
    "known_key",
    "may",
    "read_json",
    "require",
    "service",
]

#: Which roles may do what: ingest only submits; viewers read; analysts also work alerts; admins all.
_ALLOWED = {
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


async def service(request: Request) -> ScoringService:
    # Dependencies are `async def` on purpose: FastAPI runs plain `def` ones in a thread pool, a thread
    # hop per request that costs more than the work.
    found: ScoringService = request.app.state.service
    return found


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
    return role in _ALLOWED[permission]


def require(permission: str) -> Callable[..., Any]:
    """A dependency that lets the request through only for roles with ``permission``."""

    async def check(request: Request, svc: ScoringService = Depends(service)) -> Caller:
        caller = await identify(svc, request)
        if caller is None:
            if key_of(request) is None:
                raise HTTPException(
                    401, "an API key is required: send it as X-API-Key or Authorization: Bearer"
                )
            raise HTTPException(401, "this API key is not valid or was revoked")
        if not may(caller.role, permission):
            allowed = sorted(_ALLOWED[permission])
            raise HTTPException(403, f"the role {caller.role!r} may not {permission}; allowed: {allowed}")
        return caller

    return check


async def identify(svc: ScoringService, connection: HTTPConnection, key: str | None = None) -> Caller | None:
    """Who is calling: the demo admin when keys are off, else the owner of the key (``key``, or the one
    the request carries); None without a key or with one that is not valid."""
    if not svc.settings.keys_required:
        return Caller("demo", "admin")
    key = key or key_of(connection)
    found = None if key is None else await known_key(svc, key)
    return None if found is None else Caller(*found)


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


class MalformedJSONError(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail


async def read_json(request: Request) -> Any:
    """The request body as JSON; malformed JSON becomes a 400 that says where it broke."""
    body = await request.body()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSONError(str(exc)) from None
