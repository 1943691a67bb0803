"""The Prometheus metrics both runtimes expose under the same names, each in its own registry."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "DecisionMetrics"]

#: The text exposition format prometheus_client writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
SCORE_BUCKETS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
DECISIONS = ("approve", "challenge", "review", "decline")


def _package_version() -> str:
    try:
        return version("fraudstream")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class _BulkHistogram:
    """A histogram fed a whole batch of values at once: one NumPy pass per batch, where
    prometheus_client's Histogram takes a lock per value (thousands per second on the hot path)."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = np.asarray(buckets, dtype=np.float64)
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, values: npt.ArrayLike) -> None:
        array = np.asarray(values, dtype=np.float64).ravel()
        if not len(array):
            return
        # side="left": a value equal to a bound belongs to that bucket (le is "less or equal").
        counts = np.bincount(np.searchsorted(self.bounds, array, side="left"), minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(array.sum())

    def family(self) -> HistogramMetricFamily:
        with self._lock:
            cumulative = np.cumsum(self._counts)
            total = self._sum
        labels = [f"{bound:g}" for bound in self.bounds] + ["+Inf"]
        return HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=[(le, float(n)) for le, n in zip(labels, cumulative)],
            sum_value=total,
        )


class _Families(Collector):
    """Hands the registry the families built at scrape time (histograms, build information)."""

    def __init__(self, build: Callable[[], Iterable[Metric]]) -> None:
        self._build = build

    def collect(self) -> Iterator[Metric]:
        yield from self._build()


class DecisionMetrics:
    """What a runtime decided and how fast, in a registry of its own: two services in one process
    (the tests) never share or collide, and every replica's series sum in PromQL.

    Latency is recorded only once the runtime calls :meth:`warmed_up`: decisions made while kernels
    compile and caches fill are counted, but their seconds would dominate the histogram's tail for
    as long as the process runs.

    >>> metrics = DecisionMetrics()
    >>> metrics.record(["approve", "decline"], [0.003, 0.004], [12, 95], {"R1": 1})
    >>> metrics.warmed_up()
    >>> metrics.record(["approve"], [0.002], [5], {})
    >>> text = metrics.exposition().decode()
    >>> 'fraudstream_decisions_total{decision="approve"} 2.0' in text
    True
    >>> "fraudstream_decision_latency_seconds_count 1.0" in text
    True
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self._describe: Callable[[], Mapping[str, str]] = dict
        self._more: list[Callable[[], Iterable[Metric]]] = []
        self._timing = False
        self._decisions = Counter(
            "fraudstream_decisions", "Decisions made, by decision.", ["decision"], registry=self.registry
        )
        for decision in DECISIONS:
            self._decisions.labels(decision)
        self._alerts = Counter(
            "fraudstream_alerts", "Decisions that raised an alert for analysts.", registry=self.registry
        )
        self._rule_hits = Counter(
            "fraudstream_rule_hits",
            "Transactions a rule matched, by rule code.",
            ["rule"],
            registry=self.registry,
        )
        self.refused = Counter(
            "fraudstream_refused_requests",
            "Requests refused because too many transactions were waiting to be scored (overload).",
            registry=self.registry,
        )
        self.invalid = Counter(
            "fraudstream_invalid_transactions",
            "Transactions refused as invalid (or dead-lettered by a worker).",
            registry=self.registry,
        )
        self.duplicates = Counter(
            "fraudstream_duplicate_transactions",
            "Transactions received again with an id already decided.",
            registry=self.registry,
        )
        self._latency = _BulkHistogram(
            "fraudstream_decision_latency_seconds",
            "Seconds from receiving a transaction to its durable decision (after warm-up).",
            LATENCY_BUCKETS_S,
        )
        self._group_commit = _BulkHistogram(
            "fraudstream_group_commit_seconds",
            "Seconds to score one group of transactions and make its decisions durable (stored or produced).",
            LATENCY_BUCKETS_S,
        )
        self._batch_size = _BulkHistogram(
            "fraudstream_batch_size", "Transactions scored together in one group.", BATCH_SIZE_BUCKETS
        )
        self._score = _BulkHistogram("fraudstream_score", "Risk scores (0-100) of decisions.", SCORE_BUCKETS)
        self.registry.register(_Families(self._families))

    def describe_build(self, describe: Callable[[], Mapping[str, str]]) -> None:
        """``describe()`` says, at each scrape, what decides (``model``, ``rules_version``)."""
        self._describe = describe

    def add_families(self, families: Callable[[], Iterable[Metric]]) -> None:
        """``families()`` adds metrics of its own at each scrape (the sinks' failures and depth)."""
        self._more.append(families)

    def warmed_up(self) -> None:
        """From now on decisions enter the latency histogram."""
        self._timing = True

    def record(
        self,
        decisions: Sequence[str],
        latencies_s: npt.ArrayLike,
        scores: npt.ArrayLike,
        rule_hits: Mapping[str, int],
        alerts: int = 0,
    ) -> None:
        """One group of decisions: their counts, scores, the rules they hit, their latencies, and how
        many raised an alert."""
        for decision, count in zip(*np.unique(np.asarray(decisions, dtype=object), return_counts=True)):
            self._decisions.labels(str(decision)).inc(int(count))
        for rule, hits in rule_hits.items():
            if hits:
                self._rule_hits.labels(rule).inc(hits)
        if alerts:
            self._alerts.inc(alerts)
        self._batch_size.observe([len(decisions)])
        self._score.observe(scores)
        if self._timing:
            self._latency.observe(latencies_s)

    def record_group_commit(self, seconds: float) -> None:
        self._group_commit.observe([seconds])

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format."""
        return generate_latest(self.registry)

    def _families(self) -> Iterator[Metric]:
        yield self._latency.family()
        yield self._group_commit.family()
        yield self._batch_size.family()
        yield self._score.family()
        build = GaugeMetricFamily(
            "fraudstream_build_info",
            "Always 1; the labels say the fraudstream version, champion model and rule-set version deciding.",
            labels=["version", "model", "rules_version"],
        )
        described = self._describe()
        build.add_metric(
            [_package_version(), described.get("model", ""), described.get("rules_version", "")], 1
        )
        yield build
        for more in self._more:
            yield from more()
