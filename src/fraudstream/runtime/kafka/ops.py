"""The worker's operations endpoint: Prometheus `/metrics` and `/healthz` on a small HTTP server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from fraudstream.runtime.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from fraudstream.runtime.kafka.worker import Worker

__all__ = ["serve_operations"]


class _WorkerFamilies(Collector):
    """The worker's own figures, read at each scrape: what it consumed and dead-lettered, labels,
    back-pressure waits, rewinds after lost outputs, lag, checkpoint age, duration and interval."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        counts = self.worker.counts
        for name, key, documentation in _COUNTS:
            yield CounterMetricFamily(name, documentation, value=counts[key])
        yield GaugeMetricFamily(
            "fraudstream_worker_checkpoint_duration_seconds",
            "How long the last round of checkpoints took.",
            value=self.worker.checkpoint_seconds,
        )
        yield GaugeMetricFamily(
            "fraudstream_worker_checkpoint_interval_seconds",
            "Seconds between checkpoints now (stretched when checkpoints are slow).",
            value=self.worker.checkpoint_interval_s,
        )
        lag = GaugeMetricFamily(
            "fraudstream_worker_consumer_lag",
            "Messages behind the partition's high watermark after the last batch.",
            labels=["partition"],
        )
        age = GaugeMetricFamily(
            "fraudstream_worker_checkpoint_age_seconds",
            "Seconds since the partition's last checkpoint.",
            labels=["partition"],
        )
        now = time.monotonic()
        for partition, state in sorted(self.worker.partitions.items()):
            behind = self.worker.lag.get(partition)
            if behind is not None:
                lag.add_metric([str(partition)], behind)
            age.add_metric([str(partition)], now - state.last_checkpoint)
        yield lag
        yield age


#: The worker's counters: metric name (without _total), key in ``Worker.counts``, help.
_COUNTS = (
    ("fraudstream_worker_events", "decisions", "Transactions decided."),
    (
        "fraudstream_worker_transactions",
        "transactions",
        "Kafka transactions committed (a transactional worker).",
    ),
    ("fraudstream_worker_dead_letters", "dead_letters", "Messages sent to the dead-letter topic."),
    ("fraudstream_worker_labels", "labels", "Labels read."),
    ("fraudstream_worker_labels_applied", "labels_applied", "Labels applied to feature state."),
    (
        "fraudstream_worker_backpressure_waits",
        "backpressure_waits",
        "Waits for room in a full producer queue.",
    ),
    ("fraudstream_worker_rewinds", "rewinds", "Rewinds to the last checkpoint after lost outputs."),
    (
        "fraudstream_worker_replayed_quietly",
        "replayed_quietly",
        "Transactions replayed after a restore whose outputs were already produced.",
    ),
)


def serve_operations(worker: Worker, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve `/metrics` and `/healthz` from a daemon thread; returns the server (``shutdown()`` it)."""
    # /metrics: the server's metrics under the same names (decisions, latency, group commit, batch
    # size, scores, build, process), and the worker's own.
    worker.metrics.registry.register(_WorkerFamilies(worker))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, status, kind = worker.metrics.exposition(), 200, CONTENT_TYPE
            elif self.path == "/healthz":
                healthy = worker.healthy()
                body = orjson.dumps(
                    {
                        "status": "healthy" if healthy else "unhealthy",
                        "model": worker.model_version,
                        "rules_version": worker.rules.version,
                    }
                )
                status, kind = (200 if healthy else 503), "application/json"
            else:
                body, status, kind = b'{"error": "not found"}', 404, "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # requests are not logged: scrapes every few seconds would drown the worker's log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="fraudstream-ops").start()
    return server
