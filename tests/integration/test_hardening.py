"""A hostile or broken client harms only its own requests (issue #19): a poison body is refused alone,
a failing group is retried request by request, and the others commit."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from factories import transaction
from fraudstream.config import Settings
from fraudstream.runtime.embedded import ScoringService
from servers import free_port

pytestmark = pytest.mark.integration

CLIENTS = 16
PER_CLIENT = 40


def nested(depth: int) -> Any:
    """A JSON value ``depth`` levels deep: orjson reads up to 1,024 levels but writes only 254."""
    value: Any = 1
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_poison_transaction_fails_only_itself(
    database: str, run_server: Callable[..., Any], request: pytest.FixtureRequest
) -> None:
    overrides = {"batch_wait_ms": "5"}  # wide groups: the poison shares them with the valid requests
    if database == "postgresql":
        overrides["database_url"] = request.getfixturevalue("empty_postgres_url")
    server = run_server(**overrides)
    failures: list[str] = []
    poison_answers: list[int] = []
    stop = threading.Event()

    def valid_client(client: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i in range(PER_CLIENT):
                answer = http.post(
                    "/v1/transactions",
                    json=transaction(f"c{client}-{i}", f"user-{client}", 10 + i, merchant_id=f"m-{i % 7}"),
                )
                if answer.status_code != 201:
                    failures.append(f"{answer.status_code} {answer.text[:200]}")

    def poison_client() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            i = 0
            while not stop.is_set():
                body = transaction(
                    f"c999-{i}", "user-999", 10 + i, merchant_id=f"m-{i % 7}", extra=nested(300 + i % 700)
                )
                poison_answers.append(http.post("/v1/transactions", json=body).status_code)
                i += 1

    poison = threading.Thread(target=poison_client)
    poison.start()
    threads = [threading.Thread(target=valid_client, args=(c,)) for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    poison.join()

    assert failures == []
    assert poison_answers
    assert set(poison_answers) == {422}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        ids: set[str] = set()
        params: dict[str, Any] = {"limit": 500}
        while True:
            page = http.get("/v1/transactions", params=params).json()
            ids.update(item["transaction_id"] for item in page["items"])
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert ids == {f"c{c}-{i}" for c in range(CLIENTS) for i in range(PER_CLIENT)}
        refused = http.post(
            "/v1/transactions",
            json=transaction("c999-0", "user-999", 10, merchant_id="m-0", extra=nested(40)),
        )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "extra"


def test_a_group_that_fails_is_retried_request_by_request(tmp_path: Path) -> None:
    """Whatever makes a group fail (here: the store refusing one transaction), the requests that
    shared the group with the culprit are stored and answered; the engine stays what is stored."""
    service = ScoringService(Settings(demo=True, data_dir=tmp_path, batch_wait_ms=50))
    real_write = service.store.write_scored

    def write_refusing_culprit(transactions: list[dict[str, Any]], *rest: Any, **options: Any) -> Any:
        if any(row["transaction_id"] == "culprit" for row in transactions):
            raise ValueError("this row cannot be written")
        return real_write(transactions, *rest, **options)

    service.store.write_scored = write_refusing_culprit  # type: ignore[method-assign]

    async def run() -> list[Any]:
        await service.start()
        try:
            ids = ["before", "culprit", "after"]
            records = [{"transaction_id": i, "user_id": "same-user", "amount": 20} for i in ids]
            return await asyncio.gather(*(service.score([r]) for r in records), return_exceptions=True)
        finally:
            await service.stop()

    before, culprit, after = asyncio.run(run())
    assert isinstance(culprit, ValueError)
    assert before[0].status == "scored"
    assert after[0].status == "scored"
    # The culprit's event was taken back out of the features: the user has two stored payments.
    counts = [outcome[0].decision["features"].get("user.count_24h") for outcome in (before, after)]
    assert sorted(counts) == [1.0, 2.0]


def make_read_only(path: Path) -> Callable[[], None]:
    """Make ``path`` and its files read-only even for root (immutable); returns how to undo it."""
    targets = [path, *path.rglob("*")]
    if os.geteuid() == 0:
        flags = [str(t) for t in targets]
        subprocess.run(["chattr", "+i", *flags], check=True)
        return lambda: subprocess.run(["chattr", "-i", *flags], check=True)
    modes = {t: t.stat().st_mode for t in targets}
    for target in targets:
        target.chmod(modes[target] & ~0o222)

    def undo() -> None:
        for target, mode in modes.items():
            target.chmod(mode)

    return undo


def test_a_server_that_cannot_write_its_data_directory_stops_with_one_line(
    run_server: Callable[..., Any], tmp_path: Path
) -> None:
    data_dir = tmp_path / "read-only"
    server = run_server(data_dir=str(data_dir))
    server.log()  # stopped cleanly: database and snapshot in place
    undo = make_read_only(data_dir)
    try:
        env = {
            **os.environ,
            "FRAUDSTREAM_DATA_DIR": str(data_dir),
            "FRAUDSTREAM_CARD_KEY": "test-card-key",
            "FRAUDSTREAM_ADMIN_KEY": "an-admin-key-for-this-test",
            "FRAUDSTREAM_PORT": str(free_port()),
            "COLUMNS": "1000",  # one line as written, not wrapped at 80 columns
        }
        started = subprocess.run(
            [sys.executable, "-m", "fraudstream", "serve"], env=env, capture_output=True, timeout=60
        )
    finally:
        undo()
    said = started.stderr.decode() + started.stdout.decode()
    assert started.returncode != 0
    assert "Traceback" not in said
    assert len(said.strip().splitlines()) == 1, said
    assert said.startswith(f"error: cannot write to {data_dir}: ")


def test_a_database_that_refuses_writes_makes_the_server_unready_and_answers_without_sql(
    run_server: Callable[..., Any], empty_postgres_url: str
) -> None:
    import psycopg

    name = empty_postgres_url.rsplit("/", 1)[1]
    server = run_server(database_url=empty_postgres_url)

    def read_only(on: bool) -> None:
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as admin:
            setting = (
                "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
            )
            admin.execute(f'ALTER DATABASE "{name}" {setting}')
            # The server's open connections keep their setting: end them, so that it reconnects.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )

    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert (
            http.post(
                "/v1/transactions", json=transaction("c1-1", "user-1", 11, merchant_id="m-1")
            ).status_code
            == 201
        )
        read_only(True)
        try:
            refused = http.post("/v1/transactions", json=transaction("c1-2", "user-1", 12, merchant_id="m-2"))
            ready = http.get("/readyz")
        finally:
            read_only(False)
        assert refused.status_code == 503
        body = refused.json()
        assert body["error"] == "storage_unavailable"
        for leak in ("INSERT", "transactions (", "user-1", "c1-2", "psycopg"):
            assert leak not in refused.text
        assert ready.status_code == 503
        assert "refuses writes" in ready.json()["database"]
        assert http.get("/readyz").status_code == 200
        assert (
            http.post(
                "/v1/transactions", json=transaction("c1-2", "user-1", 12, merchant_id="m-2")
            ).status_code
            == 201
        )
    assert body["error_id"] in server.log()


def test_snapshots_are_recorded_relative_to_the_data_directory(
    run_server: Callable[..., Any], tmp_path: Path
) -> None:
    original = tmp_path / "original"
    server = run_server(data_dir=str(original))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for i in range(5):
            assert (
                http.post(
                    "/v1/transactions",
                    json=transaction(f"c2-{i}", "user-2", 10 + i, merchant_id=f"m-{i % 7}"),
                ).status_code
                == 201
            )
    server.log()  # stopping writes the final snapshot
    with sqlite3.connect(original / "fraudstream.db") as db:
        paths = [row[0] for row in db.execute("select path from snapshots")]
    assert paths
    assert all("/" not in p for p in paths), paths
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    shutil.rmtree(original / "snapshots")
    moved = run_server(data_dir=str(copy))
    with httpx.Client(base_url=moved.url, timeout=30) as http:
        answer = http.post(
            "/v1/transactions", json=transaction("c2-5", "user-2", 15, merchant_id="m-5")
        ).json()
    assert answer["features"]["user.count_24h"] == 6.0
    restored = [line for line in moved.log().splitlines() if "state restored" in line]
    assert str(copy / "snapshots") in restored[0]
