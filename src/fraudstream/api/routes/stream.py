"""Live alerts: WebSocket /v1/stream/alerts for the dashboard, Server-Sent Events for curl users."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.websockets import WebSocketState

from fraudstream.api import examples
from fraudstream.api.deps import Caller, identify, may, require, service
from fraudstream.api.openapi import KEYED, errors
from fraudstream.runtime.embedded import ScoringService
from fraudstream.runtime.embedded.alerts import AlertStreamFullError, Subscription

router = APIRouter(tags=["stream"])

#: One alert event's data, as sent.
_ALERT = (
    '{"transaction_id":"txn_fraud_005","user_id":"user-9","amount":75000.0,"score":96,"decision":"decline",'
    '"reasons":[{"code":"huge_amount","text":"Amount 75,000.00 is over 50,000","contribution":90.0,'
    '"kind":"rule"},{"code":"large_amount","text":"Amount 75,000.00 is over 10,000","contribution":60.0,'
    '"kind":"rule"}],"status":"open","assignee":null,"verdict":null,"note":null,'
    '"created_at_ms":1796673628794,"updated_at_ms":1796673628794,"type":"fraud_alert"}'
)
#: A comment line this often keeps proxies from closing a quiet stream.
_KEEP_ALIVE_SECONDS = 15.0
#: WebSocket close code 1013 "Try Again Later": the subscriber limit is reached, or it fell behind.
_TRY_AGAIN_LATER = 1013
#: When a refused Server-Sent Events client should try again.
_RETRY_AFTER_SECONDS = 10


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
    try:
        subscription = svc.alerts.join()
    except AlertStreamFullError as full:
        await websocket.close(code=_TRY_AGAIN_LATER, reason=str(full))
        return
    try:
        await websocket.send_text(
            orjson.dumps({"type": "hello", "message": "connected to fraudstream alerts"}).decode()
        )
        await _send_alerts_until_closed(websocket, subscription)
    except* WebSocketDisconnect:
        pass  # the client left while an alert was on its way: nothing more to send
    finally:
        svc.alerts.leave(subscription)


async def _send_alerts_until_closed(websocket: WebSocket, subscription: Subscription) -> None:
    """Forward alerts until the client goes away or the hub drops it, whichever comes first.

    The client is listened to while no alert comes: a close frame or a dropped connection ends the
    subscription at once, not when the next alert finds the socket closed.
    """
    async with asyncio.TaskGroup() as group:
        steps = [
            group.create_task(_until_disconnected(websocket)),
            group.create_task(_forward(websocket, subscription)),
            # A send may wait on a client that stopped reading; the hub's verdict must not wait on it.
            group.create_task(_until_dropped(subscription)),
        ]

        def stop_the_others(_: asyncio.Task[None]) -> None:
            for step in steps:
                step.cancel()  # a finished step ignores it

        for step in steps:
            step.add_done_callback(stop_the_others)
    if websocket.client_state == WebSocketState.CONNECTED:  # dropped for falling behind: told to go
        await websocket.close(code=_TRY_AGAIN_LATER, reason="too slow for the alert stream; reconnect")


async def _until_disconnected(websocket: WebSocket) -> None:
    # The stream is one-way; whatever the client sends is read only to notice when it leaves.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _until_dropped(subscription: Subscription) -> None:
    await subscription.dropped.wait()


async def _forward(websocket: WebSocket, subscription: Subscription) -> None:
    while (alert := await subscription.next_alert()) is not None:
        await websocket.send_text(orjson.dumps(alert).decode())


def _event_stream(svc: ScoringService) -> Response:
    try:
        svc.alerts.check_capacity()
    except AlertStreamFullError as full:
        return JSONResponse(
            {"error": "too_many_subscribers", "detail": str(full)},
            503,
            headers={"retry-after": str(_RETRY_AFTER_SECONDS)},
        )
    # no-cache and no proxy buffering: each alert must reach the client when it happens.
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(_alert_events(svc), media_type="text/event-stream", headers=headers)


async def _alert_events(svc: ScoringService) -> AsyncIterator[bytes]:
    # Joined here, not in the route: only a generator that has started can be sure to leave.
    try:
        subscription = svc.alerts.join()
    except AlertStreamFullError as full:  # the last places went between the route's check and here
        yield b"event: closed\ndata: " + str(full).encode() + b"\n\n"
        return
    # Starlette cancels this generator when the client disconnects; `finally` then unsubscribes.
    try:
        yield b": connected to fraudstream alerts\n\n"
        while True:
            try:
                alert = await asyncio.wait_for(subscription.next_alert(), _KEEP_ALIVE_SECONDS)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if alert is None:  # too slow to keep up: end the stream so the client reconnects
                yield b"event: closed\ndata: too slow for the alert stream; reconnect\n\n"
                return
            yield b"event: alert\ndata: " + orjson.dumps(alert) + b"\n\n"
    finally:
        svc.alerts.leave(subscription)


#: The answer of a stream: events as they happen (here the start, and one alert).
_EVENTS: dict[str, Any] = {
    "description": "Server-Sent Events: one `alert` event per new alert, a comment every 15 s",
    "content": {
        "text/event-stream": {
            "schema": {"type": "string"},
            "example": ": connected to fraudstream alerts\n\nevent: alert\ndata: " + _ALERT + "\n\n",
        }
    },
}
_TOO_MANY: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "As many streams are open as the server allows; try again after Retry-After",
        "content": {
            "application/json": {
                "example": {
                    "error": "too_many_subscribers",
                    "detail": "too many live alert subscribers (256); try later",
                }
            }
        },
    }
}


@router.get(
    "/v1/stream/alerts.sse",
    operation_id="streamAlerts",
    response_class=Response,  # not JSON: the events, documented below
    summary="Live alerts as Server-Sent Events (curl -N)",
    responses={200: _EVENTS, **errors(*KEYED), **_TOO_MANY},
)
async def alerts_events(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> Response:
    return _event_stream(svc)


@router.get("/v1/stream/alerts/sse", include_in_schema=False)
async def alerts_events_old_path(
    svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> Response:
    return _event_stream(svc)


@router.get(
    "/v1/stream/alerts",
    operation_id="streamAlertsNegotiated",
    summary="Live alerts as Server-Sent Events when asked with Accept: text/event-stream",
    response_class=Response,  # not JSON: the events, documented below
    responses={
        200: _EVENTS,
        406: {
            "description": "Asked without Accept: text/event-stream (and not as a WebSocket)",
            "content": {"application/json": {"example": examples.NOT_ACCEPTABLE}},
        },
        **errors(*KEYED),
        **_TOO_MANY,
    },
)
async def alerts_negotiated(
    request: Request, svc: ScoringService = Depends(service), _: Caller = Depends(require("read"))
) -> Response:
    if "text/event-stream" in request.headers.get("accept", ""):
        return _event_stream(svc)
    detail = (
        "this path streams alerts over a WebSocket, or as Server-Sent Events with "
        "'Accept: text/event-stream'; for curl use: curl -N <host>/v1/stream/alerts.sse"
    )
    return JSONResponse({"error": "not_acceptable", "detail": detail}, 406)
