"""`fraudstream simulate --test ...` against a live server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from fraudstream.api import create_app
from fraudstream.cli import app
from fraudstream.config import Settings

pytestmark = pytest.mark.integration

ADMIN_KEY = "fs_admin_testclient_key_123456"


@pytest.fixture
def live_url(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(Settings(demo=True, data_dir=tmp_path)), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(10)


def test_every_seed_scenario_is_flagged_and_reported(live_url: str) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--test", "all", "--to", live_url, "--health", "--count", "3"]
    )
    assert result.exit_code == 0, result.output
    for name in ("large", "rapid", "location"):
        assert f"{name}: sent" in result.output
        assert "MISSED" not in result.output
    assert "health: 200" in result.output


def test_a_missed_alert_fails_the_run(live_url: str) -> None:
    # With every rule switched off nothing is flagged, and the test client must say so.
    httpx.put(f"{live_url}/v1/rules", content="version: 2\nrules: []\n").raise_for_status()
    result = CliRunner().invoke(app, ["simulate", "--test", "large", "--to", live_url])
    assert result.exit_code == 1
    assert "MISSED" in result.output


def test_requests_a_keyed_server_refuses_are_reported_as_refused_never_as_missed(
    run_server: Callable[..., Any],
) -> None:
    server = run_server(api_keys_enabled="true", admin_key=ADMIN_KEY)
    without = ["simulate", "--test", "large", "--to", server.url]
    for args in (without, [*without, "--api-key", "not-a-key"]):
        result = CliRunner().invoke(app, args, env={"FRAUDSTREAM_API_KEY": None})
        assert result.exit_code == 1, result.output
        assert "MISSED" not in result.output
        assert result.output.count("refused 401: ") == 2, result.output
        assert "API key" in result.output  # the server's own words
        assert "large: sent 2, flagged 0 — REFUSED 2 (2 x 401)" in result.output
    plain = CliRunner().invoke(
        app, ["simulate", "--count", "5", "--to", server.url], env={"FRAUDSTREAM_API_KEY": None}
    )
    assert plain.exit_code == 1
    assert f"{server.url} refused a batch with 401: " in plain.output


def test_the_api_key_is_sent_from_the_option_or_the_environment(run_server: Callable[..., Any]) -> None:
    server = run_server(api_keys_enabled="true", admin_key=ADMIN_KEY)
    args = ["simulate", "--test", "large", "--to", server.url]
    for extra, env in (([], {"FRAUDSTREAM_API_KEY": ADMIN_KEY}), (["--api-key", ADMIN_KEY], {})):
        result = CliRunner().invoke(app, [*args, *extra], env={"FRAUDSTREAM_API_KEY": None, **env})
        assert result.exit_code == 0, result.output
        assert "large: sent 2, flagged 1 — ok" in result.output


def test_simulated_traffic_to_http_keeps_its_pace(live_url: str) -> None:
    from fraudstream.sim.generator import SimulationConfig, simulate
    from fraudstream.sim.output import send_http

    table = simulate(SimulationConfig(count=60, seed=4)).drop_columns(["is_fraud", "fraud_scenario"])
    started = time.monotonic()
    assert send_http(table, live_url, rate=40, batch=5) == 60
    elapsed = time.monotonic() - started
    # 60 events at 40/s: the last batch is due at 1.375 s; no drift beyond a small margin.
    assert 1.3 < elapsed < 2.5
    stats = httpx.get(f"{live_url}/v1/stats").json()
    assert stats["transactions"] == 60
