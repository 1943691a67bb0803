"""The jobs that run on a schedule or on demand: retrain, re-score history with a candidate rule set,
and the backtest report; each records its run, progress and result in the database (``job_runs``).

A job is a blocking function of a `JobContext` and its parameters, returning its result (a report
that goes into the run as JSON). The server runs them in a worker thread (`runtime/embedded/jobs.py`),
``fraudstream jobs run`` in its own process; both through `execute`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from fraudstream.config import Settings
from fraudstream.core.engine import default_names
from fraudstream.core.features import parse_delay_ms
from fraudstream.core.models import Model
from fraudstream.core.policy import DECISIONS, REVIEW
from fraudstream.core.rules import RuleSet, load_ruleset
from fraudstream.errors import ConfigError, FraudstreamError
from fraudstream.ml.backtest import compare, replay_rules, rules_report
from fraudstream.ml.registry import Registry, champion_model
from fraudstream.ml.retrain import history_from_store, retrain
from fraudstream.ml.train import engine_config
from fraudstream.storage import Store

__all__ = [
    "JOBS",
    "WARM_UP_MS",
    "BacktestReportParams",
    "JobContext",
    "RescoreParams",
    "RetrainParams",
    "backtest_report_job",
    "execute",
    "finite",
    "labels_since_retrain",
    "new_run",
    "parse_params",
    "rescore_job",
    "retrain_job",
    "stored_params",
]

DAY_MS: Final = 86_400_000
#: How much history before a re-scored range is replayed first, so that its features (windows of up to
#: 30 days) are what they were when those transactions were decided.
WARM_UP_MS: Final = 30 * DAY_MS
#: Transactions whose decision changes that a re-score report lists by id.
EXAMPLES: Final = 20


def _now_ms() -> int:
    return int(time.time() * 1000)


class RetrainParams(BaseModel):
    """Retrain: a challenger trained on the stored history, promoted only if better."""

    model_config = ConfigDict(extra="forbid")

    days: float | None = Field(
        None, gt=0, le=3650, description="Learn from this many days of stored history (default: retrain_days)"
    )
    margin: float | None = Field(
        None, ge=-1, le=1, description="Promote only if average precision is better by this much "
        "(default: retrain_margin)",
    )  # fmt: skip
    kind: Literal["lightgbm", "isolation_forest", "random_forest", "logistic"] | None = Field(
        None, description="The kind of challenger (default: retrain_kind)"
    )


class RescoreParams(BaseModel):
    """Re-score: stored history of a time range decided again with a candidate rule set."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: AwareDatetime = Field(alias="from", description="The range's start (RFC 3339 with its zone)")
    end: AwareDatetime | None = Field(None, alias="to", description="The range's end (default: now)")
    rules: str | None = Field(None, description="The candidate rule set, as YAML")
    rules_version: int | None = Field(None, ge=1, description="Or a stored rule set version as candidate")
    model: Literal["champion", "none"] = Field(
        "champion", description="Decide with the champion model and the rules, or the rules alone"
    )
    label_delay_days: float | None = Field(
        None,
        ge=0,
        le=365,
        description="Labels count this long after their transaction (default: label_delay)",
    )

    @model_validator(mode="after")
    def _one_candidate(self) -> RescoreParams:
        if (self.rules is None) == (self.rules_version is None):
            raise ValueError("give the candidate rule set: either rules (YAML) or rules_version, not both")
        if self.end is not None and self.end <= self.start:
            raise ValueError("to must be after from")
        return self


class BacktestReportParams(BaseModel):
    """Backtest report: the rule set in force and the champion over the last days."""

    model_config = ConfigDict(extra="forbid")

    days: float = Field(7.0, gt=0, le=3650, description="How many days back from now")


@dataclass(frozen=True)
class JobContext:
    """What a job works with: the database, the settings (registry, thresholds, label delay), the rule
    set in force, and where it says how far it is (0 to 1)."""

    store: Store
    settings: Settings
    active_rules: Callable[[], RuleSet]
    progress: Callable[[float], None]

    @property
    def registry(self) -> Registry:
        return Registry(self.settings.models_dir, self.settings.s3_endpoint_url)

    def parse_rules(self, text: str) -> RuleSet:
        """A rule set over the features this configuration computes; RuleError if it does not load."""
        return load_ruleset(text, default_names(self.settings.engine_config().features))

    def champion(self) -> Model | None:
        return champion_model(
            self.settings.model_path,
            self.settings.models_dir,
            self.settings.engine_config().features.feature_names,
            endpoint_url=self.settings.s3_endpoint_url,
        )


