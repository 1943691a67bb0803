"""/v1/audit: who changed what and when (cases, alerts, labels, rules, lists, keys, models, webhooks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query

from fraudstream.api import examples
from fraudstream.api.deps import Caller, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, answer, errors
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=INVALID_REQUEST)


def _ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


@router.get(
    "",
    operation_id="listAudit",
    summary="The audit log, newest first, filtered",
    responses={200: answer(examples.AUDIT_PAGE), **errors(*KEYED)},
)
async def list_audit(
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("review")),
    actor: str | None = Query(None, max_length=128, examples=["alice"]),
    action: str | None = Query(None, max_length=64, examples=["close_case"]),
    subject: str | None = Query(
        None, max_length=256, description="A case id, transaction id, rule set version, list, key holder..."
    ),
    since: datetime | None = Query(None, description="RFC 3339: entries at or after this time"),
    until: datetime | None = Query(None, description="RFC 3339: entries before this time"),
    cursor: int | None = Query(None, ge=0, le=2**63 - 1, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """Analysts and admins read it (it shows notes and who did what); viewers do not. ``actions``
    lists every action the log holds, for a filter's choices."""
    items, next_cursor = await svc.reads.audit(
        actor=actor, action=action, subject=subject, since_ms=_ms(since), until_ms=_ms(until),
        cursor=cursor, limit=limit,
    )  # fmt: skip
    return {"items": items, "next_cursor": next_cursor, "actions": await svc.reads.audit_actions()}
