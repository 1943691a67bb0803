"""Live alerts fan-out: every subscriber (WebSocket, SSE) gets each new alert; slow ones are dropped."""

from __future__ import annotations

import asyncio
from typing import Any

from fraudstream.errors import FraudstreamError

__all__ = ["MAX_SUBSCRIBERS", "QUEUE_SIZE", "AlertHub", "AlertStreamFullError", "Subscription"]

#: Live subscribers at most: each holds a connection and a queue, so their number must have a ceiling.
MAX_SUBSCRIBERS = 256
#: Alerts one subscriber may have waiting; one that falls this far behind is dropped, not buffered.
QUEUE_SIZE = 1000


class AlertStreamFullError(FraudstreamError):
    """Every live-alert slot is taken; the client should try again later."""


class Subscription:
    """One subscriber: its bounded queue of alerts, and whether the hub let it go for falling behind."""

    def __init__(self, queue_size: int) -> None:
        self._alerts: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(queue_size)
        #: Set when the hub drops this subscriber; a handler blocked on a slow client watches it.
        self.dropped = asyncio.Event()

    async def next_alert(self) -> dict[str, Any] | None:
        """The next alert, or None once the hub has dropped this subscriber (it should reconnect)."""
        return await self._alerts.get()

    def offer(self, alert: dict[str, Any]) -> bool:
        """Queue an alert without waiting; False when the queue is full."""
        try:
            self._alerts.put_nowait(alert)
        except asyncio.QueueFull:
            return False
        return True

    def drop(self) -> None:
        """Forget every waiting alert and leave only the end of the stream."""
        while not self._alerts.empty():
            self._alerts.get_nowait()
        self._alerts.put_nowait(None)
        self.dropped.set()


class AlertHub:
    """In-process publish/subscribe that never blocks scoring: a subscriber whose queue is full is dropped.

    >>> hub = AlertHub(queue_size=2, max_subscribers=1)
    >>> first = hub.join()
    >>> hub.join()
    Traceback (most recent call last):
    ...
    fraudstream.runtime.embedded.alerts.AlertStreamFullError: too many live alert subscribers (1); try later
    >>> hub.leave(first)
    >>> hub.subscribers
    0
    """

    def __init__(self, queue_size: int = QUEUE_SIZE, max_subscribers: int = MAX_SUBSCRIBERS) -> None:
        self._subscribers: set[Subscription] = set()
        self._queue_size = queue_size
        self._max_subscribers = max_subscribers
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def check_capacity(self) -> None:
        """Raise AlertStreamFullError when no new subscriber may join now."""
        if len(self._subscribers) >= self._max_subscribers:
            limit = self._max_subscribers
            raise AlertStreamFullError(f"too many live alert subscribers ({limit}); try later")

    def join(self) -> Subscription:
        """A new subscription; the caller must `leave` it however its connection ends."""
        self.check_capacity()
        subscription = Subscription(self._queue_size)
        self._subscribers.add(subscription)
        return subscription

    def leave(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish_threadsafe(self, alerts: list[dict[str, Any]]) -> None:
        """Hand alerts over from the scoring thread to the event loop."""
        if alerts and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.publish, alerts)

    def publish(self, alerts: list[dict[str, Any]]) -> None:
        for subscription in list(self._subscribers):
            if not all(subscription.offer(alert) for alert in alerts):
                # A subscriber that cannot keep up loses its stream rather than slowing scoring or
                # holding alerts without end; its handler closes the connection and the client reconnects.
                self._subscribers.discard(subscription)
                subscription.drop()
