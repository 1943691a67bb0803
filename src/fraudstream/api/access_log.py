"""The optional access log (FRAUDSTREAM_ACCESS_LOG): one line per request; never a key, not even `?key=`."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudstream.access import CALLER

__all__ = ["CALLER", "AccessLog", "redacted_query"]

log = structlog.get_logger("fraudstream.access")

#: Query parameters whose values are secrets (the alert socket takes its key as `?key=`).
_SECRET_PARAMETERS = frozenset({"key", "api_key", "apikey", "token", "access_token"})


def redacted_query(query_string: bytes) -> str:
    """The query string with the values of secret parameters replaced by ``****``.

    >>> redacted_query(b"key=fs_abc&limit=5")
    'key=****&limit=5'
    """
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return urlencode([(k, "****" if k.lower() in _SECRET_PARAMETERS else v) for k, v in pairs], safe="*")


class AccessLog:
    """Logs method, path (query redacted), status, duration and the caller's name of every request and
    WebSocket; headers and bodies are never logged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def noting_status(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status is None:
                status = 403  # closed before the handshake was accepted: the server answers 403
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            client = scope.get("client")
            log.info(
                "request",
                method=scope["method"] if scope["type"] == "http" else "WEBSOCKET",
                path=scope["path"],
                query=redacted_query(scope.get("query_string", b"")) or None,
                status=status if status is not None else 500,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                caller=scope.get(CALLER),
                client=client[0] if client else None,
            )
