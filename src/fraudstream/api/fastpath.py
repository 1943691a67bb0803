"""The hot route without the framework's per-request machinery.

`POST /v1/transactions` with one JSON object from a caller allowed to submit is most of a busy server's
traffic. This middleware answers it directly: no routing table, no dependency solving, no exception
middleware — per request that machinery costs more than the request's share of scoring. Anything else
(lists, malformed JSON, a missing or wrong key, every other route) passes to the full application with
the body it already read, so every error answer comes from one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudstream.api.deps import identify, may
from fraudstream.errors import OverloadError, SinkError

if TYPE_CHECKING:
    from fraudstream.runtime.embedded import ScoringService

__all__ = ["FastScore"]

_PATH = "/v1/transactions"
_JSON = [(b"content-type", b"application/json")]


class FastScore:
    """Sits outside the whole middleware stack (`create_app` puts it there), so it keeps to the body
    limit itself: a body over ``limit`` goes to the full application, whose `BodyLimit` refuses it."""

    def __init__(self, app: ASGIApp, service: ScoringService, limit: int) -> None:
        self.app = app
        self.service = service
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != _PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        refusal = self.service.overloaded()
        if refusal is not None:  # refused before its body is read: overload must cost little
            self.service.metrics.refused += 1
            from fraudstream.api.errors import overloaded

            await _answer(send, *overloaded(refusal))
            return
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if size > self.limit or not more:
                break
        body = b"".join(chunks)
        record = None if size > self.limit else _object(body)
        if record is None or not await self._may_submit(scope):
            await self.app(scope, _replay(body, receive, more), send)
            return
        from fraudstream.api.errors import internal_error, overloaded, storage_unavailable
        from fraudstream.api.routes.transactions import outcome_response

        extra: dict[str, str] = {}
        try:
            (outcome,) = await self.service.score([record])
            status, answer = outcome_response(outcome)
        except OverloadError as exc:
            status, answer, extra = overloaded(exc)
        except SinkError as exc:
            status, answer = storage_unavailable(exc)
        except Exception as exc:  # answered here as the full application would: JSON, with an error id
            status, answer = internal_error(exc)
        await _answer(send, status, answer, extra)

    async def _may_submit(self, scope: Scope) -> bool:
        caller = await identify(self.service, HTTPConnection(scope))
        return caller is not None and may(caller.role, "ingest")


async def _answer(send: Send, status: int, answer: dict[str, Any], extra: dict[str, str]) -> None:
    payload = orjson.dumps(answer)
    headers = [*_JSON, (b"content-length", str(len(payload)).encode())]
    headers += [(name.encode(), value.encode()) for name, value in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _object(body: bytes) -> dict[str, object] | None:
    """The body as a JSON object, or None for anything the full application should answer."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _replay(body: bytes, receive: Receive, more: bool) -> Receive:
    """A receive channel that gives the already-read body once, then the client's later messages
    (the rest of the body when ``more``)."""
    given = False

    async def again() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return again
