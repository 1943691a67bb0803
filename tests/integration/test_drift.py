"""Drift in a running service (in-process, real SQLite): the live bin counts equal NumPy histograms of
the scored transactions' features, survive a crash and a restart, and traffic whose amounts grew
fivefold crosses the threshold: a warning in /v1/drift and fraudstream_drift_warning 1."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from fraudstream.api import create_app
from fraudstream.config import Settings
from fraudstream.core.models import Model
from fraudstream.ml.dataset import History, load_history
from fraudstream.ml.registry import Registry
from fraudstream.ml.train import replay_history, train
from fraudstream.runtime.embedded import ScoringService
from fraudstream.runtime.embedded.drift import DriftMonitor
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import records_for_http, write_table
from fraudstream.storage.drift import utc_day
from labelled_traffic import send_in_order
from promtool import promtool_problems

pytestmark = pytest.mark.integration
DAY = 86_400_000


@dataclass(frozen=True)
class Trained:
    history: History
    records: list[dict[str, Any]]
    model: Model
    registry: Path
    #: The features of every transaction of the history as the engine computes them, in the
    #: model's order: what a server scoring the history in order sees.
    features: npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("drift")
    table = simulate(SimulationConfig(count=2_400, seed=23, fraud_rate=0.03, duration_ms=4 * DAY))
    write_table(table, folder / "history.parquet")
    history = load_history(folder / "history.parquet")  # cards fingerprinted with the key "training"
    model, _ = train(history, "logistic", train_from_ms=None, train_to_ms=None, label_delay_ms=DAY)
    registry = Registry(folder / "models")
    registry.save(model)
    registry.promote(model.metadata.version)
    replayed = replay_history(history, DAY)
    columns = [replayed.feature_names.index(name) for name in model.feature_names]
    return Trained(history, records_for_http(table), model, folder / "models", replayed.features[:, columns])


def service_in(data_dir: Path, trained: Trained, **overrides: Any) -> ScoringService:
    chosen: dict[str, Any] = {"drift_min_transactions": 500, **overrides}
    settings = Settings(
        data_dir=data_dir,
        card_key="training",
        api_keys_enabled=False,
        registry_dir=trained.registry,
        label_delay="1d",
        batch_wait_ms=1.0,
        **chosen,
    )
    return ScoringService(settings)


def histograms(trained: Trained, rows: slice = slice(None)) -> dict[str, list[int]]:
    """np.histogram of each model feature in its reference's bins, then the count of missing values."""
    found = {}
    for j, name in enumerate(trained.model.feature_names):
        edges = trained.model.metadata.reference["features"][name]["edges"]
        values = trained.features[rows, j].astype(np.float64)
        counted, _ = np.histogram(values[~np.isnan(values)], bins=[-np.inf, *edges, np.inf])
        found[name] = [*counted.tolist(), int(np.isnan(values).sum())]
    return found


def stored_counts(service: ScoringService, version: str) -> dict[str, list[int]]:
    today = datetime.now(UTC).timestamp() * 1000
    days = [utc_day(int(today) - DAY), utc_day(int(today))]
    return service.store.drift_counts_of(days, version)


