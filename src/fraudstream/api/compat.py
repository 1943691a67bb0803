"""Routes and payloads of the systems users migrate from, so their clients keep working unchanged."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from fraudstream.api import examples
from fraudstream.api.deps import Caller, read_json, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, SCORING, WITH_BODY, answer, errors
from fraudstream.api.routes.transactions import outcome_response
from fraudstream.runtime.embedded import ScoringService
from fraudstream.web import pages

router = APIRouter(tags=["compatibility"], responses=INVALID_REQUEST)


def _payload_doc(example: dict[str, Any]) -> dict[str, Any]:
    """These routes read their body themselves; the document says what it is, so /docs and fuzzers
    send one."""
    schema = {
        "type": "object",
        "description": "A transaction in the field names of the system it comes from "
        "(userId, transactionId, amount, ...)",
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


def _scoring(decided: dict[str, Any], accepted: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The answers of a compatibility route that scores: like POST /v1/transactions, in its payload."""
    return {
        200: answer(decided, "A repeat of an id with the same body: the stored decision"),
        201: answer(decided, "A new transaction, scored and stored"),
        202: answer(accepted, "Kafka mode: handed to the transactions topic; a worker decides"),
        **errors(*SCORING),
    }


_HEALTH: dict[int | str, dict[str, Any]] = {
    200: answer(examples.COMPAT_HEALTH),
    503: answer(
        {**examples.COMPAT_HEALTH, "status": "unavailable", "consumer": False},
        "unavailable: the database, the engine or the Kafka broker cannot serve",
    ),
}


def _object(body: Any) -> dict[str, Any]:
    from fraudstream.errors import FieldError, ValidationError

    if not isinstance(body, dict):
        raise ValidationError([FieldError("body", f"is a {type(body).__name__}", "a JSON object")])
    return body


async def _score_one(svc: ScoringService, record: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    (outcome,) = await svc.score([record])
    return outcome_response(outcome)


@router.post(
    "/transaction",
    operation_id="compatSubmitTransaction",
    openapi_extra=_payload_doc(
        {
            "transaction_id": "txn_compat_003",
            "user_id": "user-test-123",
            "amount": 42.0,
            "timestamp": "2025-07-15T10:05:00Z",
            "location": "New York",
        }
    ),
    summary="Submit a transaction (FastAPI + Flink + Redis style payload)",
    status_code=201,
    responses=_scoring(
        examples.COMPAT_TRANSACTION, {"transaction_id": "txn_compat_003", "status": "accepted"}
    ),
)
async def submit_transaction(
    request: Request, svc: ScoringService = Depends(service), _: Caller = Depends(require("ingest"))
) -> JSONResponse:
    record = _object(await read_json(request))
    status, body = await _score_one(svc, record)
    if status >= 400 or status == 202:  # errors, or accepted onto Kafka: no decision yet
        return JSONResponse(body, status)
    return JSONResponse({"status": "accepted", "is_fraud": body["is_alert"], **body}, status)


@router.post(
    "/api/v1/transactions",
    operation_id="compatSubmitApiV1Transaction",
    openapi_extra=_payload_doc(
        {"userId": "user-456", "amount": 120.0, "currency": "EUR", "location": "Paris"}
    ),
    summary="Submit {userId, amount, currency, location}",
    status_code=201,
    responses=_scoring(
        examples.COMPAT_API_V1,
        {
            "transaction_id": "159402f6-e3ea-476b-8457-d1c362751c8d",
            "status": "success",
            "transactionId": "159402f6-e3ea-476b-8457-d1c362751c8d",
        },
    ),
)
async def submit_api_v1(
    request: Request, svc: ScoringService = Depends(service), _: Caller = Depends(require("ingest"))
) -> JSONResponse:
    record = _object(await read_json(request))
    if not any(k in record for k in ("transactionId", "transaction_id", "id")):
        record = {**record, "transactionId": str(uuid.uuid4())}
    status, body = await _score_one(svc, record)
    if status == 202:  # accepted onto Kafka, as that pipeline answered: the decision comes later
        answer = {**body, "status": "success", "transactionId": body["transaction_id"]}
        return JSONResponse(answer, status)
    if status >= 400:
        return JSONResponse({"status": "error", **body}, status)
    return JSONResponse(
        {"status": "success", "transactionId": body["transaction_id"], "fraud": body["is_alert"], **body},
        status,
    )


async def _health(svc: ScoringService) -> JSONResponse:
    health = await asyncio.to_thread(svc.health)  # asks the database (and the Kafka broker)
    body = {
        **health,
        "consumer": health["engine"] == "ready",
        "producer": health.get("kafka", "connected") == "connected",
        "redis": health["sinks"].get("redis", {}).get("state", "not configured (FRAUDSTREAM_REDIS_URL)"),
    }
    return JSONResponse(body, 503 if health["status"] == "unavailable" else 200)


@router.get(
    "/api/v1/health",
    operation_id="compatApiV1Health",
    summary="Health of the transaction service",
    responses=_HEALTH,
)
async def api_v1_health(svc: ScoringService = Depends(service)) -> JSONResponse:
    return await _health(svc)


@router.get(
    "/health", operation_id="compatHealth", summary="Health of the detection service", responses=_HEALTH
)
async def health(svc: ScoringService = Depends(service)) -> JSONResponse:
    return await _health(svc)


@router.get(
    "/",
    operation_id="compatRoot",
    summary="JSON health message for API clients; the dashboard for browsers",
    response_model=None,
    responses={200: answer(examples.COMPAT_ROOT)},
)
async def root(request: Request, svc: ScoringService = Depends(service)) -> Response:
    accept = request.headers.get("accept", "")
    if "text/html" in accept:
        return await pages.overview(request)
    health = await asyncio.to_thread(svc.health)
    return JSONResponse({"message": "fraudstream is running", "status": health["status"], "docs": "/docs"})


@router.get(
    "/transactions",
    operation_id="compatRecentTransactions",
    summary="Recent transactions {items, meta} with aggregate totals",
    responses={200: answer(examples.COMPAT_RECENT), **errors(*KEYED)},
)
async def recent(
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("read")),
    n: int = Query(20, ge=1, le=1000),
) -> dict[str, Any]:
    items, stats = await svc.reads.recent_with_totals(n)
    flat = [
        {
            **{k: v for k, v in item.items() if k != "decision"},
            "status": item["decision"]["decision"],
            "is_fraud": item["decision"]["is_alert"],
            "score": item["decision"]["score"],
            "fraud_reason": ", ".join(item["decision"]["rules"]) or None,
            "reasons": item["decision"]["reasons"],
        }
        for item in items
    ]
    meta = {
        "returned": len(flat),
        "total": stats["transactions"],
        "fraud": stats["alerts"],
        "legit": stats["transactions"] - stats["alerts"],
        "by_decision": stats["decisions"],
    }
    return {"items": flat, "meta": meta}


