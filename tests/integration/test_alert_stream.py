"""Live alert subscribers end with their connection, against a real server: closed or dropped sockets
and streams leave none behind, their number has a ceiling, and a reader that stops reading is let go."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from fraudstream.api import create_app
from fraudstream.config import Settings
from fraudstream.runtime.embedded import ScoringService
from fraudstream.runtime.embedded.alerts import MAX_SUBSCRIBERS
from servers import serving_in_thread

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class LiveServer:
    url: str
    socket_url: str
    service: ScoringService

    def subscribers(self) -> int:
        count: int = httpx.get(f"{self.url}/readyz", timeout=5).json()["alert_subscribers"]
        return count

    def subscribers_settle_at(self, expected: int, within_s: float = 5.0) -> int:
        """The subscriber count once it reaches `expected`, or the last one seen at the deadline."""
        deadline = time.monotonic() + within_s
        while (count := self.subscribers()) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return count


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    app = create_app(Settings(demo=True, data_dir=tmp_path, batch_wait_ms=1.0))
    with serving_in_thread(app) as port:
        yield LiveServer(
            f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/v1/stream/alerts", app.state.service
        )


def open_socket(live: LiveServer, **options: Any) -> Any:
    # proxy=None: a proxy in the environment must not stand between the test and the loopback server.
    return connect(live.socket_url, proxy=None, open_timeout=10, **options)


async def greeted(socket_: ClientConnection) -> ClientConnection:
    assert '"hello"' in str(await asyncio.wait_for(socket_.recv(), 10))
    return socket_


def test_closed_websockets_leave_no_subscriber_behind_while_no_alert_is_sent(live: LiveServer) -> None:
    async def cycles() -> None:
        for _ in range(200):
            async with open_socket(live) as socket_:
                await greeted(socket_)

    asyncio.run(cycles())
    assert live.subscribers_settle_at(0) == 0


def test_a_websocket_dropped_without_a_close_frame_is_unsubscribed(live: LiveServer) -> None:
    async def open_then_drop() -> None:
        sockets = [await greeted(await open_socket(live)) for _ in range(20)]
        assert live.subscribers() == 20
        for socket_ in sockets:
            socket_.transport.abort()  # the TCP connection ends; no close frame is ever sent

    asyncio.run(open_then_drop())
    assert live.subscribers_settle_at(0) == 0


def test_server_sent_event_clients_that_leave_are_unsubscribed(live: LiveServer) -> None:
    for _ in range(50):
        with httpx.stream("GET", f"{live.url}/v1/stream/alerts.sse", timeout=10) as stream:
            assert next(stream.iter_lines()).startswith(": connected")
    assert live.subscribers_settle_at(0) == 0


def test_subscribers_beyond_the_limit_are_refused_until_one_leaves(live: LiveServer) -> None:
    async def scenario() -> None:
        sockets = [await greeted(await open_socket(live)) for _ in range(MAX_SUBSCRIBERS)]
        async with open_socket(live) as refused:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(refused.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        assert closed.value.rcvd.reason == f"too many live alert subscribers ({MAX_SUBSCRIBERS}); try later"
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(f"{live.url}/v1/stream/alerts.sse")
        assert answer.status_code == 503
        assert int(answer.headers["retry-after"]) > 0
        assert answer.json()["error"] == "too_many_subscribers"
        assert live.subscribers() == MAX_SUBSCRIBERS

        await sockets.pop().close()
        assert live.subscribers_settle_at(MAX_SUBSCRIBERS - 1) == MAX_SUBSCRIBERS - 1
        sockets.append(await greeted(await open_socket(live)))
        for socket_ in sockets:
            await socket_.close()

    asyncio.run(scenario())
    assert live.subscribers_settle_at(0) == 0


def test_a_websocket_that_stops_reading_is_dropped_not_buffered(live: LiveServer) -> None:
    padding = "x" * 4000

    async def scenario() -> tuple[int, int | None, int]:
        # No compression and a one-message client queue: the server's sends back up quickly.
        async with open_socket(live, compression=None, max_queue=1) as reader:
            await greeted(reader)
            published = 0
            deadline = time.monotonic() + 30
            while live.subscribers() > 0:
                assert time.monotonic() < deadline, "a reader that stopped reading was never dropped"
                batch = [{"type": "fraud_alert", "n": published + i, "padding": padding} for i in range(100)]
                live.service.alerts.publish_threadsafe(batch)
                published += len(batch)
                await asyncio.sleep(0.01)
            received = 0
            code = None
            try:
                while True:
                    await asyncio.wait_for(reader.recv(), 10)
                    received += 1
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
            return published, code, received

    published, code, received = asyncio.run(scenario())
    assert code == 1013
    assert received < published
