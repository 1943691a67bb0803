"""The worker's operations endpoint: Prometheus `/metrics` and `/healthz` on a small HTTP server."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from fraudstream.runtime.kafka.worker import Worker

__all__ = ["serve_operations"]


def render_metrics(worker: Worker) -> str:
    """Lag per partition, batch size, events/s, scoring latency, dead letters, labels read and
    applied, back-pressure waits (a full producer queue), rewinds after lost outputs, checkpoint age,
    duration and interval."""
    now = time.monotonic()
    stats = worker.stats
    lines = [
        "# TYPE fraudstream_worker_events_total counter",
        f"fraudstream_worker_events_total {worker.counts['decisions']}",
        "# TYPE fraudstream_worker_dead_letters_total counter",
        f"fraudstream_worker_dead_letters_total {worker.counts['dead_letters']}",
        "# TYPE fraudstream_worker_labels_total counter",
        f"fraudstream_worker_labels_total {worker.counts['labels']}",
        "# TYPE fraudstream_worker_labels_applied_total counter",
        f"fraudstream_worker_labels_applied_total {worker.counts['labels_applied']}",
        "# TYPE fraudstream_worker_backpressure_waits_total counter",
        f"fraudstream_worker_backpressure_waits_total {worker.counts['backpressure_waits']}",
        "# TYPE fraudstream_worker_rewinds_total counter",
        f"fraudstream_worker_rewinds_total {worker.counts['rewinds']}",
        "# TYPE fraudstream_worker_transactions_total counter",
        f"fraudstream_worker_transactions_total {worker.counts['transactions']}",
        "# TYPE fraudstream_worker_replayed_quietly_total counter",
        f"fraudstream_worker_replayed_quietly_total {worker.counts['replayed_quietly']}",
        "# TYPE fraudstream_worker_events_per_second gauge",
        f"fraudstream_worker_events_per_second {stats.get('events_per_second', 0.0):.1f}",
        "# TYPE fraudstream_worker_batch_size gauge",
        f"fraudstream_worker_batch_size {stats.get('batch_size', 0)}",
        "# TYPE fraudstream_worker_scoring_latency_ms gauge",
        f"fraudstream_worker_scoring_latency_ms {stats.get('scoring_ms', 0.0):.3f}",
        "# TYPE fraudstream_worker_checkpoint_duration_seconds gauge",
        f"fraudstream_worker_checkpoint_duration_seconds {worker.checkpoint_seconds:.3f}",
        "# TYPE fraudstream_worker_checkpoint_interval_seconds gauge",
        f"fraudstream_worker_checkpoint_interval_seconds {worker.checkpoint_interval_s:.1f}",
        "# TYPE fraudstream_worker_consumer_lag gauge",
        "# TYPE fraudstream_worker_checkpoint_age_seconds gauge",
    ]
    # What decides: an operator checks that every worker took the promoted model and the rules.
    lines += [
        "# TYPE fraudstream_worker_deciding_with gauge",
        f'fraudstream_worker_deciding_with{{model="{worker.model_version or ""}",'
        f'rules_version="{worker.rules.version}"}} 1',
    ]
    for partition, state in sorted(worker.partitions.items()):
        lag = worker.lag.get(partition)
        if lag is not None:
            lines.append(f'fraudstream_worker_consumer_lag{{partition="{partition}"}} {lag}')
        age = now - state.last_checkpoint
        lines.append(f'fraudstream_worker_checkpoint_age_seconds{{partition="{partition}"}} {age:.1f}')
    return "\n".join(lines) + "\n"


def serve_operations(worker: Worker, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve `/metrics` and `/healthz` from a daemon thread; returns the server (``shutdown()`` it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, status, kind = render_metrics(worker).encode(), 200, "text/plain; version=0.0.4"
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
