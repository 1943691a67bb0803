"""/v1/transactions: score one transaction or a list, and read them back.

Scoring is most of a busy server's traffic. `POST /v1/transactions` is answered by one ASGI handler,
`score_transactions`, which `ScoreRouteFirst` (put outermost by `app.py`) calls before the routing
table, dependency solving and exception middleware: per request that machinery costs more than the
request's share of scoring. The FastAPI route below documents the operation and calls the same code,
so everything the route does (refusing overload, body limits, keys and roles, lists, error answers)
lives here once.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect, HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from fraudstream.api import examples
from fraudstream.api.deps import SECURITY, Caller, MalformedJSONError, permitted, require, service
from fraudstream.api.errors import answer_for, body_too_large, overloaded
from fraudstream.api.filters import MAX_CURSOR, TransactionFilters
from fraudstream.api.models import INVALID_REQUEST, Accepted, BatchResult, Decision, TransactionPage
from fraudstream.api.openapi import KEYED, SCORING, answer, errors, named_examples
from fraudstream.errors import FieldError, ValidationError
from fraudstream.runtime.embedded import Outcome, ScoringService

__all__ = ["ScoreRouteFirst", "outcome_response", "router", "score_transactions"]

router = APIRouter(prefix="/v1/transactions", tags=["transactions"], responses=INVALID_REQUEST)

_PATH = "/v1/transactions"


class TransactionIn(BaseModel):
    """A payment to score. Aliases such as userId, transactionId are accepted too; extra fields are kept."""

    transaction_id: str = Field(examples=["txn_001"], max_length=128)
    user_id: str = Field(examples=["user-123"], max_length=128)
    amount: float = Field(
        ge=0, le=1e9, examples=[50.0], description="0.00 is a card-verification request; at most 1e9"
    )
    currency: str = Field("USD", examples=["USD"], pattern="^[A-Za-z]{3}$", description="ISO 4217")
    timestamp: str | None = Field(
        None, examples=["2025-07-15T10:00:00Z"], description="RFC 3339 with a zone; default: receive time"
    )
    merchant_id: str | None = None
    merchant_category: str | None = None
    terminal_id: str | None = None
    channel: str | None = Field(None, examples=["online"])
    location: str | None = Field(None, examples=["New York"])
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    country: str | None = Field(None, examples=["US"])
    device_id: str | None = None
    ip: str | None = None
    card_number: str | None = Field(None, examples=["4242-4242-4242-4242"])


#: The route reads its body itself (a transaction or a list), so FastAPI lists no schema for it: the
#: document carries TransactionIn inline, as nothing else would put it under components/schemas.
_TRANSACTION_SCHEMA = TransactionIn.model_json_schema()
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {**_TRANSACTION_SCHEMA, "title": "One transaction"},
                        {
                            "type": "array",
                            "items": _TRANSACTION_SCHEMA,
                            "minItems": 1,
                            "title": "A list (at most FRAUDSTREAM_MAX_BATCH)",
                        },
                    ]
                },
                "examples": named_examples(
                    normal=("A 50.00 payment in New York", examples.TRANSACTION_IN),
                    fraud=("A minute later, 5,000.00 in Tokyo", examples.TRANSACTION_IN_FRAUD),
                    list=("A list: one result per item (XYZ is no currency)", examples.TRANSACTION_LIST_IN),
                ),
            }
        },
    },
    # Checked by `permitted`, not by `require`, so FastAPI does not see it.
    "security": SECURITY,
}


def outcome_response(outcome: Outcome) -> tuple[int, dict[str, Any]]:
    """HTTP status and body for one outcome (shared with the compatibility routes)."""
    if outcome.status == "scored":
        return 201, outcome.decision or {}
    if outcome.status == "accepted":
        return 202, {"transaction_id": outcome.transaction_id, "status": "accepted"}
    if outcome.status == "duplicate":
        return 200, outcome.decision or {}
    if outcome.status == "conflict":
        return 409, {
            "error": "conflict",
            "detail": f"transaction_id {outcome.transaction_id!r} was already scored with a different body; "
            "send the same body to get the stored decision, or use a new transaction_id",
        }
    return 422, {
        "error": "invalid_transaction",
        "transaction_id": outcome.transaction_id,
        "errors": outcome.errors,
    }


_SCORE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": Decision | BatchResult,
        "description": "A repeat of an id with the same body (the stored decision), or a list: one result "
        "per item",
        "content": {
            "application/json": {
                "examples": named_examples(
                    repeat=("The same body again: the stored decision", examples.DECISION_APPROVE),
                    list=("A list: one result per item, and a summary", examples.BATCH_RESULT),
                )
            }
        },
    },
    201: {
        "model": Decision,
        "description": "A new transaction, scored and stored",
        "content": {
            "application/json": {
                "examples": named_examples(
                    approve=("The 50.00 payment: approved", examples.DECISION_APPROVE),
                    review=("5,000.00 in Tokyo a minute later: two rules act", examples.DECISION_REVIEW),
                )
            }
        },
    },
    202: answer(
        {"transaction_id": "txn_normal_001", "status": "accepted"},
        "Kafka mode: handed to the transactions topic; a worker decides",
        model=Accepted,
    ),
    **errors(*SCORING),
}

#: Status, body and extra headers of an answer.
_Answer = tuple[int, Any, dict[str, str]]


@router.post(
    "",
    operation_id="scoreTransactions",
    openapi_extra=_BODY_DOC,
    responses=_SCORE_RESPONSES,
    status_code=201,
    summary="Score one transaction or a list of them",
)
async def score(request: Request, svc: ScoringService = Depends(service)) -> Response:
    """Returns the decision after the transaction and its decision are stored.

    201 for a new transaction, 200 with the same body for a repeated one, 409 for a different body under
    an id already scored, 422 naming each invalid field. A list gets one result per item.
    """
    # Served by `score_transactions` in a running server; this documents it and answers the same way
    # when the router is mounted without `ScoreRouteFirst` (errors then go to the app's handlers).
    status, answer, headers = await _answer(svc, request.scope, request.receive)
    return Response(orjson.dumps(answer), status, headers, media_type="application/json")


class ScoreRouteFirst:
    """ASGI middleware that hands `POST /v1/transactions` to `score_transactions` before the
    application runs; every other request goes to ``app``."""

    def __init__(self, app: ASGIApp, service: ScoringService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == _PATH and scope["method"] == "POST":
            await score_transactions(self.service, scope, receive, send)
            return
        await self.app(scope, receive, send)


async def score_transactions(svc: ScoringService, scope: Scope, receive: Receive, send: Send) -> None:
    """`POST /v1/transactions` as an ASGI application."""
    try:
        status, answer, headers = await _answer(svc, scope, receive)
    except ClientDisconnect:
        return  # the client went away before its body was read: nobody to answer
    except Exception as exc:  # answered as the application's handlers would: JSON, never a traceback
        status, answer, headers = answer_for(exc)
    payload = orjson.dumps(answer)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def _answer(svc: ScoringService, scope: Scope, receive: Receive) -> _Answer:
    """Score the request's transaction or list; the answer.

    In this order: overload is refused before anything is read (it must cost little); a body declared
    larger than allowed, before the key is checked; then the key and its role, the body (read up to the
    limit), its JSON and, for a list, its length. Other refusals and failures are raised, for
    `api.errors` to answer; ClientDisconnect when the client leaves.
    """
    refusal = svc.overloaded()
    if refusal is not None:
        svc.metrics.record_refused()
        return overloaded(refusal)
    limit = svc.settings.max_body_bytes
    declared = dict(scope["headers"]).get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return (*body_too_large(limit), {})
    await permitted(svc, HTTPConnection(scope), "ingest")
    body = await _read_body(receive, limit)
    if body is None:
        return (*body_too_large(limit), {})
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSONError(str(exc)) from None
    if isinstance(parsed, list):
        return await _score_list(svc, parsed)
    (outcome,) = await svc.score([parsed])
    return (*outcome_response(outcome), {})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _score_list(svc: ScoringService, body: list[Any]) -> _Answer:
    if not body:
        raise ValidationError(
            [FieldError("body", "is an empty list", f"1 to {svc.settings.max_batch} transactions")]
        )
    if len(body) > svc.settings.max_batch:
        raise HTTPException(
            413, f"a list holds at most {svc.settings.max_batch} transactions (FRAUDSTREAM_MAX_BATCH)"
        )
    outcomes = await svc.score(body)
    results = []
    for outcome in outcomes:
        status, item = outcome_response(outcome)
        results.append({"status": outcome.status, "http_status": status, **item})
    summary = {
        s: sum(1 for o in outcomes if o.status == s) for s in ("scored", "duplicate", "conflict", "invalid")
    }
    return 200, {"results": results, "summary": summary}, {}


@router.get(
    "",
    operation_id="listTransactions",
    summary="Transactions with their decisions, filtered, newest first",
    responses={200: answer(examples.TRANSACTION_PAGE, model=TransactionPage), **errors(*KEYED)},
)
async def list_transactions(
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("read")),
    filters: TransactionFilters = Depends(),
    cursor: int | None = Query(None, ge=0, le=MAX_CURSOR, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    items, next_cursor = await svc.reads.transactions(
        **filters.selection, cursor=cursor, limit=limit, order=filters.order
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/{transaction_id}",
    operation_id="getTransaction",
    summary="One transaction with its decision, alert, labels, shadow scores and audit trail",
    responses={200: answer(examples.TRANSACTION), **errors(*KEYED, 404)},
)
async def get_transaction(
    transaction_id: str, svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, Any]:
    found = await svc.reads.transaction(transaction_id)
    if found is None:
        raise HTTPException(404, f"no transaction {transaction_id!r}")
    return found
