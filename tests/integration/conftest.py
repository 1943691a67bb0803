"""Fixtures for tests that talk to real services."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

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


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test module (e.g. its one running server)."""
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
    # Killed, not terminated: its storage is memory, and with the tests' clients still connected a
    # SIGTERM took 5 s to end it.
    process.kill()
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
