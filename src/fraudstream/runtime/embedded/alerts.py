"""Live alerts fan-out: every subscriber (WebSocket, SSE) gets each new alert; slow ones are dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

__all__ = ["AlertHub", "alert_event"]


class AlertHub:
    """In-process publish/subscribe that never blocks scoring: a full subscriber queue is dropped."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._queue_size = queue_size
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish_threadsafe(self, alerts: list[dict[str, Any]]) -> None:
        """Hand alerts over from the scoring thread to the event loop."""
        if alerts and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.publish, alerts)

    def publish(self, alerts: list[dict[str, Any]]) -> None:
        for queue in list(self._subscribers):
            for alert in alerts:
                try:
                    queue.put_nowait(alert)
                except asyncio.QueueFull:
                    # A subscriber that cannot keep up loses its stream rather than slowing scoring;
                    # its queue is emptied and ends with None, so its handler closes and it reconnects.
                    self._subscribers.discard(queue)
                    while not queue.empty():
                        queue.get_nowait()
                    queue.put_nowait(None)
                    break

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any] | None]]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)


def alert_event(row: dict[str, Any]) -> dict[str, Any]:
    """What live subscribers receive for a stored alert row."""
    return {**row, "reasons": orjson.loads(row["reasons"]), "type": "fraud_alert"}
