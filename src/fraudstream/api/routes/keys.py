"""/v1/keys: who holds an API key, with which role, and revoking a holder's keys (admins only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path

from fraudstream.api import examples
from fraudstream.api.deps import Caller, forget_keys, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, answer, errors
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=INVALID_REQUEST)


def _described(row: dict[str, Any]) -> dict[str, Any]:
    """A key as listed: name, role, creation time and revocation; the key and its hash never leave."""
    created = datetime.fromtimestamp(row["created_at_ms"] / 1000, UTC)
    return {
        "name": row["name"],
        "role": row["role"],
        "created": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "created_at_ms": row["created_at_ms"],
        "revoked": row["revoked"],
    }


@router.get(
    "",
    operation_id="listKeys",
    summary="Every API key's holder, role, creation time and revocation (never the key)",
    responses={200: answer(examples.KEYS), **errors(*KEYED)},
)
async def list_keys(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("admin"))
) -> dict[str, Any]:
    rows = await svc.reads.api_keys()
    return {"keys": [_described(row) for row in rows]}


@router.delete(
    "/{name}",
    operation_id="revokeKeys",
    summary="Revoke every valid key of a holder; it stops working at once",
    responses={
        200: answer({"name": "alice", "revoked": 1}),
        **errors(
            *KEYED,
            404,
            e404={"error": "http_error", "detail": "no valid API key named 'bob'; GET /v1/keys lists them"},
        ),
    },
)
async def revoke_keys(
    name: str = Path(max_length=128),
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("admin")),
) -> dict[str, Any]:
    """Revoked keys stay listed (revoked: true); a new key for the holder comes from
    `fraudstream keys create`."""
    revoked = await svc.revoke_keys(name, caller.name)
    if revoked == 0:
        raise HTTPException(404, f"no valid API key named {name!r}; GET /v1/keys lists them")
    forget_keys(svc, name)
    return {"name": name, "revoked": revoked}