@router.post(
    "/predict",
    operation_id="compatPredict",
    openapi_extra=_payload_doc({"user_id": "user-789", "amount": 80.0, "location": "London"}),
    summary="Score one transaction payload (stored like any other)",
    status_code=201,
    responses=_scoring(
        examples.COMPAT_PREDICT,
        {"transaction_id": "abbf2ae6-1caa-4f2f-94a4-39eae3d5acf2", "status": "accepted"},
    ),
)
async def predict(
    request: Request, svc: ScoringService = Depends(service), _: Caller = Depends(require("ingest"))
) -> JSONResponse:
    record = _object(await read_json(request))
    if not any(k in record for k in ("transactionId", "transaction_id", "id")):
        record = {**record, "transaction_id": str(uuid.uuid4())}
    status, body = await _score_one(svc, record)
    if status >= 400 or status == 202:  # errors, or accepted onto Kafka: no decision yet
        return JSONResponse(body, status)
    prediction = {"prediction": "fraud" if body["is_alert"] else "legit", "is_fraud": body["is_alert"]}
    return JSONResponse({**prediction, **body}, status)


@router.post(
    "/validate-transaction",
    operation_id="compatValidateTransaction",
    openapi_extra=_payload_doc({"user_id": "user-test-123", "amount": 9000.0, "location": "Sydney"}),
    summary="What-if check {user_id, amount, location}: nothing stored",
    responses={200: answer(examples.COMPAT_CHECK), **errors(*WITH_BODY)},
)
async def validate_transaction(
    request: Request, svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, Any]:
    record = _object(await read_json(request))
    if not any(k in record for k in ("transactionId", "transaction_id", "id")):
        record = {**record, "transaction_id": f"check-{uuid.uuid4()}"}
    result = await svc.preview(record)
    verdict = "fraud" if result["is_alert"] else "legit"
    return {"verdict": verdict, "is_fraud": result["is_alert"], **result}
