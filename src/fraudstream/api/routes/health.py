"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from fraudstream.api import examples
from fraudstream.api.deps import service
from fraudstream.api.openapi import answer
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    operation_id="checkLiveness",
    summary="The process is alive",
    responses={200: answer({"status": "ok"})},
)
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="checkReadiness",
    responses={
        200: answer(examples.READY, "healthy, or degraded (an extra sink fails; decisions go on)"),
        503: answer(
            {
                **examples.READY,
                "status": "unavailable",
                "database": "unavailable: the database refuses writes",
            },
            "unavailable: the database, the engine or the Kafka broker cannot serve",
        ),
    },
    summary="The database answers and the engine is loaded",
    description="200 `healthy`; 200 `degraded` while an extra sink (lake, Redis, webhooks) fails and falls "
    "behind (decisions go on; see `sinks`); 503 `unavailable` when the database, the engine or, in Kafka "
    "mode, the broker cannot serve.",
)
async def readyz(svc: ScoringService = Depends(service)) -> JSONResponse:
    # Off the event loop: it asks the database and, in Kafka mode, the broker (up to 2 s).
    health = await asyncio.to_thread(svc.health)
    return JSONResponse(health, 503 if health["status"] == "unavailable" else 200)
