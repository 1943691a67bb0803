"""/v1/alerts: the review queue and analysts' verdicts (which become labels)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from fraudstream.api import examples
from fraudstream.api.deps import Caller, require, service
from fraudstream.api.filters import MAX_CURSOR, AlertFilters
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, WITH_BODY, answer, body_example, errors
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=INVALID_REQUEST)


class Review(BaseModel):
    verdict: Literal["fraud", "legit"] | None = Field(None, description="Confirmed fraud or false positive")
    # No NUL: PostgreSQL text cannot hold it.
    note: str | None = Field(None, max_length=2000, pattern=r"^[^\x00]*$")
    status: Literal["open", "in_review", "closed"] = "closed"


@router.get(
    "",
    operation_id="listAlerts",
    summary="Alerts, riskiest first",
    responses={200: answer(examples.ALERT_PAGE), **errors(*KEYED)},
)
async def list_alerts(
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("read")),
    filters: AlertFilters = Depends(),
    cursor: int = Query(0, ge=0, le=MAX_CURSOR),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """``status`` is one status or several, comma-separated (the review queue asks for open,in_review);
    ``order`` is riskiest first (score, then amount) or newest first (the live feed)."""
    items = await svc.reads.alerts(filters.statuses, cursor, limit, newest=filters.order == "newest")
    return {"items": items, "next_cursor": cursor + limit if len(items) == limit else None}


@router.get(
    "/summary",
    operation_id="countAlerts",
    summary="How many alerts are open, in review and closed",
    responses={200: answer(examples.ALERT_COUNTS), **errors(*KEYED)},
)
async def summary(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, int]:
    return await svc.reads.alert_counts()


@router.post(
    "/{transaction_id}/review",
    operation_id="reviewAlert",
    summary="Record an analyst's verdict",
    openapi_extra=body_example({"verdict": "fraud", "note": "customer confirmed"}),
    responses={
        200: answer(examples.REVIEWED),
        **errors(
            *WITH_BODY, 404, e404={"error": "http_error", "detail": "no alert for transaction 'txn_404'"}
        ),
    },
)
async def review(
    transaction_id: str,
    body: Review,
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("review")),
) -> dict[str, Any]:
    try:
        label = await svc.review(transaction_id, body.verdict, body.note, caller.name, body.status)
    except KeyError:
        raise HTTPException(404, f"no alert for transaction {transaction_id!r}") from None
    return {"transaction_id": transaction_id, "status": body.status, "verdict": body.verdict, "label": label}


class Assign(BaseModel):
    assignee: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]+$",  # a name: no control characters
        description="The analyst to assign the alert to (default: you)",
    )


@router.post(
    "/{transaction_id}/assign",
    operation_id="assignAlert",
    summary="Assign an alert (status in_review): to the analyst named in the body, else to you",
    openapi_extra=body_example({"assignee": "alice"}),
    responses={
        200: answer(examples.ASSIGNED),
        **errors(
            *WITH_BODY, 404, e404={"error": "http_error", "detail": "no alert for transaction 'txn_404'"}
        ),
    },
)
async def assign(
    transaction_id: str,
    body: Assign | None = None,
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("review")),
) -> dict[str, Any]:
    assignee = body.assignee if body is not None and body.assignee is not None else caller.name
    try:
        await svc.assign(transaction_id, assignee, caller.name)
    except KeyError:
        raise HTTPException(404, f"no alert for transaction {transaction_id!r}") from None
    return {"transaction_id": transaction_id, "status": "in_review", "assignee": assignee}
