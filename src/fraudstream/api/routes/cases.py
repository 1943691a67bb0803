"""/v1/cases: alerts on one card, user or device worked as one case (assigned, commented, closed with
one verdict that labels every transaction of it)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from fraudstream.api import examples
from fraudstream.api.deps import Caller, require, service
from fraudstream.api.models import INVALID_REQUEST, ErrorBody
from fraudstream.api.openapi import KEYED, WITH_BODY, answer, body_example, errors
from fraudstream.runtime.embedded import ScoringService
from fraudstream.storage.cases import CaseClosedError, CaseVerdictError

router = APIRouter(prefix="/v1/cases", tags=["cases"], responses=INVALID_REQUEST)

_STATUSES = r"^(open|in_review|closed)(,(open|in_review|closed))*$"
_PRIORITIES = r"^(critical|high|medium|low)(,(critical|high|medium|low))*$"
#: A name: no control characters.
_NAME = r"^[^\x00-\x1f\x7f]+$"
_E404 = {"error": "http_error", "detail": "no case 'case_404'"}
#: 409 here is a closed case, not the scoring routes' conflicting transaction.
_CLOSED: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "The case is closed: it cannot change any more",
        "content": {
            "application/json": {
                "example": {
                    "error": "http_error",
                    "detail": "case case_5f0c1e9a2b7d4e61 is closed (verdict fraud); a closed case "
                    "cannot change",
                }
            }
        },
    }
}


class Assign(BaseModel):
    assignee: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=_NAME,
        description="The analyst to give the case to, by name (default: you)",
    )


class Comment(BaseModel):
    # Not blank, and no NUL (PostgreSQL text cannot hold it).
    body: str = Field(
        min_length=1, max_length=5000, pattern=r"^[^\x00]*\S[^\x00]*$", description="The comment"
    )


class Close(BaseModel):
    verdict: Literal["fraud", "legit"] | None = Field(
        None, description="One verdict for every transaction of the case (those not in verdicts)"
    )
    verdicts: dict[str, Literal["fraud", "legit"]] = Field(
        default_factory=dict, max_length=1000, description="A verdict per transaction id, where they differ"
    )
    note: str | None = Field(None, max_length=2000, pattern=r"^[^\x00]*$")


def _not_found(case_id: str) -> HTTPException:
    return HTTPException(404, f"no case {case_id!r}")


@router.get(
    "",
    operation_id="listCases",
    summary="Cases, the soonest due first, then the riskiest",
    responses={200: answer(examples.CASE_PAGE), **errors(*KEYED)},
)
async def list_cases(
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("read")),
    status: str | None = Query(None, pattern=_STATUSES, examples=["open,in_review"]),
    assignee: str | None = Query(None, max_length=100),
    priority: str | None = Query(None, pattern=_PRIORITIES, examples=["critical,high"]),
    entity: str | None = Query(None, max_length=128, description="A card fingerprint, user or device id"),
    cursor: int = Query(0, ge=0, le=2**62),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """``status`` and ``priority`` take one value or several, comma-separated; ``cursor`` is the
    ``next_cursor`` of the previous page."""
    items = await svc.cases.page(
        status=status.split(",") if status else None,
        assignee=assignee,
        priority=priority.split(",") if priority else None,
        entity=entity,
        cursor=cursor,
        limit=limit,
    )
    return {"items": items, "next_cursor": cursor + limit if len(items) == limit else None}


@router.get(
    "/summary",
    operation_id="countCases",
    summary="How many cases are open, in review and closed",
    responses={200: answer({"open": 3, "in_review": 1, "closed": 12}), **errors(*KEYED)},
)
async def summary(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, int]:
    return await svc.cases.counts()


@router.get(
    "/{case_id}",
    operation_id="getCase",
    summary="One case: its alerts with their transactions and reasons, comments and audit trail",
    responses={200: answer(examples.CASE), **errors(*KEYED, 404, e404=_E404)},
)
async def get_case(
    case_id: str = Path(max_length=64),
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("read")),
) -> dict[str, Any]:
    found = await svc.cases.get(case_id)
    if found is None:
        raise _not_found(case_id)
    return found


@router.post(
    "/{case_id}/assign",
    operation_id="assignCase",
    summary="Give a case to the analyst named in the body, else to you (status in_review)",
    openapi_extra=body_example({"assignee": "alice"}),
    responses={200: answer(examples.CASE_ASSIGNED), **errors(*WITH_BODY, 404, e404=_E404), **_CLOSED},
)
async def assign_case(
    body: Assign | None = None,
    case_id: str = Path(max_length=64),
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("review")),
) -> dict[str, Any]:
    assignee = body.assignee if body is not None and body.assignee is not None else caller.name
    try:
        return await svc.cases.assign(case_id, assignee, caller.name)
    except KeyError:
        raise _not_found(case_id) from None
    except CaseClosedError as exc:
        raise HTTPException(409, str(exc)) from None


@router.post(
    "/{case_id}/comments",
    operation_id="commentCase",
    summary="Add a comment to a case's thread",
    status_code=201,
    openapi_extra=body_example({"body": "Customer called: the card was stolen on Friday."}),
    responses={201: answer(examples.CASE_COMMENT), **errors(*WITH_BODY, 404, e404=_E404)},
)
async def comment_case(
    body: Comment,
    case_id: str = Path(max_length=64),
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("review")),
) -> dict[str, Any]:
    try:
        return await svc.cases.comment(case_id, body.body.strip(), caller.name)
    except KeyError:
        raise _not_found(case_id) from None


@router.post(
    "/{case_id}/close",
    operation_id="closeCase",
    summary="Close a case with one verdict (or one per transaction); every transaction gets a label",
    openapi_extra=body_example({"verdict": "fraud", "note": "card reported stolen"}),
    responses={200: answer(examples.CASE_CLOSED), **errors(*WITH_BODY, 404, e404=_E404), **_CLOSED},
)
async def close_case(
    body: Close,
    case_id: str = Path(max_length=64),
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("review")),
) -> dict[str, Any]:
    """The labels reach the engine at once, exactly as an alert's review does; ``verdicts`` may name
    only transactions of the case, and with no ``verdict`` it must name them all."""
    try:
        closed, labels = await svc.cases.close(
            case_id, verdict=body.verdict, verdicts=body.verdicts, note=body.note, actor=caller.name
        )
    except KeyError:
        raise _not_found(case_id) from None
    except CaseClosedError as exc:
        raise HTTPException(409, str(exc)) from None
    except CaseVerdictError as exc:
        raise HTTPException(422, str(exc)) from None
    return {**closed, "labels": labels}
