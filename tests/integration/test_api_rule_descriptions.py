"""Through the real app and SQLite: a rule description that could blow up answers and the database is
refused at PUT /v1/rules, and no reason text an author writes grows past the maximum."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from fraudstream.api import create_app
from fraudstream.config import Settings
from fraudstream.core.explain import MAX_REASON_CHARS

pytestmark = pytest.mark.integration


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(demo=True, data_dir=tmp_path, batch_wait_ms=1.0)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def rule_set(description: str, version: int = 9) -> str:
    return (
        f"version: {version}\nrules:\n"
        f"  - {{code: any_amount, description: '{description}', expression: 'amount > 1', "
        "action: review, weight: 50}\n"
    )


def put_rules(client: TestClient, text: str) -> tuple[int, dict[str, object]]:
    response = client.put("/v1/rules", content=text, headers={"content-type": "application/yaml"})
    body: dict[str, object] = response.json()
    return response.status_code, body


@pytest.mark.parametrize(
    ("description", "problem"),
    [
        ("Amount {amount:>5000000}", "width 5000000 is over 20"),
        ("Amount {amount:.5000000f}", "precision 5000000 is over 20"),
        ("Amount {amount.__class__}", "attributes and indexes are not allowed"),
        ("Amount {amount!r}", "conversions (!r, !s, !a) are not allowed"),
    ],
)
def test_a_description_that_could_blow_up_every_answer_is_refused_and_nothing_changes(
    client: TestClient, tmp_path: Path, description: str, problem: str
) -> None:
    before = client.get("/v1/rules").json()
    status, body = put_rules(client, rule_set(description))
    assert status == 422
    assert body["error"] == "invalid_rules"
    assert body["rule"] == "any_amount"
    assert problem in str(body["reason"])
    assert client.get("/v1/rules").json() == before
    answer = client.post("/v1/transactions", json={"transaction_id": "t1", "user_id": "u", "amount": 5})
    assert answer.status_code == 201
    assert len(answer.content) < 10_000
    with sqlite3.connect(tmp_path / "fraudstream.db") as connection:
        versions = connection.execute("select count(*) from rule_sets").fetchone()[0]
    assert versions == 1  # the default set, stored on the first start; the refused one never was


def test_reasons_are_cut_at_the_maximum_in_answers_alerts_and_the_database(
    client: TestClient, tmp_path: Path
) -> None:
    status, _ = put_rules(client, rule_set("Device {device_id} is odd " + "x" * 5_000))
    assert status == 200
    answer = client.post(
        "/v1/transactions",
        json={"transaction_id": "t2", "user_id": "u", "amount": 5, "device_id": "d" * 100},
    ).json()
    reason = answer["reasons"][0]
    assert reason["code"] == "any_amount"
    assert len(reason["text"]) == MAX_REASON_CHARS
    assert reason["text"].startswith("Device " + "d" * 100 + " is odd xxx")
    assert reason["text"].endswith("…")
    alert = client.get("/v1/alerts").json()["items"][0]
    assert alert["reasons"][0]["text"] == reason["text"]
    with sqlite3.connect(tmp_path / "fraudstream.db") as connection:
        stored = connection.execute("select reasons from decisions").fetchall()
    assert [orjson.loads(row[0])[0]["text"] for row in stored] == [reason["text"]]
