"""Live figures of the running server for its dashboard (latency percentiles, throughput, rule hits),
and its Prometheus metrics."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np
import numpy.typing as npt

from fraudstream.runtime.metrics import DecisionMetrics

__all__ = ["Metrics"]


class Metrics:
    """Thread-safe counters; latencies kept for the last 10,000 decisions after warm-up, the
    dashboard's window. ``exposition`` holds the Prometheus metrics, whose histograms cover the whole
    run after warm-up.

    >>> metrics = Metrics()
    >>> metrics.record_batch(["approve"], [2500.0], {}, [3])  # the first group, still warming up
    >>> metrics.warmed_up()
    >>> metrics.record_batch(["approve", "review"], [4.0, 6.0], {}, [3, 60])
    >>> sum(metrics.decisions.values()), metrics.latency()["p99"] < 10
    (3, True)
    """

    def __init__(self) -> None:
        self.exposition = DecisionMetrics()
        self._lock = threading.Lock()
        self.decisions: Counter[str] = Counter()
        self.rule_hits: Counter[str] = Counter()
        self.invalid = 0
        #: Requests refused because too many transactions were waiting (overload).
        self.refused = 0
        self.duplicates = 0
        self.conflicts = 0
        self.batches = 0
        self._latencies: deque[float] = deque(maxlen=10_000)
        #: Whether latencies are recorded yet, and since when (wall clock, ms; `warmed_up`).
        self.timing = False
        self.warm_since_ms = 0
        self._recent: deque[tuple[float, int]] = deque(maxlen=600)
        self.started = time.time()

    def warmed_up(self) -> None:
        """Warm-up is over: latencies from now on enter the dashboard's window and the Prometheus
        histogram. Before, decisions are counted but their seconds (kernels loading, first calls
        into the database and Arrow) would stay in the p99 for thousands of decisions."""
        with self._lock:
            self.timing = True
            self.warm_since_ms = int(time.time() * 1000)
        self.exposition.warmed_up()

    def record_refused(self) -> None:
        with self._lock:
            self.refused += 1
        self.exposition.refused.inc()

    def record_invalid(self, count: int) -> None:
        with self._lock:
            self.invalid += count
        self.exposition.invalid.inc(count)

    def record_batch(
        self,
        decisions: list[str],
        latencies_ms: list[float],
        rule_hits: dict[str, int],
        scores: npt.ArrayLike,
        alerts: int = 0,
    ) -> None:
        self.exposition.record(decisions, np.asarray(latencies_ms) / 1000.0, scores, rule_hits, alerts)
        with self._lock:
            self.batches += 1
            self.decisions.update(decisions)
            self.rule_hits.update({k: v for k, v in rule_hits.items() if v})
            if self.timing:
                self._latencies.extend(latencies_ms)
            self._recent.append((time.monotonic(), len(decisions)))

    def record_repeat(self, duplicates: int, conflicts: int) -> None:
        with self._lock:
            self.duplicates += duplicates
            self.conflicts += conflicts
        self.exposition.duplicates.inc(duplicates)

    def latency(self) -> dict[str, float | None]:
        with self._lock:
            values = np.array(self._latencies, dtype=np.float64)
        if not len(values):
            return {"p50": None, "p99": None}
        return {
            "p50": round(float(np.percentile(values, 50)), 3),
            "p99": round(float(np.percentile(values, 99)), 3),
        }

    def rate(self, window_s: float = 10.0) -> float:
        """Decisions per second over the last ``window_s`` seconds."""
        now = time.monotonic()
        with self._lock:
            count = sum(n for t, n in self._recent if now - t <= window_s)
        return round(count / window_s, 2)
