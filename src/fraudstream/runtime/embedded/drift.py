"""Drift in the embedded server: live counts of every model feature in the bins of the champion's
training reference, per UTC day and champion version, kept in memory, stored with each snapshot, and
compared with the reference (PSI) for /v1/drift and the Prometheus gauges.

Counting is one NumPy pass per scored group (`Binning.counts`), never a loop per transaction. The
day of a transaction is the UTC day the server received it. What is counted but not yet stored
lives in memory until the next snapshot (every ``snapshot_interval_s``, and at shutdown); stored
counts record the log position they hold, so after a crash the replay of the log counts exactly the
transactions the lost counts held. Kafka workers count nothing yet (docs/drift.md).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import exc as sa_exc

from fraudstream.config import Settings
from fraudstream.core.drift import Binning, feature_drift
from fraudstream.core.engine import DecisionBatch
from fraudstream.core.models import Model
from fraudstream.storage import Store
from fraudstream.storage.drift import DAY_MS, utc_day

__all__ = ["DAILY_DAYS", "DriftMonitor"]

log = structlog.get_logger("fraudstream.drift")

#: How many UTC days the daily score distribution and alert rate cover, today included.
DAILY_DAYS = 14
#: At most this many features get a ``fraudstream_feature_psi`` series: the most drifted.
METRIC_FEATURES = 20

_Key = tuple[str, str]  # (UTC day, model version)


def _now_ms() -> int:
    return int(time.time() * 1000)


#: The demo trains its models on simulated days of history, then sends the same simulator's traffic
#: many times faster: times between payments and counts per window drift by construction.
_DEMO_NOTE = (
    " (in the demo this is expected: its live traffic runs many times faster than the simulated"
    " history its models were trained on, so time-based features such as counts per window and"
    " seconds since the last payment move)"
)


class DriftMonitor:
    """Counts what the champion scores in its reference's bins and reports drift (``service.drift``)."""

    def __init__(self, store: Store, settings: Settings, champion: Callable[[], Model | None]) -> None:
        self._store = store
        self._settings = settings
        # A function, not the model: the service's engine (and its champion) changes.
        self._champion = champion
        self._lock = threading.Lock()
        self._pending: dict[_Key, npt.NDArray[np.int64]] = {}
        self._binnings: dict[str, Binning | None] = {}
        #: Daily figures of days that can no longer change (before yesterday), by day number.
        self._closed_days: dict[int, dict[str, Any]] = {}
        #: The last computed features' PSI and warning, for the Prometheus gauges.
        self._gauges: tuple[list[tuple[str, float]], bool] = ([], False)

    # --- counting (the scoring thread) ---------------------------------------------------------

    def binning(self, model: Model) -> Binning | None:
        """The bins of ``model``'s reference for its features; None for a model without one."""
        version = model.metadata.version
        if version not in self._binnings:
            reference = model.metadata.reference
            known = reference.get("features", {}) if reference else {}
            usable = reference and all(name in known for name in model.feature_names)
            self._binnings[version] = Binning.of(reference, model.feature_names) if usable else None
        return self._binnings[version]

    def observe(
        self,
        decisions: DecisionBatch,
        received_ms: Sequence[int] | npt.NDArray[np.int64],
        rows: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        """Count the features of a scored group (of its ``rows`` only, when given) in the bins of
        the model that scored it, on the UTC days they were received."""
        model = decisions.model
        if model is None or not len(decisions):
            return
        binning = self.binning(model)
        if binning is None:
            return
        matrix = decisions.features.select(binning.names)
        days = np.asarray(received_ms, dtype=np.int64) // DAY_MS
        if rows is not None:
            matrix, days = matrix[rows], days[rows]
        version = model.metadata.version
        for day in np.unique(days).tolist():  # one day, two around midnight
            same = days == day
            counts = binning.counts(matrix if same.all() else matrix[same])
            key = (utc_day(int(day) * DAY_MS), version)
            with self._lock:
                before = self._pending.get(key)
                self._pending[key] = counts if before is None else before + counts

    def observe_replayed(
        self, decisions: DecisionBatch, rows: Sequence[Mapping[str, Any]], after: int
    ) -> None:
        """Count the replayed log ``rows`` (with their ``seq`` and ``received_at_ms``) that stored
        counts do not hold: those after log position ``after``."""
        seq = np.fromiter((row["seq"] for row in rows), dtype=np.int64, count=len(rows))
        newer = seq > after
        if newer.any():
            received = np.fromiter((row["received_at_ms"] for row in rows), dtype=np.int64, count=len(rows))
            self.observe(decisions, received, newer)

    def discard(self) -> None:
        """Forget the counts not stored yet: the engine is rebuilt from the log, whose replay counts
        them again (`observe_replayed`)."""
        with self._lock:
            self._pending = {}

    # --- storing (the snapshot) ----------------------------------------------------------------

    def take(self) -> dict[_Key, npt.NDArray[np.int64]]:
        """The counts not stored yet, which leave memory (`store` them, or `put_back`)."""
        with self._lock:
            taken, self._pending = self._pending, {}
        return taken

    def put_back(self, taken: Mapping[_Key, npt.NDArray[np.int64]]) -> None:
        with self._lock:
            for key, counts in taken.items():
                before = self._pending.get(key)
                self._pending[key] = counts if before is None else before + counts

    def store(self, taken: Mapping[_Key, npt.NDArray[np.int64]], last_seq: int) -> None:
        """Add ``taken`` (from `take`, while the log ended at ``last_seq``) to the stored counts;
        put back in memory if the database refuses them, to be tried with the next snapshot."""
        deltas = {}
        for (day, version), counts in taken.items():
            binning = self._binnings.get(version)
            if binning is not None:
                deltas[(day, version)] = binning.split(counts)
        try:
            self._store.add_drift_counts(deltas, last_seq, _now_ms())
        except sa_exc.SQLAlchemyError as exc:
            self.put_back(taken)
            log.error("drift counts not stored; kept for the next snapshot", error=str(exc))

    def stored_through(self) -> int:
        """The log position the stored counts hold: a replay counts what comes after."""
        return self._store.drift_last_seq()

    # --- reporting -----------------------------------------------------------------------------

    async def report(self) -> dict[str, Any]:
        """/v1/drift: each feature's PSI over the window against the champion's training data, the
        overall status and warning, and the daily score distribution and alert rate."""
        return await asyncio.to_thread(self.report_now)

    def report_now(self) -> dict[str, Any]:
        now = _now_ms()
        found = self.features_now(now)
        found["daily"] = self._daily(now)
        return found

    def features_now(self, now_ms: int | None = None) -> dict[str, Any]:
        """The feature part of the report (no daily figures); the Prometheus gauges follow it.

        The window is the current UTC day and the one before: always the last 24 hours at least,
        at most 48 (daily counts cannot be cut at an hour)."""
        now = _now_ms() if now_ms is None else now_ms
        settings = self._settings
        today = now // DAY_MS
        days = [utc_day((today - 1) * DAY_MS), utc_day(today * DAY_MS)]
        answer: dict[str, Any] = {
            "model_version": None,
            "status": "no_model",
            "warning": False,
            "message": "",
            "window": {"days": days, "from_ms": (today - 1) * DAY_MS, "to_ms": now, "transactions": 0},
            "thresholds": {
                "watch": settings.drift_watch_psi,
                "drifted": settings.drift_alert_psi,
                "min_transactions": settings.drift_min_transactions,
            },
            "reference_rows": None,
            "features": [],
        }
        model = self._champion()
        if model is None:
            answer["message"] = "no model decides: rules alone have no training data to drift from"
            self._gauges = ([], False)
            return answer
        answer["model_version"] = version = model.metadata.version
        binning = self.binning(model)
        if binning is None:
            answer["status"] = "no_reference"
            answer["message"] = (
                f"no reference: model {version} was trained before drift references were kept; "
                "retrain to enable drift"
            )
            self._gauges = ([], False)
            return answer
        reference = model.metadata.reference
        answer["reference_rows"] = reference.get("rows")
        counts = self._store.drift_counts_of(days, version)
        with self._lock:
            pending = [self._pending.get((day, version)) for day in days]
        for extra in pending:
            if extra is not None:
                for name, live in binning.split(extra).items():
                    before = counts.get(name)
                    counts[name] = live if before is None else [a + b for a, b in zip(before, live)]
        features = feature_drift(
            reference, counts, watch=settings.drift_watch_psi, drifted=settings.drift_alert_psi
        )
        seen = max((sum(c) for c in counts.values()), default=0)
        answer["window"]["transactions"] = seen
        answer["features"] = features
        if seen < settings.drift_min_transactions:
            answer["status"] = "too_few"
            answer["message"] = (
                f"{seen} transactions scored by {version} since {days[0]}: drift is measured from "
                f"{settings.drift_min_transactions} (FRAUDSTREAM_DRIFT_MIN_TRANSACTIONS)"
            )
            if settings.kafka_brokers:
                answer["message"] = (
                    "Kafka mode: the workers decide, and do not count features for drift yet "
                    "(docs/drift.md); the daily scores and alert rate below are the workers' decisions"
                )
            self._gauges = ([], False)
            return answer
        statuses = {f["status"] for f in features}
        status = next((s for s in ("drifted", "watch") if s in statuses), "stable")
        drifted = [f["feature"] for f in features if f["status"] == "drifted"]
        answer["status"] = status
        answer["warning"] = bool(drifted)
        answer["message"] = (
            f"{len(drifted)} feature(s) drifted from the training data of {version} "
            f"(PSI >= {settings.drift_alert_psi}): {', '.join(drifted[:5])}"
            + (" ..." if len(drifted) > 5 else "")
            + "; check the traffic, and retrain if it is the new normal"
            + (_DEMO_NOTE if settings.demo and drifted else "")
            if drifted
            else f"{status}: no feature's PSI reaches {settings.drift_alert_psi}"
        )
        self._gauges = ([(f["feature"], f["psi"]) for f in features[:METRIC_FEATURES]], bool(drifted))
        return answer

    def _daily(self, now_ms: int) -> list[dict[str, Any]]:
        today = now_ms // DAY_MS
        first = today - DAILY_DAYS + 1
        missing = [n for n in range(first, today + 1) if n not in self._closed_days]
        fresh = self._store.daily_decisions(missing[0] * DAY_MS, now_ms) if missing else []
        for day in fresh:
            number = day["day_ms"] // DAY_MS
            if number < today - 1:  # yesterday's last decisions may still be committing
                self._closed_days[number] = day
        by_day = {**self._closed_days, **{d["day_ms"] // DAY_MS: d for d in fresh}}
        for old in [n for n in self._closed_days if n < first]:
            del self._closed_days[old]
        return [by_day[n] for n in range(first, today + 1)]

    def families(self) -> Iterator[Metric]:
        """The gauges of the last computed drift (at each snapshot and each /v1/drift)."""
        features, warning = self._gauges
        psi = GaugeMetricFamily(
            "fraudstream_feature_psi",
            f"PSI of a model feature over the current and previous UTC day against the champion's "
            f"training data (the {METRIC_FEATURES} most drifted features).",
            labels=["feature"],
        )
        for name, value in features:
            psi.add_metric([name], value)
        yield psi
        yield GaugeMetricFamily(
            "fraudstream_drift_warning",
            "1 when a feature of the champion drifted (PSI >= FRAUDSTREAM_DRIFT_ALERT_PSI), else 0.",
            value=1.0 if warning else 0.0,
        )

    def refresh(self) -> None:
        """Recompute the gauges (the feature part only: no query over the decisions)."""
        try:
            self.features_now()
        except sa_exc.SQLAlchemyError as exc:  # the gauges stay as they were; the log says why
            log.error("drift gauges not updated", error=str(exc))
