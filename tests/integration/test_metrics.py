"""The server's /metrics: prometheus_client's exposition, clean for promtool, latency in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from fraudstream.api import create_app
from fraudstream.config import Settings
from fraudstream.runtime.embedded import ScoringService
from promtool import promtool_problems

pytestmark = pytest.mark.integration


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def settings(data_dir: Path) -> Settings:
    return Settings(demo=True, data_dir=data_dir, batch_wait_ms=1.0)


@pytest.fixture
def service(tmp_path: Path) -> ScoringService:
    return ScoringService(settings(tmp_path))


def send(client: TestClient, count: int, prefix: str) -> None:
    for i in range(count):
        body: dict[str, Any] = {"transaction_id": f"{prefix}-{i}", "user_id": f"u{i % 7}", "amount": 10 + i}
        assert client.post("/v1/transactions", json=body).status_code == 201
    client.post("/v1/transactions", content=b"{", headers={"content-type": "application/json"})


def test_the_servers_metrics_are_clean_for_promtool_after_traffic(service: ScoringService) -> None:
    with TestClient(create_app(service)) as client:
        send(client, 30, "p")
        big = {"transaction_id": "p-big", "user_id": "u-big", "amount": 75_000.0}  # a decline: an alert
        assert client.post("/v1/transactions", json=big).json()["is_alert"] is True
        response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert promtool_problems(response.text) == ""
    values = samples(response.text)
    decided = sum(v for (name, _), v in values.items() if name == "fraudstream_decisions_total")
    assert decided == 31
    assert values[("fraudstream_alerts_total", ())] == 1
    assert values[("fraudstream_batch_size_count", ())] >= 1
    assert values[("fraudstream_score_count", ())] == 31
    assert values[("fraudstream_group_commit_seconds_count", ())] >= 1
    assert ("process_cpu_seconds_total", ()) in values
    build = [labels for (name, labels), _ in values.items() if name == "fraudstream_build_info"]
    assert len(build) == 1
    assert dict(build[0])["rules_version"] == str(service.engine.rules.version)


def test_latency_is_a_histogram_in_seconds(service: ScoringService) -> None:
    with TestClient(create_app(service)) as client:
        send(client, 6, "s")
        text = client.get("/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    latency = families["fraudstream_decision_latency_seconds"]
    assert latency.type == "histogram"
    values = samples(text)
    # The first group is the warm-up, left out: the five after it are timed.
    assert values[("fraudstream_decision_latency_seconds_count", ())] == 5
    # Seconds, not milliseconds: five decisions in a test client take well under a second each.
    assert 0 < values[("fraudstream_decision_latency_seconds_sum", ())] < 5
    assert values[("fraudstream_decision_latency_seconds_bucket", (("le", "1"),))] == 5
    assert "fraudstream_latency_ms" not in text
    assert "per_second" not in text


def test_a_decision_made_during_warm_up_is_not_in_the_latency_histogram(service: ScoringService) -> None:
    # Until the first group the service scores is stored, what is decided (here, a group recorded
    # before the start, then that first group) is counted but its seconds stay out of the histogram.
    service.metrics.record_batch(["approve"], [4794.0], {}, [3])
    with TestClient(create_app(service)) as client:
        assert service.ready
        send(client, 4, "w")
        text = client.get("/metrics").text
    values = samples(text)
    assert values[("fraudstream_decisions_total", (("decision", "approve"),))] >= 1
    assert sum(v for (name, _), v in values.items() if name == "fraudstream_decisions_total") == 5
    assert values[("fraudstream_decision_latency_seconds_count", ())] == 3
    assert values[("fraudstream_decision_latency_seconds_sum", ())] < 4.794


def test_two_services_in_one_process_keep_their_own_metrics(tmp_path: Path) -> None:
    first = ScoringService(settings(tmp_path / "a"))
    second = ScoringService(settings(tmp_path / "b"))
    first.metrics.record_batch(["decline"], [1.0], {"R1": 1}, [99])
    text = second.metrics.exposition.exposition().decode()
    assert samples(text)[("fraudstream_decisions_total", (("decision", "decline"),))] == 0
