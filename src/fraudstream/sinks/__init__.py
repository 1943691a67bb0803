"""Outputs behind the database: a data lake, Redis alerts, webhooks and Kafka topics, fed from the
stored log.

Both runtimes write decisions to the database (the embedded server as it scores, ``serve --kafka`` as
it stores what the workers decided); :class:`Sinks` then hands the stored log to each configured sink
from its own cursor. See :mod:`fraudstream.sinks.base` for the contract.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from fraudstream.sinks.base import LogBatch, Sink
from fraudstream.sinks.runner import Handoff, SinkRunner
from fraudstream.storage import Store

if TYPE_CHECKING:
    from fraudstream.config import Settings

__all__ = ["LogBatch", "Sink", "SinkRunner", "Sinks", "configured_sinks"]


def configured_sinks(settings: Settings, store: Store) -> list[Sink]:
    """The sinks ``settings`` ask for: the data lake (``lake_url``), Redis (``redis_url``), and webhooks
    (registered through the API). The embedded server adds the Kafka topics (``kafka_outputs``)."""
    sinks: list[Sink] = []
    if settings.lake_url:
        from fraudstream.sinks.lake import LakeSink

        sinks.append(LakeSink.from_settings(settings))
    if settings.redis_url is not None:
        from fraudstream.sinks.redis_alerts import RedisAlerts

        sinks.append(
            RedisAlerts(
                settings.redis_url.get_secret_value(),
                list_name=settings.redis_alerts_list,
                channel=settings.redis_alerts_channel,
                keep=settings.redis_list_max,
            )
        )
    from fraudstream.sinks.webhooks import WebhookSink

    # Always there: it reads the log only while a webhook exists (``WebhookSink.active``).
    sinks.append(WebhookSink.from_settings(settings, store))
    return sinks


class Sinks:
    """The running sinks of one server: started with it, woken after each write, stopped with it."""

    def __init__(self, sinks: list[Sink], store: Store) -> None:
        self.runners = [SinkRunner(sink, store) for sink in sinks]

    def sink(self, name: str) -> Sink | None:
        """The sink called ``name``, if it runs here."""
        return next((runner.sink for runner in self.runners if runner.sink.name == name), None)

    def start(self) -> None:
        for runner in self.runners:
            runner.start()

    def notify(self) -> None:
        """The log grew (rows stored by another path than ``stored``): look now."""
        for runner in self.runners:
            runner.notify()

    @property
    def taking_rows(self) -> bool:
        """Whether a sink takes rows now: else the scorer needs no log positions and hands nothing over
        in memory (a sink that starts taking reads what it missed from the log)."""
        return any(runner.taking for runner in self.runners)

    def stored(
        self,
        written: tuple[int, int] | None,
        transaction_rows: Sequence[Mapping[str, Any]],
        decision_rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """Rows the scorer has just stored at positions ``written`` (None: unknown, read the log; while
        no sink takes rows, nobody is woken: they look at the log on their idle tick)."""
        if written is None:
            if self.taking_rows:
                self.notify()
            return
        handoff = Handoff(written[0], written[1], transaction_rows, decision_rows)
        for runner in self.runners:
            runner.hand_off(handoff)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Every sink hands over what it can and flushes, in parallel, within ``timeout_s`` in all."""
        deadline = time.monotonic() + timeout_s
        for runner in self.runners:
            runner.stop_soon()
        for runner in self.runners:
            runner.stop(max(0.0, deadline - time.monotonic()))

    def health(self) -> dict[str, dict[str, Any]]:
        """Each sink's state for /readyz: ok or failing, how far behind, the error."""
        return {runner.sink.name: runner.current_state().as_dict() for runner in self.runners}

    @property
    def failing(self) -> list[str]:
        return [runner.sink.name for runner in self.runners if runner.current_state().failing]

    def families(self) -> Iterator[Metric]:
        """Sink failures and outbox depth, for /metrics."""
        failures = CounterMetricFamily(
            "fraudstream_sink_failures", "Failed hand-overs to a sink (each retried later).", labels=["sink"]
        )
        depth = GaugeMetricFamily(
            "fraudstream_sink_outbox_depth",
            "Stored transactions a sink has not durably taken yet (it catches up from the log).",
            labels=["sink"],
        )
        up = GaugeMetricFamily(
            "fraudstream_sink_up", "1 while a sink works, 0 while it fails.", labels=["sink"]
        )
        for runner in self.runners:
            state = runner.current_state()
            failures.add_metric([state.name], state.failures)
            depth.add_metric([state.name], state.behind)
            up.add_metric([state.name], 0 if state.failing else 1)
        yield failures
        yield depth
        yield up
