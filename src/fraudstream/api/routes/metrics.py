"""/metrics: the Prometheus text exposition of the service's counters and latency histogram."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from fraudstream.api.deps import service
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
async def metrics(svc: ScoringService = Depends(service)) -> str:
    return svc.metrics.prometheus()
