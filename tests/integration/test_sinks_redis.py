"""Alerts onto Redis (list and channel) from a real server, and what happens while Redis is down.

Each test runs its own redis-server on a free port, so that one can be killed and started again
without touching the machine's Redis."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
import redis

from factories import transaction
from servers import RunningServer, free_port, sink_failing, wait_for

pytestmark = pytest.mark.integration

#: Over the built-in rule `huge_amount`'s 50,000: a decline, so an alert.
ALERTING = 75_000.0


class RedisProcess:
    """A redis-server that keeps nothing on disk, on ``port``; ``kill`` and ``start`` again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: apt-get install -y redis-server")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start in 10 s"
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    server = RedisProcess(free_port())
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


def _send(server: RunningServer, records: list[dict[str, Any]]) -> None:
    answer = httpx.post(f"{server.url}/v1/transactions", json=records, timeout=30)
    assert answer.status_code == 200, answer.text


def test_every_alert_is_pushed_onto_the_list_capped_and_published_as_the_websocket_sends_it(
    redis_process: RedisProcess, run_server: Callable[..., RunningServer]
) -> None:
    client = redis.Redis.from_url(redis_process.url)
    channel = client.pubsub()
    channel.subscribe("alerts-out")
    channel.get_message(timeout=2)  # the subscription's confirmation
    server = run_server(redis_url=redis_process.url, redis_alerts_channel="alerts-out", redis_list_max="3")
    records = [
        transaction(f"r{i}", f"user-{i}", ALERTING if i % 2 == 0 else 20.0, card_number="4111111111111111")
        for i in range(10)
    ]
    _send(server, records)
    alerting = {f"r{i}" for i in range(0, 10, 2)}

    published: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while len(published) < len(alerting) and time.monotonic() < deadline:
        message = channel.get_message(timeout=1)
        if message and message["type"] == "message":
            published.append(orjson.loads(message["data"]))
    assert {alert["transaction_id"] for alert in published} == alerting
    listed = [orjson.loads(item) for item in client.lrange("fraud_alerts", 0, -1)]
    assert len(listed) == 3, "the list keeps the newest redis_list_max alerts"
    assert {alert["transaction_id"] for alert in listed} <= alerting
    alert = published[0]
    # The live stream's JSON: type, ids, amount, score, decision, reasons with codes and text.
    assert alert["type"] == "fraud_alert"
    assert alert["decision"] == "decline"
    assert alert["amount"] == ALERTING
    assert alert["status"] == "open"
    assert any(reason["code"] == "huge_amount" for reason in alert["reasons"])
    assert "4111111111111111" not in str(published), "no card number leaves the server"
    ready = httpx.get(f"{server.url}/readyz", timeout=5).json()
    assert ready["status"] == "healthy"
    assert ready["sinks"]["redis"] == {"state": "ok", "behind": 0}


def test_redis_killed_under_load_degrades_readiness_loses_nothing_and_recovers_without_restart(
    redis_process: RedisProcess, run_server: Callable[..., RunningServer]
) -> None:
    server = run_server(redis_url=redis_process.url, redis_list_max="100000")
    sent: set[str] = set()

    def send_round(round_number: int) -> None:
        records = [
            transaction(f"k{round_number}-{i}", f"u{round_number}-{i}", ALERTING if i < 5 else 30.0)
            for i in range(20)
        ]
        _send(server, records)
        sent.update(r["transaction_id"] for r in records if r["amount"] == ALERTING)

    for number in range(5):
        send_round(number)
    before = redis.Redis.from_url(redis_process.url)
    wait_for(lambda: before.llen("fraud_alerts") == len(sent), "the first alerts to reach Redis")
    # Redis keeps nothing on disk here: what it held dies with it. What follows must still arrive.
    redis_process.kill()
    sent.clear()
    for number in range(5, 30):  # every request is still decided while Redis is away
        send_round(number)
        time.sleep(0.05)

    wait_for(lambda: sink_failing(server, "redis"), "/readyz to say degraded with the Redis sink failing")
    ready = httpx.get(f"{server.url}/readyz", timeout=5).json()
    assert ready["sinks"]["redis"]["behind"] > 0
    metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
    assert 'fraudstream_sink_up{sink="redis"} 0.0' in metrics
    assert 'fraudstream_sink_failures_total{sink="redis"}' in metrics

    redis_process.start()  # the same port, empty: what was missed must arrive from the log
    client = redis.Redis.from_url(redis_process.url)

    def caught_up() -> bool:
        return {orjson.loads(item)["transaction_id"] for item in client.lrange("fraud_alerts", 0, -1)} >= sent

    wait_for(caught_up, "every alert to reach Redis after it came back", timeout_s=45)
    wait_for(lambda: httpx.get(f"{server.url}/readyz", timeout=5).json()["status"] == "healthy", "healthy")
    assert len(sent) == 125
