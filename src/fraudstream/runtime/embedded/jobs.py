"""The server's scheduled jobs: a scheduler task on the event loop and one worker thread that runs them.

Every ``jobs_interval_s`` the scheduler looks at the cron schedules (``retrain_cron``,
``backtest_cron``) and at the labels that arrived since the last retrain (``retrain_after_labels``),
and queues the runs that are due. One worker thread runs the queued runs one after the other, so a
job never blocks the event loop and two heavy jobs never compete for the cores with scoring; a run
writes its progress and result to ``job_runs``. A trigger of a job that already has a run queued or
running is recorded as skipped. A run left queued or running by a server that was killed is marked
failed ("interrupted by a restart") when the next one starts.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from pydantic import BaseModel

from fraudstream.config import Settings
from fraudstream.core.rules import RuleSet
from fraudstream.cron import next_fire_ms, next_fires_ms
from fraudstream.ml.jobs import JOBS, JobContext, execute, labels_since_retrain, new_run, parse_params
from fraudstream.storage import Store

__all__ = ["Jobs"]

log = structlog.get_logger("fraudstream.jobs")

#: Who a run started by the server itself is recorded as, in the runs and the audit log.
SCHEDULER = "scheduler"


def _now_ms() -> int:
    return int(time.time() * 1000)


class Jobs:
    """The job runs of a server (``service.jobs``): scheduled, triggered by labels, or asked for."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        active_rules: Callable[[], RuleSet],
        models_changed: Callable[[], None],
    ) -> None:
        self._store = store
        self._settings = settings
        self._active_rules = active_rules
        # Called after a run promoted a model: the running engine takes the new champion at once.
        self._models_changed = models_changed
        self._crons = {"retrain": settings.retrain_cron, "backtest_report": settings.backtest_cron}
        self._next: dict[str, int | None] = {}
        self._runs: queue.Queue[tuple[str, str, BaseModel] | None] = queue.Queue()
        # The scheduler's thread and the API's record runs: one at a time, so one run per job.
        self._recording = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._worker: threading.Thread | None = None
        #: When the scheduler last looked at the schedules and labels (ms), None before its first look.
        self.checked_at_ms: int | None = None

    async def start(self) -> None:
        """Mark the runs a previous server left unfinished as failed; start the worker and scheduler."""
        interrupted = await asyncio.to_thread(self._store.fail_interrupted_job_runs, _now_ms())
        if interrupted:
            log.warning("job runs interrupted by a restart marked failed", runs=interrupted)
        now = _now_ms()
        self._next = {job: next_fire_ms(expression, now) for job, expression in self._crons.items()}
        self._worker = threading.Thread(target=self._work, name="fraudstream-jobs", daemon=True)
        self._worker.start()
        self._task = asyncio.create_task(self._schedule(), name="fraudstream-scheduler")

    async def stop(self) -> None:
        """Stop scheduling; a run in progress is not waited for (the next start marks it failed)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._runs.put(None)

    # --- asked for ---------------------------------------------------------------------------

    async def run(self, job: str, params: Mapping[str, Any], actor: str) -> dict[str, Any]:
        """Queue a run of ``job`` asked for by ``actor`` (audited): the run, queued, or skipped when a
        run of the job is already queued or running. Raises ConfigError naming an unknown job or a
        wrong parameter."""
        parsed = parse_params(job, params)
        return await asyncio.to_thread(self._record, job, parsed, "manual", actor)

    async def runs(self, job: str | None, statuses: list[str] | None, limit: int) -> list[dict[str, Any]]:
        """Runs, newest first, filtered; without their results."""
        return await asyncio.to_thread(
            lambda: self._store.list_job_runs(job=job, statuses=statuses, limit=limit)
        )

    async def get(self, run_id: str) -> dict[str, Any] | None:
        """One run with its parameters, progress and result; None if unknown."""
        return await asyncio.to_thread(self._store.get_job_run, run_id)

    async def schedule(self, count: int = 3) -> dict[str, Any]:
        """Each job: its cron schedule and next fire times, its last run; for retrain also the label
        trigger (how many labels it waits for, how many arrived since the last retrain)."""
        return await asyncio.to_thread(self._schedule_now, count)

    def _schedule_now(self, count: int) -> dict[str, Any]:
        now = _now_ms()
        jobs = []
        for job in JOBS:
            cron = self._crons.get(job, "")
            last = self._store.list_job_runs(job=job, limit=1)
            entry: dict[str, Any] = {
                "job": job,
                "cron": cron or None,
                "next_runs_ms": next_fires_ms(cron, now, count) if cron else [],
                "last_run": last[0] if last else None,
            }
            if job == "retrain":
                entry["after_labels"] = self._settings.retrain_after_labels or None
                entry["labels_since_last"] = labels_since_retrain(self._store)
            jobs.append(entry)
        return {"now_ms": now, "checked_at_ms": self.checked_at_ms, "jobs": jobs}

    # --- on schedule -------------------------------------------------------------------------

    async def _schedule(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.tick, _now_ms())
            except Exception as exc:  # a database hiccup must not end the scheduling for good
                log.error("job scheduling failed", error=str(exc))
            await asyncio.sleep(self._settings.jobs_interval_s)

    def tick(self, now_ms: int) -> list[dict[str, Any]]:
        """Queue the runs due at ``now_ms``: cron schedules passed, and a retrain once
        ``retrain_after_labels`` labels arrived since the last one. The runs recorded."""
        recorded = []
        for job, due in self._next.items():
            if due is not None and now_ms >= due:
                recorded.append(self._record(job, parse_params(job, {}), "schedule", SCHEDULER))
                self._next[job] = next_fire_ms(self._crons[job], now_ms)
        wanted = self._settings.retrain_after_labels
        if wanted and labels_since_retrain(self._store) >= wanted:
            recorded.append(self._record("retrain", parse_params("retrain", {}), "labels", SCHEDULER))
        self.checked_at_ms = now_ms
        return recorded

    # --- running -----------------------------------------------------------------------------

    def _record(self, job: str, params: BaseModel, trigger: str, actor: str) -> dict[str, Any]:
        with self._recording:
            run = new_run(self._store, job, params, trigger, actor, _now_ms())
        if trigger == "manual":
            details = {"run": run["id"], "status": run["status"], "params": run["params"]}
            self._store.audit(actor, "run_job", job, details, _now_ms())
        if run["status"] == "queued":
            self._runs.put((run["id"], job, params))
        log.info("job run", job=job, trigger=trigger, run=run["id"], status=run["status"])
        return run

    def _progress_of(self, run_id: str) -> Callable[[float], None]:
        """Where a run says how far it is: its row in ``job_runs``."""

        def progress(done: float) -> None:
            self._store.job_run_progress(run_id, done)

        return progress

    def _work(self) -> None:
        _yield_the_cores()
        while True:
            item = self._runs.get()
            if item is None:
                return
            run_id, job, params = item
            context = JobContext(self._store, self._settings, self._active_rules, self._progress_of(run_id))
            try:
                run = execute(context, run_id, job, params)
            except Exception:  # recorded as failed by `execute`; the worker goes on with the next run
                log.exception("job run failed", job=job, run=run_id)
                continue
            log.info("job run ended", job=job, run=run_id, status=run["status"], error=run["error"])
            if job == "retrain" and run["status"] == "done" and run["result"]["promoted"]:
                self._models_changed()
                version = run["result"]["version"]
                details = {"version": version, "run": run_id}
                self._store.audit(run["actor"] or SCHEDULER, "model_champion", version, details, _now_ms())


#: How much nicer than the server the job thread (and the threads it starts) runs, on Linux.
JOB_NICENESS = 10


def _yield_the_cores() -> None:
    """Make the calling thread nicer than scoring: on Linux a nice value is a thread's own, and the
    threads a job starts (LightGBM's and scikit-learn's OpenMP workers) inherit it, so a retrain that
    keeps every core busy leaves them to the scoring thread whenever it has work."""
    if sys.platform != "linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), JOB_NICENESS)
    except OSError as exc:  # not allowed here (a container's limits): the jobs run at the same priority
        log.warning("could not lower the job thread's priority", error=str(exc))
