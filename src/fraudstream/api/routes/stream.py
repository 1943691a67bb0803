"""Live alerts: WebSocket /v1/stream/alerts for the dashboard, Server-Sent Events for curl users."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, StreamingResponse

from fraudstream.api.deps import Caller, identify, may, require, service
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(tags=["stream"])

#: A comment line this often keeps proxies from closing a quiet stream.
_KEEP_ALIVE_SECONDS = 15.0


@router.websocket("/v1/stream/alerts")
async def alerts_socket(websocket: WebSocket) -> None:
    """Every new alert as one JSON text message, after a first `{"type": "hello"}`.

    Outside demo mode the key goes in `?key=`, `X-API-Key` or `Authorization: Bearer`
    (browsers cannot set headers on a WebSocket, hence the query parameter).
    """
    svc: ScoringService = websocket.app.state.service
    caller = await identify(svc, websocket, websocket.query_params.get("key"))
    if caller is None:
        await websocket.close(code=4401, reason="a valid API key is required (?key=...)")
        return
    if not may(caller.role, "read"):
        await websocket.close(code=4403, reason=f"the role {caller.role!r} may not read alerts")
        return
    await websocket.accept()
    async with svc.alerts.subscribe() as queue:
        await websocket.send_text(
            orjson.dumps({"type": "hello", "message": "connected to fraudstream alerts"}).decode()
        )
        try:
            while True:
                alert = await queue.get()
                if alert is None:  # too slow to keep up: told to go, so it can reconnect
                    await websocket.close(code=1013, reason="too slow for the alert stream; reconnect")
                    return
                await websocket.send_text(orjson.dumps(alert).decode())
        except (WebSocketDisconnect, RuntimeError):
            return


def _event_stream(svc: ScoringService) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        async with svc.alerts.subscribe() as queue:
            yield b": connected to fraudstream alerts\n\n"
            while True:
                try:
                    alert = await asyncio.wait_for(queue.get(), timeout=_KEEP_ALIVE_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if alert is None:  # too slow to keep up: end the stream so the client reconnects
                    yield b"event: closed\ndata: too slow for the alert stream; reconnect\n\n"
                    return
                yield b"event: alert\ndata: " + orjson.dumps(alert) + b"\n\n"

    # no-cache and no proxy buffering: each alert must reach the client when it happens.
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@router.get("/v1/stream/alerts.sse", summary="Live alerts as Server-Sent Events (curl -N)")
async def alerts_events(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> StreamingResponse:
    return _event_stream(svc)


@router.get("/v1/stream/alerts/sse", include_in_schema=False)
async def alerts_events_old_path(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> StreamingResponse:
    return _event_stream(svc)


@router.get(
    "/v1/stream/alerts",
    summary="Live alerts as Server-Sent Events when asked with Accept: text/event-stream",
    response_model=None,
)
async def alerts_negotiated(
    request: Request, svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> StreamingResponse | JSONResponse:
    if "text/event-stream" in request.headers.get("accept", ""):
        return _event_stream(svc)
    detail = (
        "this path streams alerts over a WebSocket, or as Server-Sent Events with "
        "'Accept: text/event-stream'; for curl use: curl -N <host>/v1/stream/alerts.sse"
    )
    return JSONResponse({"error": "not_acceptable", "detail": detail}, 406)
