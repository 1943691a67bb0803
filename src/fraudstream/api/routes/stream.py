"""Live alerts: WebSocket /v1/stream/alerts for the dashboard, Server-Sent Events for curl users."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from fraudstream.api.deps import Caller, require, service
from fraudstream.runtime.embedded import ScoringService

router = APIRouter(tags=["stream"])


@router.websocket("/v1/stream/alerts")
async def alerts_socket(websocket: WebSocket) -> None:
    svc: ScoringService = websocket.app.state.service
    if svc.settings.keys_required:
        key = websocket.query_params.get("key") or websocket.headers.get("x-api-key")
        if key is None or svc.store.authenticate(key) is None:
            await websocket.close(code=4401, reason="an API key is required (?key=...)")
            return
    await websocket.accept()
    async with svc.alerts.subscribe() as queue:
        await websocket.send_text(
            orjson.dumps({"type": "hello", "message": "connected to fraudstream alerts"}).decode()
        )
        try:
            while True:
                alert = await queue.get()
                await websocket.send_text(orjson.dumps(alert).decode())
        except (WebSocketDisconnect, RuntimeError):
            return


@router.get("/v1/stream/alerts/sse", summary="Live alerts as Server-Sent Events (curl -N)")
async def alerts_events(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        async with svc.alerts.subscribe() as queue:
            yield b": connected to fraudstream alerts\n\n"
            while True:
                try:
                    alert = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield b"event: alert\ndata: " + orjson.dumps(alert) + b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
