"""Alerts onto a Redis list (capped) and channel, for programs that read alerts from Redis."""

from __future__ import annotations

import orjson
import redis

from fraudstream.sinks.base import LogBatch

__all__ = ["RedisAlerts"]


class RedisAlerts:
    """Every alert pushed (LPUSH, newest first) onto ``list_name``, trimmed to the newest ``keep``, and
    published on ``channel``, as the JSON the WebSocket sends; one pipelined round trip per batch.

    After a failure, or a crash of the server, the runner hands alerts over again from the last saved
    position, so a reader may see an alert twice (each carries its ``transaction_id``); none is lost."""

    name = "redis"
    alerts_only = True
    #: After a crash, up to a second of alerts may be pushed again (each carries its transaction id).
    save_every_s = 1.0

    def __init__(self, url: str, *, list_name: str, channel: str, keep: int, timeout_s: float = 2.0) -> None:
        self.list_name = list_name
        self.channel = channel
        self.keep = keep
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30
        )

    def active(self) -> bool:
        return True

    def deliver(self, batch: LogBatch) -> int | None:
        alerts = [orjson.dumps(alert) for alert in batch.alerts()]
        if alerts:
            pipeline = self.client.pipeline(transaction=False)
            pipeline.lpush(self.list_name, *alerts)
            pipeline.ltrim(self.list_name, 0, self.keep - 1)
            for alert in alerts:
                pipeline.publish(self.channel, alert)
            pipeline.execute()
        return batch.last_seq

    def flush(self, final: bool) -> int | None:
        return None

    def reset(self) -> None:
        return None

    def close(self) -> None:
        self.client.close()
