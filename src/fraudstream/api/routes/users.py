"""/v1/users/{id}/history: a user's recent transactions and decisions, for an analyst's review."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from fraudstream.api import examples
from fraudstream.api.deps import Caller, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, answer, errors
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(tags=["users"], responses=INVALID_REQUEST)


@router.get(
    "/v1/users/{user_id}/history",
    operation_id="getUserHistory",
    summary="A user's recent transactions and decisions",
    responses={200: answer(examples.USER_HISTORY), **errors(*KEYED)},
)
async def history(
    user_id: str,
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("read")),
    limit: int = Query(20, ge=1, le=500),
) -> dict[str, Any]:
    return {"user_id": user_id, "items": await svc.reads.user_history(user_id, limit)}
