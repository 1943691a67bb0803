"""Live counters of the running server: decisions, latency percentiles, throughput, rule hits."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np

__all__ = ["Metrics"]


class Metrics:
    """Thread-safe counters; latencies kept for the last 10,000 decisions."""

    def __init__(self) -> None:
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
        self._recent: deque[tuple[float, int]] = deque(maxlen=600)
        self.started = time.time()

    def record_batch(
        self, decisions: list[str], latencies_ms: list[float], rule_hits: dict[str, int]
    ) -> None:
        with self._lock:
            self.batches += 1
            self.decisions.update(decisions)
            self.rule_hits.update({k: v for k, v in rule_hits.items() if v})
            self._latencies.extend(latencies_ms)
            self._recent.append((time.monotonic(), len(decisions)))

    def record_repeat(self, duplicates: int, conflicts: int) -> None:
        with self._lock:
            self.duplicates += duplicates
            self.conflicts += conflicts

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

    def prometheus(self) -> str:
        """The counters in Prometheus' text exposition format."""
        latency = self.latency()
        lines = [
            "# HELP fraudstream_decisions_total Decisions made, by decision.",
            "# TYPE fraudstream_decisions_total counter",
        ]
        with self._lock:
            for decision in ("approve", "challenge", "review", "decline"):
                lines.append(
                    f'fraudstream_decisions_total{{decision="{decision}"}} {self.decisions[decision]}'
                )
            lines += [
                "# HELP fraudstream_rule_hits_total Rule hits, by rule code.",
                "# TYPE fraudstream_rule_hits_total counter",
                *(
                    f'fraudstream_rule_hits_total{{rule="{code}"}} {n}'
                    for code, n in sorted(self.rule_hits.items())
                ),
                "# TYPE fraudstream_invalid_total counter",
                f"fraudstream_invalid_total {self.invalid}",
                "# TYPE fraudstream_duplicates_total counter",
                f"fraudstream_duplicates_total {self.duplicates}",
                "# HELP fraudstream_refused_total Requests refused (503): too many transactions waiting.",
                "# TYPE fraudstream_refused_total counter",
                f"fraudstream_refused_total {self.refused}",
                "# TYPE fraudstream_batches_total counter",
                f"fraudstream_batches_total {self.batches}",
            ]
        lines += [
            "# HELP fraudstream_decisions_per_second Decisions per second over the last 10 s.",
            "# TYPE fraudstream_decisions_per_second gauge",
            f"fraudstream_decisions_per_second {self.rate()}",
            "# TYPE fraudstream_latency_ms gauge",
            f'fraudstream_latency_ms{{quantile="0.5"}} {latency["p50"] or 0}',
            f'fraudstream_latency_ms{{quantile="0.99"}} {latency["p99"] or 0}',
        ]
        return "\n".join(lines) + "\n"
