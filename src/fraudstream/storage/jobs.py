"""Job runs: scheduled and manual jobs (retrain, re-score, backtest report), their progress and results."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping

from fraudstream.storage.rows import EVENT_COLUMNS
from fraudstream.storage.tables import job_runs, labels, rule_sets, transactions

__all__ = ["ACTIVE_STATUSES", "JOB_STATUSES", "JobRuns"]

#: What a run can be: waiting for the worker, running, finished with a result, failed with an error,
#: or not run because a run of the same job was already waiting or running.
JOB_STATUSES = ("queued", "running", "done", "failed", "skipped")
#: A run that holds its job: another trigger of the job meanwhile is skipped.
ACTIVE_STATUSES = ("queued", "running")

#: A run as listed: everything but its result (a report can be large); `get_job_run` has it.
_LISTED = [c for c in job_runs.c if c.name != "result"]


def _run(row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    found = dict(row)
    found["params"] = json.loads(found["params"])
    if "result" in found:
        found["result"] = None if found["result"] is None else json.loads(found["result"])
    return found


class JobRuns:
    """The job run queries of :class:`~fraudstream.storage.Store` (a mixin over its ``engine``),
    parameterized and the same on SQLite and PostgreSQL."""

    engine: Engine

    def create_job_run(
        self,
        job: str,
        trigger: str,
        params: Mapping[str, Any],
        actor: str | None,
        now_ms: int,
        *,
        status: str = "queued",
        error: str | None = None,
    ) -> dict[str, Any]:
        """Record a new run of ``job`` (queued, or skipped with ``error`` saying why); the run."""
        row = {
            "id": uuid.uuid4().hex[:16],
            "job": job,
            "trigger": trigger,
            "status": status,
            "progress": 0.0,
            "params": json.dumps(dict(params)),
            "result": None,
            "error": error,
            "actor": actor,
            "created_at_ms": now_ms,
            "started_at_ms": None,
            "finished_at_ms": now_ms if status == "skipped" else None,
        }
        with self.engine.begin() as connection:
            connection.execute(sa.insert(job_runs), [row])
        return _run(row)

    def start_job_run(self, run_id: str, now_ms: int) -> None:
        """The run has started."""
        self._update_job_run(run_id, status="running", started_at_ms=now_ms)

    def job_run_progress(self, run_id: str, progress: float) -> None:
        """How far the run is, 0 to 1."""
        self._update_job_run(run_id, progress=min(1.0, max(0.0, progress)))

    def finish_job_run(self, run_id: str, result: Mapping[str, Any], now_ms: int) -> None:
        """The run is done, with its result."""
        self._update_job_run(
            run_id, status="done", progress=1.0, result=json.dumps(dict(result)), finished_at_ms=now_ms
        )

    def fail_job_run(self, run_id: str, error: str, now_ms: int) -> None:
        """The run failed, and why."""
        self._update_job_run(run_id, status="failed", error=error, finished_at_ms=now_ms)

    def _update_job_run(self, run_id: str, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(sa.update(job_runs).where(job_runs.c.id == run_id).values(**values))

    def fail_interrupted_job_runs(self, now_ms: int) -> int:
        """Mark every queued or running run failed, "interrupted by a restart": a server that starts
        runs none of them (it was killed, or stopped, while they ran). How many there were."""
        query = (
            sa.update(job_runs)
            .where(job_runs.c.status.in_(ACTIVE_STATUSES))
            .values(status="failed", error="interrupted by a restart", finished_at_ms=now_ms)
        )
        with self.engine.begin() as connection:
            return int(connection.execute(query).rowcount)

    def get_job_run(self, run_id: str) -> dict[str, Any] | None:
        """One run with its parameters and result; None if there is none of that id."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(job_runs).where(job_runs.c.id == run_id)).mappings().first()
        return None if row is None else _run(row)

    def list_job_runs(
        self, *, job: str | None = None, statuses: Sequence[str] | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Runs, newest first, of ``job`` (any when None) in any of ``statuses`` (any when None);
        without their results."""
        query = sa.select(*_LISTED)
        if job is not None:
            query = query.where(job_runs.c.job == job)
        if statuses is not None:
            query = query.where(job_runs.c.status.in_(list(statuses)))
        query = query.order_by(job_runs.c.created_at_ms.desc(), job_runs.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_run(r) for r in connection.execute(query).mappings()]

    def active_job_run(self, job: str) -> dict[str, Any] | None:
        """The run of ``job`` that is queued or running, if any."""
        found = self.list_job_runs(job=job, statuses=ACTIVE_STATUSES, limit=1)
        return found[0] if found else None

    def labels_after_count(self, label_id: int) -> int:
        """How many labels were stored after the label of id ``label_id``."""
        query = sa.select(sa.func.count()).select_from(labels).where(labels.c.id > label_id)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def ruleset_text(self, version: int) -> str | None:
        """The YAML of stored rule set ``version`` (a candidate to re-score with); None if none."""
        query = sa.select(rule_sets.c.yaml).where(rule_sets.c.version == version)
        with self.engine.connect() as connection:
            found = connection.execute(query).scalar_one_or_none()
        return None if found is None else str(found)

    def events_in_time(self, since_ms: int, until_ms: int | None) -> list[dict[str, Any]]:
        """Stored transactions whose own time is in [``since_ms``, ``until_ms``) (no end when None), in
        log order, as `events_after` gives them: the history a job replays, read by its time index."""
        columns = [transactions.c.seq, *(transactions.c[name] for name in EVENT_COLUMNS)]
        query = sa.select(*columns, transactions.c.received_at_ms).where(
            transactions.c.timestamp_ms >= since_ms
        )
        if until_ms is not None:
            query = query.where(transactions.c.timestamp_ms < until_ms)
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(query.order_by(transactions.c.seq)).mappings()]
