"""/v1/jobs: the runs of the scheduled jobs (retrain, re-score, backtest report), their schedule, and a
run asked for by an admin."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from fastapi.responses import JSONResponse

from fraudstream.api import examples
from fraudstream.api.deps import Caller, require, service
from fraudstream.api.models import INVALID_REQUEST, ErrorBody
from fraudstream.api.openapi import KEYED, WITH_BODY, answer, errors, named_examples
from fraudstream.errors import ConfigError
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=INVALID_REQUEST)

Job = Literal["retrain", "rescore", "backtest_report"]
Status = Literal["queued", "running", "done", "failed", "skipped"]

_BUSY: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "A run of this job is already queued or running: this one is recorded as skipped",
        "content": {"application/json": {"example": examples.JOB_BUSY}},
    }
}


@router.get(
    "",
    operation_id="listJobRuns",
    summary="Job runs, newest first, filtered by job and status (without their results)",
    responses={200: answer(examples.JOB_RUNS), **errors(*KEYED)},
)
async def list_runs(
    job: Job | None = Query(None, description="Only runs of this job"),
    status: list[Status] | None = Query(None, description="Only runs in these statuses"),
    limit: int = Query(50, ge=1, le=500),
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("read")),
) -> dict[str, Any]:
    return {"items": await svc.jobs.runs(job, list(status) if status else None, limit)}


@router.get(
    "/schedule",
    operation_id="getJobSchedule",
    summary="Each job's cron schedule and next runs, its last run, and the retrain's label trigger",
    responses={200: answer(examples.JOB_SCHEDULE), **errors(*KEYED)},
)
async def schedule(
    count: int = Query(3, ge=1, le=20, description="How many next fire times per job"),
    svc: ScoringService = Depends(service),
    _: Caller = Depends(require("read")),
) -> dict[str, Any]:
    return await svc.jobs.schedule(count)


@router.get(
    "/{run_id}",
    operation_id="getJobRun",
    summary="One job run: its parameters, progress and, when done, its result (the report)",
    responses={
        200: answer(examples.JOB_RUN_DONE),
        **errors(*KEYED, 404, e404={"error": "http_error", "detail": "no job run '0123456789abcdef'"}),
    },
)
async def get_run(
    run_id: str, svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> dict[str, Any]:
    found = await svc.jobs.get(run_id)
    if found is None:
        raise HTTPException(404, f"no job run {run_id!r}")
    return found


@router.post(
    "/{job}/run",
    status_code=202,
    operation_id="runJob",
    summary="Run a job now (admin): queued behind any run in progress; poll GET /v1/jobs/{run_id}",
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {"type": "object"},
                    "examples": named_examples(
                        rescore=("rescore: a time range and a candidate rule set", examples.RESCORE_PARAMS),
                        rescore_version=(
                            "rescore: a stored rule set version as candidate",
                            {"from": "2026-12-01T00:00:00Z", "rules_version": 1, "model": "none"},
                        ),
                        retrain=("retrain: the history and margin", {"days": 14, "margin": 0.02}),
                        backtest_report=("backtest_report: the last days", {"days": 7}),
                    ),
                }
            },
        }
    },
    responses={
        202: answer(examples.JOB_RUN_QUEUED, "Queued: poll GET /v1/jobs/{run_id}"),
        **_BUSY,
        **errors(*WITH_BODY, e422=examples.JOB_INVALID),
    },
)
async def run_job(
    job: Job,
    params: Annotated[dict[str, Any] | None, Body()] = None,
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("admin")),
) -> Any:
    try:
        run = await svc.jobs.run(job, params or {}, caller.name)
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from None
    if run["status"] == "skipped":
        return JSONResponse({"error": "job_busy", "detail": run["error"], "run": run}, status_code=409)
    return run