def gauge(client: TestClient, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = client.get("/metrics").text
    assert promtool_problems(text) == ""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


@pytest.fixture
def crashed(tmp_path: Path, trained: Trained) -> tuple[Path, dict[str, Any]]:
    """A service that scored the history (a snapshot after the first half) and then died without its
    final snapshot, as under kill -9: the counts since that snapshot lived only in memory. Yields its
    data folder and its last /v1/drift answer."""
    service = service_in(tmp_path, trained)
    half = len(trained.records) // 2
    with TestClient(create_app(service)) as client:
        send_in_order(client, trained.history, trained.records, 0, half)
        service.snapshot()
        send_in_order(client, trained.history, trained.records, half, len(trained.records))
        report = client.get("/v1/drift").json()
        warning = gauge(client, "fraudstream_drift_warning")
        service.snapshot = lambda: tmp_path  # type: ignore[method-assign]  # no snapshot at the end
    assert warning == {(): 0.0}
    return tmp_path, report


def test_the_live_counts_equal_histograms_of_the_scored_features_and_survive_a_crash_and_a_restart(
    crashed: tuple[Path, dict[str, Any]], trained: Trained
) -> None:
    data_dir, report = crashed
    version = trained.model.metadata.version
    expected = histograms(trained)
    # Before the crash: the stored half and the counts in memory, as the answer read them.
    assert report["model_version"] == version
    assert report["window"]["transactions"] == len(trained.records)
    amount = next(f for f in report["features"] if f["feature"] == "amount")
    total = len(trained.records)
    assert amount["actual"] == [round(n / total, 6) for n in expected["amount"]]
    # The history the model learned from, scored again: nothing drifts.
    assert report["status"] in {"stable", "watch"}, report["features"][:3]
    assert report["warning"] is False
    assert amount["status"] == "stable"

    restarted = service_in(data_dir, trained)
    with TestClient(create_app(restarted)) as client:
        # The replay after the first half's snapshot counted what the crash lost, and only that.
        restarted.snapshot()
        recounted = stored_counts(restarted, version)
        again = client.get("/v1/drift").json()
    assert again["window"]["transactions"] == total
    # Every transaction counted once; features the same but those of fraud labels: the restart's
    # replay applies the labels stored after the snapshot once it has replayed the transactions.
    assert {name: sum(counts) for name, counts in recounted.items()} == dict.fromkeys(expected, total)
    from_labels = {name for name in expected if "fraud" in name}
    assert {n: c for n, c in recounted.items() if n not in from_labels} == {
        n: c for n, c in expected.items() if n not in from_labels
    }
    # A clean stop stores nothing twice, and the next start replays nothing it counts again.
    third = service_in(data_dir, trained)
    with TestClient(create_app(third)):
        pass
    assert stored_counts(third, version) == recounted


def test_traffic_with_five_times_the_amounts_drifts_warns_and_sets_the_metric(
    tmp_path: Path, trained: Trained
) -> None:
    service = service_in(tmp_path, trained)
    shifted = [{**record, "amount": round(float(record["amount"]) * 5, 2)} for record in trained.records]
    with TestClient(create_app(service)) as client:
        for chunk in range(0, 1_000, 500):
            assert client.post("/v1/transactions", json=shifted[chunk : chunk + 500]).status_code == 200
        report = client.get("/v1/drift").json()
        warning = gauge(client, "fraudstream_drift_warning")
        psi = gauge(client, "fraudstream_feature_psi")
    assert report["warning"] is True
    assert report["status"] == "drifted"
    assert report["features"][0]["psi"] >= report["thresholds"]["drifted"] == 0.25
    amount = next(f for f in report["features"] if f["feature"] == "amount")
    assert amount["status"] == "drifted"
    assert "amount" in report["message"]
    assert "in the demo this is expected" not in report["message"]  # said only in demo mode
    assert warning == {(): 1.0}
    # The 20 most drifted features only: the series stay few whatever the model.
    assert psi == {(("feature", f["feature"]),): f["psi"] for f in report["features"][:20]}
    today = report["daily"][-1]
    assert len(report["daily"]) == 14
    assert today["decisions"] == 1_000
    assert sum(today["scores"]) == 1_000 == sum(today["decisions_by_kind"].values())
    assert today["alert_rate"] == round(today["alerts"] / 1_000, 6)


def test_the_demo_says_its_drift_is_expected(tmp_path: Path, trained: Trained) -> None:
    service = service_in(tmp_path, trained, demo=True, drift_min_transactions=200)
    shifted = [{**record, "amount": round(float(record["amount"]) * 5, 2)} for record in trained.records]
    with TestClient(create_app(service)) as client:
        assert client.post("/v1/transactions", json=shifted[:300]).status_code == 200
        report = client.get("/v1/drift").json()
    assert report["warning"] is True
    assert "in the demo this is expected" in report["message"]


def test_too_few_transactions_kafka_mode_and_a_model_without_reference_say_why_nothing_is_measured(
    tmp_path: Path, trained: Trained
) -> None:
    service = service_in(tmp_path / "few", trained)
    with TestClient(create_app(service)) as client:
        assert client.post("/v1/transactions", json=trained.records[:50]).status_code == 200
        report = client.get("/v1/drift").json()
    assert report["status"] == "too_few"
    assert report["warning"] is False
    assert report["window"]["transactions"] == 50
    # Kafka mode: the workers decide and count nothing yet, and the answer says so.
    kafka = service.settings.model_copy(update={"kafka_brokers": "127.0.0.1:9092"})
    answer = DriftMonitor(service.store, kafka, lambda: trained.model).features_now()
    assert answer["status"] == "too_few"
    assert answer["message"].startswith("Kafka mode: the workers decide, and do not count")
    # A model trained before references were kept (its metadata.json has none).
    old = copy.copy(trained.model)
    old.metadata = dataclasses.replace(old.metadata, reference={}, version="before-drift")
    answer = DriftMonitor(service.store, service.settings, lambda: old).features_now()
    assert answer["status"] == "no_reference"
    assert answer["message"].startswith("no reference: model before-drift was trained before")
    assert "retrain to enable drift" in answer["message"]
    assert answer["warning"] is False
