"""The HTTP API at its edges: any JSON body on any write route is a 4xx at worst, never a 500 or a
partial write; alerts stream to curl users over Server-Sent Events; keys guard the WebSocket."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

from fraudstream.api import create_app
from fraudstream.config import Settings
from fraudstream.errors import SinkError
from fraudstream.runtime.embedded import ScoringService
from servers import serving_in_thread

pytestmark = pytest.mark.integration


def demo_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"demo": True, "data_dir": data_dir, "batch_wait_ms": 1.0}
    values.update(overrides)
    return Settings(**values)


def stored(data_dir: Path, table: str = "transactions") -> int:
    with sqlite3.connect(data_dir / "fraudstream.db") as connection:
        count: int = connection.execute(f"select count(*) from {table}").fetchone()[0]
    return count


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("edges")


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[TestClient]:
    # raise_server_exceptions=False: a server error must show up as the 500 a client would see.
    with TestClient(create_app(demo_settings(data_dir)), raise_server_exceptions=False) as test_client:
        yield test_client


def post_json(client: TestClient, path: str, body: Any) -> httpx.Response:
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


# Arbitrary JSON, and transaction-shaped objects whose fields hold arbitrary JSON.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
any_json = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["transaction_id", "user_id", "amount", "currency", "timestamp", "location", "lat", "lon", "country",
     "card_number", "channel", "ip", "merchant_id", "device_id", "userId", "transactionId", "label_time",
     "is_fraud"]
)  # fmt: skip
shaped = st.dictionaries(field_names, any_json, max_size=8)
bodies = any_json | shaped | st.lists(shaped, max_size=3)
write_routes = st.sampled_from(
    ["/v1/transactions", "/transaction", "/api/v1/transactions", "/predict", "/validate-transaction",
     "/v1/labels", "/v1/alerts/x/review", "/v1/backtests"]
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=write_routes, body=bodies)
def test_no_json_body_makes_a_write_route_answer_500(
    client: TestClient, data_dir: Path, path: str, body: Any
) -> None:
    before = stored(data_dir)
    response = post_json(client, path, body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json")
        assert stored(data_dir) == before
    if path == "/validate-transaction":
        assert stored(data_dir) == before


def test_an_empty_list_is_refused_naming_the_body(client: TestClient) -> None:
    response = post_json(client, "/v1/transactions", [])
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"
    assert "empty" in response.json()["errors"][0]["problem"]


@pytest.mark.parametrize("stamp", [1e20, 1e300, 9.2e18, 253402300800000])
def test_a_unix_time_past_the_year_9999_is_refused(client: TestClient, data_dir: Path, stamp: float) -> None:
    before = stored(data_dir)
    response = post_json(
        client, "/v1/transactions", {"transaction_id": f"late-{stamp}", "user_id": "u", "amount": 5,
                                     "timestamp": stamp}
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["timestamp"]
    assert stored(data_dir) == before


def test_labels_are_refused_when_none_is_valid_and_accepted_when_some_are(client: TestClient) -> None:
    post_json(client, "/v1/transactions", {"transaction_id": "lab-1", "user_id": "u", "amount": 12})
    for body in (5, [], [{"transaction_id": "lab-1", "is_fraud": "maybe"}]):
        response = post_json(client, "/v1/labels", body)
        assert response.status_code == 422, response.text
    mixed = post_json(
        client, "/v1/labels", [{"transaction_id": "lab-1", "is_fraud": True}, {"is_fraud": True}]
    )
    assert mixed.status_code == 200
    assert mixed.json()["accepted"] == 1
    assert mixed.json()["invalid"][0]["errors"][0]["field"] == "transaction_id"


def test_rules_sent_as_json_without_yaml_text_name_the_field(client: TestClient) -> None:
    response = post_json(client, "/v1/stats", {})  # a GET-only route: 405, still JSON
    assert response.status_code == 405
    assert response.json()["detail"]
    response = client.put("/v1/rules", json={"yaml": 5})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "yaml"


def test_the_alert_stream_path_says_how_to_listen_when_asked_for_json(client: TestClient) -> None:
    response = client.get("/v1/stream/alerts", headers={"accept": "application/json"})
    assert response.status_code == 406
    assert "/v1/stream/alerts.sse" in response.json()["detail"]


def test_the_routes_are_split_one_file_per_resource(client: TestClient) -> None:
    assert client.get("/v1/users/nobody/history").json() == {"user_id": "nobody", "items": []}
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "fraudstream_decisions_total" in metrics.text


def test_an_app_can_wrap_a_service_built_elsewhere(tmp_path: Path) -> None:
    service = ScoringService(demo_settings(tmp_path))
    app = create_app(service)
    assert app.state.service is service
    with TestClient(app) as test_client:
        assert service.ready
        answer = test_client.post(
            "/v1/transactions", json={"transaction_id": "w", "user_id": "u", "amount": 3}
        )
        assert answer.status_code == 201
    assert stored(tmp_path) == 1


def test_the_websocket_wants_a_key_of_a_reading_role_outside_demo_mode(tmp_path: Path) -> None:
    app = create_app(demo_settings(tmp_path, demo=False, card_key="c" * 32, admin_key="admin-secret"))
    with TestClient(app) as test_client:
        for path in ("/v1/stream/alerts", "/v1/stream/alerts?key=wrong"):
            with pytest.raises(WebSocketDisconnect) as refused, test_client.websocket_connect(path) as ws:
                ws.receive_json()
            assert refused.value.code == 4401
        gateway = app.state.service.store.create_api_key("gateway", "ingest", 0)
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            test_client.websocket_connect(f"/v1/stream/alerts?key={gateway}") as ws,
        ):
            ws.receive_json()
        assert refused.value.code == 4403
        viewer = app.state.service.store.create_api_key("wall-screen", "viewer", 0)
        with test_client.websocket_connect(f"/v1/stream/alerts?key={viewer}") as ws:
            assert ws.receive_json()["type"] == "hello"
        with test_client.websocket_connect(
            "/v1/stream/alerts", headers={"authorization": "Bearer admin-secret"}
        ) as ws:
            assert ws.receive_json()["type"] == "hello"


@pytest.fixture
def live_url(tmp_path: Path) -> Iterator[str]:
    with serving_in_thread(create_app(demo_settings(tmp_path))) as port:
        yield f"http://127.0.0.1:{port}"


def next_alert(lines: Iterator[str]) -> dict[str, Any]:
    """The data of the next `event: alert` in a Server-Sent Events stream."""
    event = None
    for line in lines:
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "alert":
            found: dict[str, Any] = json.loads(line.split(":", 1)[1])
            return found
    raise AssertionError("the stream ended before an alert arrived")


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/stream/alerts.sse", {}),
        ("/v1/stream/alerts", {"accept": "text/event-stream"}),
    ],
)
def test_alerts_reach_a_curl_user_as_server_sent_events(
    live_url: str, path: str, headers: dict[str, str]
) -> None:
    timeout = httpx.Timeout(10.0)
    with httpx.stream("GET", live_url + path, headers=headers, timeout=timeout) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        # The greeting comes once the subscription exists, so no alert sent after it can be missed.
        assert next(lines).startswith(": connected")
        for tid, amount, minute in (("sse-1", 50.0, 0), ("sse-2", 5000.0, 1)):
            httpx.post(
                f"{live_url}/v1/transactions",
                json={"transaction_id": tid, "user_id": "sse-user", "amount": amount,
                      "timestamp": f"2026-11-24T10:0{minute}:00Z"},
                timeout=timeout,
            ).raise_for_status()  # fmt: skip
        alert = next_alert(lines)
    assert alert["transaction_id"] == "sse-2"
    assert alert["decision"] in {"review", "decline"}


@pytest.mark.parametrize("field", ["transaction_id", "user_id", "merchant_id", "location"])
def test_a_control_character_in_an_identifier_is_refused(
    client: TestClient, data_dir: Path, field: str
) -> None:
    before = stored(data_dir)
    body = {"transaction_id": f"nul-{field}", "user_id": "u", "amount": 5, field: "bad\u0000id"}
    response = post_json(client, "/v1/transactions", body)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert "control character" in response.json()["errors"][0]["problem"]
    assert stored(data_dir) == before


def test_a_lone_client_does_not_wait_the_gathering_window_but_concurrent_requests_still_share_a_group(
    tmp_path: Path,
) -> None:
    # A window far longer than scoring takes, so that waiting it or not is plain to see.
    app = create_app(demo_settings(tmp_path, batch_wait_ms=100.0))
    service: ScoringService = app.state.service

    async def run() -> tuple[list[float], list[int]]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://fraudstream") as http:
                seconds = []
                for i in range(4):  # one request at a time, each waiting for its answer
                    started = time.perf_counter()
                    answer = await http.post(
                        "/v1/transactions", json={"transaction_id": f"lone-{i}", "user_id": "u", "amount": 5}
                    )
                    assert answer.status_code == 201, answer.text
                    seconds.append(time.perf_counter() - started)
                groups_before = service.metrics.batches
                answers = await asyncio.gather(
                    *(
                        http.post(
                            "/v1/transactions",
                            json={"transaction_id": f"busy-{i}", "user_id": "u", "amount": 5},
                        )
                        for i in range(6)
                    )
                )
                assert [a.status_code for a in answers] == [201] * 6
                return seconds, [groups_before, service.metrics.batches]

    seconds, (before, after) = asyncio.run(run())
    # The first request cannot know it is alone and waits the window; the next ones do not.
    assert all(s < 0.08 for s in seconds[1:]), seconds
    # Six requests sent together after them are one or two groups, not six.
    assert after - before <= 2, (before, after)


def test_one_bad_request_never_fails_the_others_in_its_write_group(tmp_path: Path, postgres_url: str) -> None:
    # PostgreSQL refuses NUL in text: let through, it would fail the whole group commit.
    app = create_app(demo_settings(tmp_path, database_url=postgres_url, batch_wait_ms=50.0))

    async def together() -> tuple[httpx.Response, httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://fraudstream") as http:
                good, bad = await asyncio.gather(
                    http.post(
                        "/v1/transactions", json={"transaction_id": "pg-good", "user_id": "u", "amount": 5}
                    ),
                    http.post(
                        "/v1/transactions",
                        json={"transaction_id": "pg\u0000bad", "user_id": "u", "amount": 5},
                    ),
                )
        return good, bad

    good, bad = asyncio.run(together())
    assert good.status_code == 201, good.text
    assert bad.status_code == 422, bad.text


def test_a_group_being_scored_at_shutdown_is_answered_and_held_by_the_final_snapshot(tmp_path: Path) -> None:
    # Shutdown arrives while a large group is scoring in its thread: the group must finish, its
    # callers hear their answers, and the snapshot written on the way out must hold it (else the
    # next start would count those transactions twice, once restored and once replayed).
    app = create_app(demo_settings(tmp_path))
    service: ScoringService = app.state.service
    records = [
        {"transaction_id": f"late-{i}", "user_id": f"u{i % 50}", "amount": 5 + i % 7} for i in range(4000)
    ]

    async def run() -> list[str]:
        async with app.router.lifespan_context(app):
            scoring = asyncio.create_task(service.score(records))
            await asyncio.sleep(0.01)  # the batcher has taken the group; its thread is validating
            assert not scoring.done()
        outcomes = await asyncio.wait_for(scoring, 30)
        # After the stop, new work is refused rather than queued for a batcher that is gone.
        with pytest.raises(SinkError, match="shutting down"):
            await service.score(records[:1])
        return [o.status for o in outcomes]

    statuses = asyncio.run(run())
    assert statuses == ["scored"] * len(records), sorted(set(statuses))
    with sqlite3.connect(tmp_path / "fraudstream.db") as connection:
        last_seq = connection.execute("select max(seq) from transactions").fetchone()[0]
    newest = sorted(tmp_path.rglob("state-*.bin"))[-1]
    assert newest.name == f"state-{last_seq:012d}.bin"


def test_the_server_compiles_its_kernels_before_it_is_ready(tmp_path: Path) -> None:
    """On a first start nothing is compiled yet: the first requests of a demo waited ~3.5 s for numba.
    In a fresh interpreter, the scoring kernels are loaded by the time the service is ready."""
    import subprocess
    import sys

    script = f"""
from fastapi.testclient import TestClient
from fraudstream.api import create_app
from fraudstream.config import Settings
from fraudstream.core.features import kernels
from fraudstream.core import policy
with TestClient(create_app(Settings(demo=True, data_dir={str(tmp_path / "data")!r}))) as client:
    assert client.get("/readyz").status_code == 200
    print(len(kernels.entity_kernel.signatures), len(kernels.user_extras_kernel.signatures),
          len(policy._decide_rows.signatures))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    counts = [int(n) for n in done.stdout.splitlines()[-1].split()]  # the last line; logs come first
    assert all(n >= 1 for n in counts), done.stdout
