"""A hostile or broken client harms only its own requests (issue #19): a poison body is refused alone,
a failing group is retried request by request, and the others commit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fraudstream.config import Settings
from fraudstream.runtime.embedded import ScoringService

pytestmark = pytest.mark.integration

CLIENTS = 16
PER_CLIENT = 40


def nested(depth: int) -> Any:
    """A JSON value ``depth`` levels deep: orjson reads up to 1,024 levels but writes only 254."""
    value: Any = 1
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def transaction(client: int, i: int) -> dict[str, Any]:
    return {
        "transaction_id": f"c{client}-{i}",
        "user_id": f"user-{client}",
        "amount": 10 + i,
        "currency": "USD",
        "merchant_id": f"m-{i % 7}",
    }


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
                answer = http.post("/v1/transactions", json=transaction(client, i))
                if answer.status_code != 201:
                    failures.append(f"{answer.status_code} {answer.text[:200]}")

    def poison_client() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            i = 0
            while not stop.is_set():
                body = {**transaction(999, i), "extra": nested(300 + i % 700)}
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
        refused = http.post("/v1/transactions", json={**transaction(999, 0), "extra": nested(40)})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "extra"


def test_a_group_that_fails_is_retried_request_by_request(tmp_path: Path) -> None:
    """Whatever makes a group fail (here: the store refusing one transaction), the requests that
    shared the group with the culprit are stored and answered; the engine stays what is stored."""
    service = ScoringService(Settings(demo=True, data_dir=tmp_path, batch_wait_ms=50))
    real_write = service.store.write_scored

    def write_refusing_culprit(transactions: list[dict[str, Any]], *rest: Any) -> None:
        if any(row["transaction_id"] == "culprit" for row in transactions):
            raise ValueError("this row cannot be written")
        real_write(transactions, *rest)

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