def retrain_job(context: JobContext, params: RetrainParams) -> dict[str, Any]:
    """`fraudstream.ml.retrain.retrain` on the last ``days`` of stored history: the comparison with
    the champion on the same holdout, and whether the challenger was promoted."""
    settings = context.settings
    days = params.days if params.days is not None else settings.retrain_days
    return retrain(
        context.store,
        context.registry,
        since_ms=int(_now_ms() - days * DAY_MS),
        label_delay_ms=parse_delay_ms(settings.label_delay),
        margin=params.margin if params.margin is not None else settings.retrain_margin,
        kind=params.kind or settings.retrain_kind,
        progress=context.progress,
    )


def rescore_job(context: JobContext, params: RescoreParams) -> dict[str, Any]:
    """The stored transactions from ``from`` to ``to`` replayed (after the 30 days before them, for
    their features) with the rule set in force and with the candidate, the same model for both: the
    decisions that change, the alerts gained and lost, each side's backtest (hits, precision and
    recall per rule against the stored labels) and their comparison."""
    start_ms = int(params.start.timestamp() * 1000)
    end_ms = int(params.end.timestamp() * 1000) if params.end is not None else _now_ms()
    candidate = context.parse_rules(_candidate_text(context.store, params))
    current = context.active_rules()
    model = context.champion() if params.model == "champion" else None
    delay_ms = _delay_ms(context.settings, params.label_delay_days)
    config = engine_config(delay_ms, context.settings.engine_config())
    history = history_from_store(context.store, start_ms - WARM_UP_MS, end_ms)
    context.progress(0.1)
    ours = replay_rules(history, current, model=model, label_delay_ms=delay_ms, config=config)
    context.progress(0.55)
    theirs = replay_rules(history, candidate, model=model, label_delay_ms=delay_ms, config=config)
    context.progress(0.95)
    current_report = rules_report(history, current, ours, from_ms=start_ms)
    candidate_report = rules_report(history, candidate, theirs, from_ms=start_ms)
    window = history.batch.timestamp_ms >= start_ms
    ids = np.asarray(history.batch.transaction_id.to_pylist(), dtype=object)[window]
    return {
        "from_ms": start_ms,
        "to_ms": end_ms,
        "transactions": int(window.sum()),
        "replayed": len(history.batch),
        "model": model.metadata.version if model is not None else None,
        "current_rules_version": current.version,
        "candidate_rules_version": candidate.version,
        "changes": _changes(ids, ours.decision[window], theirs.decision[window], history.is_fraud[window]),
        "current": current_report,
        "candidate": candidate_report,
        "comparison": compare(current_report, candidate_report, current, candidate),
    }


def backtest_report_job(context: JobContext, params: BacktestReportParams) -> dict[str, Any]:
    """The rule set in force and the champion replayed over the last ``days`` (after the 30 days
    before, for the features): per rule and for the policy, against the stored labels."""
    end_ms = _now_ms()
    start_ms = int(end_ms - params.days * DAY_MS)
    rules = context.active_rules()
    model = context.champion()
    delay_ms = parse_delay_ms(context.settings.label_delay)
    config = engine_config(delay_ms, context.settings.engine_config())
    history = history_from_store(context.store, start_ms - WARM_UP_MS, end_ms)
    context.progress(0.1)
    replayed = replay_rules(history, rules, model=model, label_delay_ms=delay_ms, config=config)
    context.progress(0.95)
    window = history.batch.timestamp_ms >= start_ms
    return {
        "from_ms": start_ms,
        "to_ms": end_ms,
        "transactions": int(window.sum()),
        "labelled_fraud": int(history.is_fraud[window].sum()),
        "model": model.metadata.version if model is not None else None,
        "report": rules_report(history, rules, replayed, from_ms=start_ms),
    }


#: Each job: its parameters and its function.
JOBS: Final[dict[str, tuple[type[BaseModel], Callable[[JobContext, Any], dict[str, Any]]]]] = {
    "retrain": (RetrainParams, retrain_job),
    "rescore": (RescoreParams, rescore_job),
    "backtest_report": (BacktestReportParams, backtest_report_job),
}


def parse_params(job: str, given: Mapping[str, Any]) -> BaseModel:
    """The parameters of ``job`` from JSON-like ``given``; ConfigError naming an unknown job, or each
    field that is wrong and what it allows."""
    from pydantic import ValidationError

    if job not in JOBS:
        raise ConfigError(f"no job {job!r}; the jobs are {', '.join(JOBS)}")
    try:
        return JOBS[job][0].model_validate(dict(given))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or job}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{job}: {problems}") from None


