"""/metrics: the service's Prometheus metrics (decisions, latency and score histograms, the process)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from fraudstream.api.deps import service
from fraudstream.runtime.embedded import ScoringService
from fraudstream.runtime.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics(svc: ScoringService = Depends(service)) -> Response:
    return Response(svc.metrics.exposition.exposition(), media_type=CONTENT_TYPE)
