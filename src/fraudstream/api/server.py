"""The HTTP server around the app: uvicorn, with time limits on slow clients and a bound on connections."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from fraudstream.api.app import SHUTDOWN_GRACE_S
from fraudstream.config import Settings

__all__ = ["BODY_TIMEOUT_S", "HEAD_TIMEOUT_S", "TimelyHttp", "server_config"]

#: From connecting (or from a request's first byte) to the end of its headers.
HEAD_TIMEOUT_S = 10.0
#: From the end of a request's headers to the end of its body.
BODY_TIMEOUT_S = 30.0


class TimelyHttp(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 connection, closed when a request's head or body does not arrive in time.

    uvicorn times out only idle keep-alive connections: a client that sends a header line every few
    seconds, or a body a byte at a time, holds its connection (and a slot of ``limit_concurrency``)
    for as long as it likes, and a thousand of them starve everyone else.
    """

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._allow(HEAD_TIMEOUT_S)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._allow(HEAD_TIMEOUT_S)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._allow(BODY_TIMEOUT_S)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._cancel()

    def handle_websocket_upgrade(self) -> None:
        self._cancel()  # the connection is the WebSocket's from here, with its own pings
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _allow(self, seconds: float) -> None:
        self._cancel()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def server_config(app: Any, settings: Settings) -> uvicorn.Config:
    """How `serve` and `demo` run ``app``: quiet (a log line per request costs more than scoring it),
    slow clients cut off, at most ``max_connections`` connections (503 beyond), a short graceful stop."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=TimelyHttp,
        limit_concurrency=settings.max_connections,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
