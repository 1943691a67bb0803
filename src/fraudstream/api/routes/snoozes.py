"""/v1/snoozes: silence one rule, or every review decision, for one entity until a time; list; cancel."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from fraudstream.api import examples
from fraudstream.api.deps import Caller, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, WITH_BODY, answer, body_example, errors
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(tags=["snoozes"], responses=INVALID_REQUEST)


class SnoozeIn(BaseModel):
    """A snooze as an analyst asks for it."""

    entity_kind: Literal["user", "card", "device", "merchant", "terminal", "ip"]
    entity_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="The entity's id; for a card its fingerprint (or send card_number instead)",
    )
    card_number: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="For entity_kind card: the number, fingerprinted here and never stored",
    )
    rule: str | None = Field(
        None, min_length=1, max_length=64, description="A rule code; absent: every review decision"
    )
    until: str = Field(description="RFC 3339 with a zone, in the future, at most 90 days ahead")
    reason: str = Field("", max_length=500)


@router.post(
    "/v1/snoozes",
    operation_id="createSnooze",
    summary="Snooze one rule, or every review decision, for one entity until a time",
    status_code=201,
    openapi_extra=body_example(examples.SNOOZE_REQUEST),
    responses={201: answer(examples.SNOOZE), **errors(*WITH_BODY, e422=examples.SNOOZE_INVALID)},
)
async def create_snooze(
    body: SnoozeIn, svc: ScoringService = Depends(service), caller: Caller = Depends(require("review"))
) -> dict[str, Any]:
    """From the next transaction on, while a transaction's own time is before ``until``: with a
    ``rule``, that rule's hits on the entity act no more (recorded as shadow hits); without one, a
    decision that would be ``review`` becomes ``approve`` (a decline or a challenge stays). Each
    decision it changed lists it in ``snoozes`` with a reason saying so. Audited."""
    return await svc.snoozes.create(
        entity_kind=body.entity_kind,
        entity_id=body.entity_id,
        card_number=body.card_number,
        rule=body.rule,
        until=body.until,
        reason=body.reason,
        actor=caller.name,
    )


@router.get(
    "/v1/snoozes",
    operation_id="listSnoozes",
    summary="Snoozes in force (or all of them)",
    responses={200: answer(examples.SNOOZES), **errors(*KEYED)},
)
async def list_snoozes(
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("read")),
    everything: bool = Query(
        False, alias="all", description="Include expired and cancelled snoozes (newest first)"
    ),
) -> dict[str, Any]:
    """In force: soonest to end first. Each has ``state`` active, expired or cancelled."""
    return {"items": await svc.snoozes.list(everything=everything)}


@router.delete(
    "/v1/snoozes/{snooze_id}",
    operation_id="cancelSnooze",
    summary="Cancel a snooze",
    responses={
        200: answer(examples.SNOOZE_CANCELLED),
        **errors(*KEYED, 404, e404={"error": "http_error", "detail": "no snooze 'snz_0000000000000000'"}),
    },
)
async def cancel_snooze(
    snooze_id: str, svc: ScoringService = Depends(service), caller: Caller = Depends(require("review"))
) -> dict[str, Any]:
    """It stops applying from the next transaction on. Audited; cancelling twice changes nothing."""
    found = await svc.snoozes.cancel(snooze_id, caller.name)
    if found is None:
        raise HTTPException(404, f"no snooze {snooze_id!r}")
    return found