def execute(context: JobContext, run_id: str, job: str, params: BaseModel) -> dict[str, Any]:
    """Run ``job`` for the recorded run ``run_id``: started, its progress, then done with its result or
    failed with the error's message (a fraudstream error is the job's failure, e.g. too few labels to
    retrain; anything else is recorded and raised again, a bug). The run as it ended."""
    store = context.store
    store.start_job_run(run_id, _now_ms())
    try:
        result = finite(JOBS[job][1](context, params))
    except FraudstreamError as exc:
        store.fail_job_run(run_id, str(exc), _now_ms())
    except Exception as exc:
        store.fail_job_run(run_id, f"{type(exc).__name__}: {exc}", _now_ms())
        raise
    else:
        store.finish_job_run(run_id, result, _now_ms())
    found = store.get_job_run(run_id)
    assert found is not None
    return found


def stored_params(params: BaseModel) -> dict[str, Any]:
    """Parameters as a run records them (JSON, with their public names: ``from``, ``to``)."""
    return params.model_dump(mode="json", by_alias=True, exclude_none=True)


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (a metric that has no value here, e.g. ROC AUC without a
    fraud) as None: JSON has no NaN.

    >>> finite({"auc": float("nan"), "rules": [1.5, float("inf")]})
    {'auc': None, 'rules': [1.5, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def _candidate_text(store: Store, params: RescoreParams) -> str:
    if params.rules is not None:
        return params.rules
    assert params.rules_version is not None  # RescoreParams asks for one or the other
    text = store.ruleset_text(params.rules_version)
    if text is None:
        stored = ", ".join(str(v["version"]) for v in reversed(store.ruleset_versions())) or "none"
        raise ConfigError(
            f"rules_version: no stored rule set version {params.rules_version} (stored: {stored})"
        )
    return text


def _delay_ms(settings: Settings, days: float | None) -> int:
    return parse_delay_ms(settings.label_delay) if days is None else int(days * DAY_MS)


def _changes(
    ids: np.ndarray[Any, Any], current: np.ndarray[Any, Any], candidate: np.ndarray[Any, Any], fraud: Any
) -> dict[str, Any]:
    """What the candidate changes: how many decisions, from what to what, the alerts (reviews and
    declines) gained and lost with how many of them are labelled fraud, and the first changed ids."""
    changed = current != candidate
    gained = (candidate >= REVIEW) & (current < REVIEW)
    lost = (current >= REVIEW) & (candidate < REVIEW)
    moves = Counter(zip(current[changed].tolist(), candidate[changed].tolist()))
    return {
        "decisions_changed": int(changed.sum()),
        "transitions": [
            {"current": DECISIONS[a], "candidate": DECISIONS[b], "count": n}
            for (a, b), n in moves.most_common()
        ],
        "alerts_gained": int(gained.sum()),
        "alerts_gained_fraud": int((gained & fraud).sum()),
        "alerts_lost": int(lost.sum()),
        "alerts_lost_fraud": int((lost & fraud).sum()),
        "examples": [
            {
                "transaction_id": str(ids[i]),
                "current": DECISIONS[int(current[i])],
                "candidate": DECISIONS[int(candidate[i])],
                "is_fraud": bool(fraud[i]),
            }
            for i in np.flatnonzero(changed)[:EXAMPLES].tolist()
        ],
    }


def new_run(
    store: Store, job: str, params: BaseModel, trigger: str, actor: str | None, now_ms: int
) -> dict[str, Any]:
    """Record a run of ``job``: queued, or skipped (saying which run holds the job) when a run of it is
    already queued or running: one run of a job at a time. A retrain run records the last label it
    knows of (``labels_up_to``), from which the next label-triggered retrain counts."""
    recorded = stored_params(params)
    if job == "retrain":
        recorded["labels_up_to"] = store.last_label_id()
    busy = store.active_job_run(job)
    if busy is not None:
        reason = f"a run of {job} is already {busy['status']} ({busy['id']}); this trigger is skipped"
        return store.create_job_run(job, trigger, recorded, actor, now_ms, status="skipped", error=reason)
    return store.create_job_run(job, trigger, recorded, actor, now_ms)


def labels_since_retrain(store: Store) -> int:
    """How many labels arrived after those the last retrain run (of any trigger) knew of."""
    last = store.list_job_runs(job="retrain", statuses=("queued", "running", "done", "failed"), limit=1)
    return store.labels_after_count(int(last[0]["params"].get("labels_up_to", 0)) if last else 0)
