"""/v1/backtests: replay stored history with a candidate rule set, in the background, with progress."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from fraudstream.api import examples
from fraudstream.api.deps import Caller, require, service
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, WITH_BODY, answer, body_example, errors
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(prefix="/v1/backtests", tags=["rules"], responses=INVALID_REQUEST)

#: Backtests of this process, newest last; each is small (a report), so a few hundred are kept.
_RUNS: dict[str, dict[str, Any]] = {}


class BacktestRequest(BaseModel):
    yaml: str = Field(description="The candidate rule set")
    days: float = Field(30.0, gt=0, le=3650, description="How much stored history to replay")
    label_delay_days: float = Field(0.0, ge=0, le=365)


def _run(svc: ScoringService, run_id: str, request: BacktestRequest) -> None:
    state = _RUNS[run_id]

    def progress(done: float) -> None:
        state["progress"] = done

    try:
        state.update(status="running", progress=0.1)
        candidate = svc.parse_rules(request.yaml)
        result = svc.reads.compare_rules(candidate, request.days, request.label_delay_days, progress)
        state.update(status="done", progress=1.0, result=result)
    except Exception as exc:  # the run reports its failure instead of vanishing
        state.update(status="failed", error=str(exc))


@router.post(
    "",
    status_code=202,
    operation_id="startBacktest",
    summary="Start a backtest of a candidate rule set against the current one",
    openapi_extra=body_example({"yaml": examples.RULE_VALID["yaml"], "days": 30, "label_delay_days": 0}),
    responses={
        202: answer(examples.BACKTEST_QUEUED, "Started: poll GET /v1/backtests/{run_id}"),
        **errors(*WITH_BODY, e422=examples.INVALID_RULES),
    },
)
async def start(
    body: BacktestRequest, svc: ScoringService = Depends(service), _: Caller = Depends(require("review"))
) -> dict[str, Any]:
    svc.parse_rules(body.yaml)  # an invalid set is refused now (422), not in the background
    run_id = uuid.uuid4().hex[:12]
    _RUNS[run_id] = {"id": run_id, "status": "queued", "progress": 0.0}
    while len(_RUNS) > 200:
        _RUNS.pop(next(iter(_RUNS)))
    asyncio.get_running_loop().run_in_executor(None, _run, svc, run_id, body)
    return _RUNS[run_id]


@router.get(
    "/{run_id}",
    operation_id="getBacktest",
    summary="A backtest's status, progress and, when done, the comparison",
    responses={
        200: answer(examples.BACKTEST_DONE),
        **errors(*KEYED, 404, e404={"error": "http_error", "detail": "no backtest '0123456789ab'"}),
    },
)
async def get(run_id: str, _: Caller = Depends(require("read"))) -> dict[str, Any]:
    found = _RUNS.get(run_id)
    if found is None:
        raise HTTPException(404, f"no backtest {run_id!r}")
    return found
