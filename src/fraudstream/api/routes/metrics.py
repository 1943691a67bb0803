"""/metrics: the service's Prometheus metrics (decisions, latency and score histograms, the process)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from fraudstream.api.deps import service
from fraudstream.runtime.embedded import ScoringService
from fraudstream.runtime.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"])

#: A few lines of a real answer.
_EXAMPLE = """# HELP fraudstream_decisions_total Decisions made, by decision
# TYPE fraudstream_decisions_total counter
fraudstream_decisions_total{decision="approve"} 3.0
fraudstream_decisions_total{decision="review"} 2.0
# HELP fraudstream_alerts_total Alerts raised
# TYPE fraudstream_alerts_total counter
fraudstream_alerts_total 2.0
"""


@router.get(
    "/metrics",
    response_class=Response,
    operation_id="getMetrics",
    summary="Prometheus metrics",
    responses={
        200: {
            "description": "The Prometheus text format",
            "content": {CONTENT_TYPE: {"schema": {"type": "string"}, "example": _EXAMPLE}},
        }
    },
)
async def metrics(svc: ScoringService = Depends(service)) -> Response:
    return Response(svc.metrics.exposition.exposition(), media_type=CONTENT_TYPE)
