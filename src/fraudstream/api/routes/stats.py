"""/v1/stats: totals, decision mix, fraud rate, throughput and latency for the dashboard."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

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
