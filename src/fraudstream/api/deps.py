"""Dependencies shared by the routes: the running service, the caller and the caller's role.

Who a caller is and what a role may do are decided in `fraudstream.access`, which the dashboard's
pages ask too; its names are re-exported here for the routes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.requests import HTTPConnection

from fraudstream.access import (
    ALLOWED,
    KEY_BLOCK_SECONDS,
    KEY_FAILURES_PER_MINUTE,
    Caller,
    KeyFailures,
    blocked_for,
    forget_keys,
    identify,
    key_failures,
    key_of,
    known_key,
    may,
)
from fraudstream.runtime.embedded import ScoringService

__all__ = [
    "API_KEY",
    "BEARER_KEY",
    "KEY_BLOCK_SECONDS",
    "KEY_FAILURES_PER_MINUTE",
    "SECURITY",
    "Caller",
    "KeyFailures",
    "blocked_for",
    "forget_keys",
    "identify",
    "key_failures",
    "key_of",
    "known_key",
    "may",
    "permitted",
    "read_json",
    "require",
    "service",
]


async def service(request: Request) -> ScoringService:
    # Dependencies are `async def` on purpose: FastAPI runs plain `def` ones in a thread pool, a thread
    # hop per request that costs more than the work.
    found: ScoringService = request.app.state.service
    return found


_KEYS_OFF = " In demo mode (or with FRAUDSTREAM_API_KEYS_ENABLED=false) no key is needed."
#: The key as the OpenAPI document names it (/docs' Authorize button): the X-API-Key header, or the
#: same key as a bearer token. Neither refuses anything itself (auto_error=False): `permitted` checks
#: the key, so the answers stay those of `api.errors`, and the dashboard's cookie works as well.
API_KEY = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="An API key (`fraudstream keys create NAME --role ROLE`)." + _KEYS_OFF,
    auto_error=False,
)
BEARER_KEY = HTTPBearer(
    scheme_name="BearerKey",
    description="The same API key as `Authorization: Bearer <key>`." + _KEYS_OFF,
    auto_error=False,
)
_API_KEY_PARAMETER = Security(API_KEY)
_BEARER_KEY_PARAMETER = Security(BEARER_KEY)
#: The document's security requirement for a route that reads its body itself (no `require`).
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"BearerKey": []}]


def require(permission: str) -> Callable[..., Any]:
    """A dependency that lets the request through only for roles with ``permission``."""

    async def check(
        request: Request,
        svc: ScoringService = Depends(service),
        _key: str | None = _API_KEY_PARAMETER,
        _bearer: Any = _BEARER_KEY_PARAMETER,
    ) -> Caller:
        return await permitted(svc, request, permission)

    return check


async def permitted(svc: ScoringService, connection: HTTPConnection, permission: str) -> Caller:
    """The caller, when its role may do ``permission``; else HTTPException 401 (no valid key), 403
    (the role may not) or 429 (too many invalid keys from its address)."""
    caller = await identify(svc, connection)
    if caller is None:
        wait = blocked_for(svc, connection)
        if wait is not None:
            raise HTTPException(
                429,
                f"too many invalid API keys from this address; key checks resume in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        if key_of(connection) is None:
            raise HTTPException(401, "an API key is required: send it as X-API-Key or Authorization: Bearer")
        raise HTTPException(401, "this API key is not valid or was revoked")
    if not may(caller.role, permission):
        allowed = sorted(ALLOWED[permission])
        raise HTTPException(403, f"the role {caller.role!r} may not {permission}; allowed: {allowed}")
    return caller


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
