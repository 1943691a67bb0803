"""/v1/stats: totals, decision mix, fraud rate, throughput and latency for the dashboard."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Depends

from fraudstream.api import examples
from fraudstream.api.deps import Caller, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, answer, errors
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(tags=["stats"], responses=INVALID_REQUEST)

#: Trend windows: (length, bucket) in milliseconds; each gives a chart of 20 to 96 points.
WINDOWS = {"10m": (600_000, 30_000), "1h": (3_600_000, 60_000), "24h": (86_400_000, 900_000)}


@router.get(
    "/v1/stats",
    operation_id="getStats",
    summary="Totals, decision mix, fraud rate, throughput, latency, last hour per minute",
    responses={200: answer(examples.STATS), **errors(*KEYED)},
)
async def stats(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, Any]:
    return await asyncio.to_thread(svc.stats)


@router.get(
    "/v1/stats/series",
    operation_id="getStatsSeries",
    summary="Transactions and alerts per bucket over the last 10m, 1h or 24h",
    responses={200: answer(examples.SERIES), **errors(*KEYED)},
)
async def series(
    window: Literal["10m", "1h", "24h"] = "1h",
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("read")),
) -> dict[str, Any]:
    length, bucket = WINDOWS[window]
    buckets = await svc.reads.series(length, bucket)
    return {"window": window, "bucket_ms": bucket, "buckets": buckets}
