"""/v1/stats, /v1/users/{id}/history and /metrics: what the dashboard and monitoring read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from fraudstream.api.deps import Caller, require, service
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(tags=["stats"])


@router.get(
    "/v1/stats", summary="Totals, decision mix, fraud rate, throughput, latency, last hour per minute"
)
async def stats(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, Any]:
    return svc.stats()


@router.get("/v1/users/{user_id}/history", summary="A user's recent transactions and decisions")
async def history(
    user_id: str,
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("read")),
    limit: int = Query(20, ge=1, le=500),
) -> dict[str, Any]:
    return {"user_id": user_id, "items": svc.store.user_history(user_id, limit)}


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
async def metrics(svc: ScoringService = Depends(service)) -> str:
    return svc.metrics.prometheus()
