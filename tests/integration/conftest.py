"""Fixtures for tests that talk to real services."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
HOW_TO_START = (
    "PostgreSQL is not reachable on 127.0.0.1:5432; start it with "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, dropped afterwards."""
    yield from _fresh_postgres_database()


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (e.g. to migrate step by step)."""
    yield from _fresh_postgres_database()


def _fresh_postgres_database() -> Iterator[str]:
    import psycopg

    name = f"fraudstream_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"{HOW_TO_START} ({exc})")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{POSTGRES}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    """A Tansu broker with in-memory storage on a free loopback port."""
    from kafka_broker import create_topic, start_tansu

    try:
        process, address = start_tansu()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    for name in ("decisions", "fraud-alerts", "transactions.dlq"):
        create_topic(address, name, 1)
    yield address
    process.terminate()
    process.wait(10)


S3_HOW_TO_START = (
    "the S3 test server (moto) did not start; install it with pip install 'moto[server]>=5,<6' "
    "(it runs in-process on a free loopback port)"
)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, with test credentials in the environment."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.fail(f"{S3_HOW_TO_START} ({exc})")
    server: Any = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.delenv("AWS_PROFILE", raising=False)
        try:
            server.start()
        except OSError as exc:
            pytest.fail(f"{S3_HOW_TO_START} ({exc})")
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


class RunningServer:
    """A `fraudstream serve` process on a free loopback port (see the `run_server` fixture)."""

    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url

    def log(self) -> str:
        """What the server wrote to stderr so far (after it stopped: all of it)."""
        if self.process.poll() is None:
            self.process.terminate()
        _, stderr = self.process.communicate(timeout=30)
        return stderr.decode(errors="replace")


@pytest.fixture
def run_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start `fraudstream serve` with environment ``overrides`` (FRAUDSTREAM_ names) on a free port,
    keys off and a test card key unless overridden, and wait until it is ready; stopped afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**overrides: str) -> RunningServer:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        env = {
            **os.environ,
            "FRAUDSTREAM_DATA_DIR": str(tmp_path / f"data-{len(started)}"),
            "FRAUDSTREAM_CARD_KEY": "test-card-key",
            "FRAUDSTREAM_API_KEYS_ENABLED": "false",
            "FRAUDSTREAM_LOG_FORMAT": "json",
            **{f"FRAUDSTREAM_{name.upper()}": value for name, value in overrides.items()},
            "FRAUDSTREAM_PORT": str(port),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "fraudstream", "serve"], env=env, stderr=subprocess.PIPE
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    return RunningServer(process, url)
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"the server did not become ready: {process.communicate()[1].decode()[-3000:]}")
            time.sleep(0.2)

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
