"""Scheduled jobs against a real server and its SQLite database: a retrain that fires after N labels and
promotes only a better model, a rescore whose report is the backtest computed directly, the schedule's
cron fire times, a run interrupted by a restart, and `fraudstream jobs run` from cron."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from fraudstream.cli import app
from fraudstream.config import Settings
from fraudstream.core.engine import default_names, default_ruleset
from fraudstream.core.rules import load_ruleset
from fraudstream.cron import next_fires_ms
from fraudstream.ml.backtest import backtest
from fraudstream.ml.dataset import load_history
from fraudstream.ml.jobs import WARM_UP_MS, finite
from fraudstream.ml.registry import Registry
from fraudstream.ml.retrain import history_from_store
from fraudstream.ml.train import engine_config, model_card, train
from fraudstream.sim.generator import SimulationConfig, labels_for, simulate
from fraudstream.sim.output import records_for_http, write_table
from fraudstream.storage import Store
from servers import RunningServer, start_server, stop, wait_for

pytestmark = pytest.mark.integration

DAY = 86_400_000
#: The server retrains once this many labels have arrived since its last retrain.
AFTER_LABELS = 40
#: Rules-only candidate for the rescore: the default set with one rule more.
CANDIDATE = default_ruleset().to_yaml() + (
    "- code: big_amount\n  expression: amount > 300\n  action: review\n  weight: 60\n"
)


@dataclasses.dataclass
class Served:
    server: RunningServer
    folder: Path
    table: pa.Table
    interrupted: str

    @property
    def database(self) -> str:
        return f"sqlite:///{self.folder / 'data' / 'fraudstream.db'}"

    @property
    def registry(self) -> Registry:
        return Registry(self.folder / "data" / "models")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module: a weak champion (an IsolationForest, which never saw a label) in its
    registry, a run left 'running' in its database as a killed server leaves it, and four days of
    simulated traffic stored through its API."""
    folder = tmp_path_factory.mktemp("jobs")
    now = int(time.time() * 1000)
    config = SimulationConfig(
        count=3000, seed=9, fraud_rate=0.04, duration_ms=4 * DAY, start_ms=now - 5 * DAY
    )
    table = simulate(config)
    write_table(table, folder / "history.parquet")
    history = dataclasses.replace(load_history(folder / "history.parquet"), label_time_ms=None)
    weak, summary = train(history, "isolation_forest", train_from_ms=None, train_to_ms=None, label_delay_ms=0)
    registry = Registry(folder / "data" / "models")
    registry.save(weak, model_card(weak, summary, {}))
    registry.promote(weak.metadata.version)
    store = Store(f"sqlite:///{folder / 'data' / 'fraudstream.db'}")
    store.upgrade()
    interrupted = store.create_job_run("rescore", "manual", {}, "alice", now - 60_000, status="running")["id"]
    store.close()
    server = start_server(
        folder,
        retrain_after_labels=str(AFTER_LABELS),
        jobs_interval_s="0.2",
        retrain_kind="logistic",  # seconds to train, where LightGBM's search takes tens on a busy machine
        backtest_cron="0 6 * * 1",
    )
    records = records_for_http(table.drop_columns(["is_fraud", "fraud_scenario"]))
    for start in range(0, len(records), 500):
        httpx.post(
            f"{server.url}/v1/transactions", json=records[start : start + 500], timeout=60
        ).raise_for_status()
    try:
        yield Served(server, folder, table, interrupted)
    finally:
        stop(server)


def _get(served: Served, path: str, **params: Any) -> Any:
    answer = httpx.get(f"{served.server.url}{path}", params=params, timeout=10)
    answer.raise_for_status()
    return answer.json()


def _runs(served: Served, job: str) -> list[dict[str, Any]]:
    return list(_get(served, "/v1/jobs", job=job)["items"])


def _ended(served: Served, run_id: str) -> dict[str, Any]:
    wait_for(lambda: _get(served, f"/v1/jobs/{run_id}")["status"] in ("done", "failed"), f"run {run_id}", 120)
    return dict(_get(served, f"/v1/jobs/{run_id}"))


def _label(served: Served, ids: list[str], is_fraud: bool) -> None:
    body = [{"transaction_id": t, "is_fraud": is_fraud} for t in ids]
    answer = httpx.post(f"{served.server.url}/v1/labels", json=body, timeout=30)
    assert answer.json()["accepted"] == len(ids)


def _after_a_look(served: Served) -> None:
    """Wait until the scheduler has looked at the labels once more after now."""
    since = int(time.time() * 1000)
    wait_for(
        lambda: (_get(served, "/v1/jobs/schedule")["checked_at_ms"] or 0) > since, "the scheduler's look"
    )


def test_a_run_left_running_by_a_killed_server_is_failed_at_start(served: Served) -> None:
    run = _get(served, f"/v1/jobs/{served.interrupted}")
    assert run["status"] == "failed"
    assert run["error"] == "interrupted by a restart"
    assert run["finished_at_ms"] is not None


def test_retrain_fires_after_n_labels_and_promotes_only_a_better_model(served: Served) -> None:
    weak = served.registry.roles()["champion"]
    frauds = labels_for(served.table).column("transaction_id").to_pylist()
    assert len(frauds) > AFTER_LABELS
    _label(served, frauds[: AFTER_LABELS - 1], True)
    _after_a_look(served)
    assert _runs(served, "retrain") == []  # one label short
    _label(served, frauds[AFTER_LABELS - 1 :], True)
    wait_for(lambda: bool(_runs(served, "retrain")), "a retrain after the labels")
    first = _ended(served, _runs(served, "retrain")[0]["id"])
    assert (first["trigger"], first["status"], first["actor"]) == ("labels", "done", "scheduler")
    result = first["result"]
    # The supervised challenger beats the champion that never saw a label, on the same holdout.
    assert result["champion_average_precision"] is not None
    assert result["challenger_average_precision"] >= result["champion_average_precision"] + result["margin"]
    assert result["promoted"] is True
    assert served.registry.roles()["champion"] == result["version"] != weak
    wait_for(lambda: _get(served, "/v1/models")["scoring"] == result["version"], "the engine's new champion")
    audit = Store(served.database).audit_entries(subject=result["version"])
    assert [(e["actor"], e["action"]) for e in audit] == [("scheduler", "model_champion")]

    # N labels that say what the history already held (unlabelled is legitimate): the next challenger
    # learns exactly what the champion learnt, so it is not better by the margin, and is not promoted.
    labelled = set(frauds)
    legit = [r for r in served.table.column("transaction_id").to_pylist() if r not in labelled][:AFTER_LABELS]
    _label(served, legit, False)
    wait_for(lambda: len(_runs(served, "retrain")) == 2, "a second retrain after the labels")
    second = _ended(served, _runs(served, "retrain")[0]["id"])
    assert (second["trigger"], second["status"]) == ("labels", "done")
    assert second["result"]["challenger_average_precision"] == result["challenger_average_precision"]
    assert second["result"]["champion_average_precision"] == result["challenger_average_precision"]
    assert second["result"]["promoted"] is False
    roles = served.registry.roles()
    assert roles["champion"] == result["version"]
    assert second["result"]["version"] in roles["challengers"]
    schedule = {job["job"]: job for job in _get(served, "/v1/jobs/schedule")["jobs"]}
    assert schedule["retrain"]["after_labels"] == AFTER_LABELS
    assert schedule["retrain"]["labels_since_last"] == 0

    # From the command line (cron), with a margin of -1 that promotes whatever the challenger: the
    # promotion is audited as the command's user's.
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("FRAUDSTREAM_DATA_DIR", str(served.folder / "data"))
        promoted = CliRunner().invoke(app, ["jobs", "run", "retrain", "--kind", "logistic", "--margin", "-1"])
    assert promoted.exit_code == 0, promoted.output
    assert " promoted: average precision" in promoted.output
    champion = served.registry.roles()["champion"]
    assert champion != result["version"]
    audit = Store(served.database).audit_entries(subject=champion)
    assert [e["action"] for e in audit] == ["model_champion"]
    assert audit[0]["actor"].startswith("cli")
    assert _runs(served, "retrain")[0]["trigger"] == "cli"


def test_a_rescore_report_equals_the_backtest_computed_directly(served: Served) -> None:
    start_ms = int(served.table.column("timestamp")[0].value) + 2 * DAY
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_ms // 1000))
    body = {"from": start, "rules": CANDIDATE}
    queued = httpx.post(f"{served.server.url}/v1/jobs/rescore/run", json=body, timeout=10)
    assert queued.status_code == 202, queued.text
    busy = httpx.post(f"{served.server.url}/v1/jobs/rescore/run", json=body, timeout=10)
    assert busy.status_code == 409, busy.text  # the first run is still queued or running
    assert busy.json()["run"]["status"] == "skipped"
    run = _ended(served, queued.json()["id"])
    assert run["status"] == "done", run["error"]
    report = run["result"]

    store = Store(served.database)
    settings = Settings(card_key="test-card-key")
    names = default_names(settings.engine_config().features)
    version, text = store.active_ruleset() or (0, "")
    current = dataclasses.replace(load_ruleset(text, names), version=version)
    candidate = load_ruleset(CANDIDATE, names)
    roles = served.registry.roles()
    model = served.registry.load("champion", settings.engine_config().features.feature_names)
    assert report["model"] == roles["champion"] == model.metadata.version
    history = history_from_store(store, report["from_ms"] - WARM_UP_MS, report["to_ms"])
    config = engine_config(0, settings.engine_config())

    def direct(rules: Any) -> Any:
        found = backtest(
            history, rules, model=model, label_delay_ms=0, from_ms=report["from_ms"], config=config
        )
        return finite(found)

    assert report["candidate"] == direct(candidate)
    assert report["current"] == direct(current)
    assert report["transactions"] == int((history.batch.timestamp_ms >= report["from_ms"]).sum()) > 0
    changes = report["changes"]
    flagged = report["candidate"]["policy"]["flagged"] - report["current"]["policy"]["flagged"]
    assert changes["alerts_gained"] - changes["alerts_lost"] == flagged
    assert changes["alerts_gained"] > 0  # amount > 300 flags transactions the default set approved
    assert report["comparison"]["rules"][-1]["code"] == "big_amount"
    assert report["comparison"]["rules"][-1]["change"] == "added"


def test_the_schedule_shows_the_next_fire_times_of_its_cron(served: Served) -> None:
    schedule = _get(served, "/v1/jobs/schedule", count=4)
    jobs = {job["job"]: job for job in schedule["jobs"]}
    assert jobs["backtest_report"]["cron"] == "0 6 * * 1"
    assert jobs["backtest_report"]["next_runs_ms"] == next_fires_ms("0 6 * * 1", schedule["now_ms"], 4)
    assert all(time.gmtime(t / 1000).tm_wday == 0 for t in jobs["backtest_report"]["next_runs_ms"])
    assert jobs["retrain"]["cron"] is None
    assert jobs["retrain"]["next_runs_ms"] == []


def test_invalid_parameters_are_refused_naming_the_field(served: Served) -> None:
    answer = httpx.post(f"{served.server.url}/v1/jobs/rescore/run", json={"rules_version": 1}, timeout=10)
    assert answer.status_code == 422
    assert "from: Field required" in answer.json()["detail"]
    answer = httpx.post(f"{served.server.url}/v1/jobs/backtest_report/run", json={"days": -1}, timeout=10)
    assert answer.status_code == 422
    assert "days: Input should be greater than 0" in answer.json()["detail"]


def test_jobs_run_from_the_command_line_records_its_run_and_exits_0_or_1(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(served.folder / "data"))
    monkeypatch.setenv("FRAUDSTREAM_BACKTEST_CRON", "")
    done = CliRunner().invoke(app, ["jobs", "run", "backtest_report", "--days", "7", "--json"])
    assert done.exit_code == 0, done.output
    run = _get(served, "/v1/jobs", job="backtest_report")["items"][0]
    assert (run["trigger"], run["status"]) == ("cli", "done")
    result = _get(served, f"/v1/jobs/{run['id']}")["result"]
    assert result["transactions"] == served.table.num_rows  # all within the last 7 days
    assert result["report"]["policy"]["transactions"] == served.table.num_rows

    failed = CliRunner().invoke(
        app, ["jobs", "run", "rescore", "--from", "2026-01-01T00:00:00Z", "--rules-version", "99"]
    )
    assert failed.exit_code == 1, failed.output
    assert "no stored rule set version 99" in failed.output
    assert _get(served, "/v1/jobs", job="rescore")["items"][0]["status"] == "failed"


def test_a_bad_cron_expression_is_refused_naming_its_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="retrain_cron '61 \\* \\* \\* \\*' is not a cron expression"):
        Settings(demo=True, retrain_cron="61 * * * *")
    result = CliRunner().invoke(
        app,
        ["jobs", "run", "backtest_report"],
        env={"FRAUDSTREAM_DATA_DIR": str(tmp_path), "FRAUDSTREAM_BACKTEST_CRON": "every monday"},
    )
    assert result.exit_code == 2
    assert "backtest_cron" in result.output


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_job_runs_are_stored_alike_on_sqlite_and_postgresql(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from fraudstream.ml.jobs import labels_since_retrain, new_run, parse_params

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    if database == "postgresql":
        url = request.getfixturevalue("empty_postgres_url")
    store = Store(url)
    try:
        store.upgrade()
        params = parse_params("retrain", {"days": 7})
        first = new_run(store, "retrain", params, "labels", "scheduler", 1_000)
        assert (first["status"], first["params"]) == ("queued", {"days": 7.0, "labels_up_to": 0})
        second = new_run(store, "retrain", params, "schedule", "scheduler", 2_000)
        assert second["status"] == "skipped"
        assert first["id"] in second["error"]
        store.start_job_run(first["id"], 3_000)
        store.job_run_progress(first["id"], 1.7)
        assert store.get_job_run(first["id"])["progress"] == 1.0  # bounded to 0..1
        assert [r["id"] for r in store.list_job_runs(statuses=["running"])] == [first["id"]]
        assert store.fail_interrupted_job_runs(4_000) == 1
        failed = store.get_job_run(first["id"])
        assert (failed["status"], failed["error"], failed["finished_at_ms"]) == (
            "failed",
            "interrupted by a restart",
            4_000,
        )
        assert [r["id"] for r in store.list_job_runs(job="retrain")] == [second["id"], first["id"]]
        assert labels_since_retrain(store) == 0
        third = new_run(
            store,
            "rescore",
            parse_params("rescore", {"from": "2026-01-01T00:00:00Z", "rules_version": 1}),
            "manual",
            "alice",
            5_000,
        )
        store.finish_job_run(third["id"], {"changes": {"decisions_changed": 3}}, 6_000)
        assert store.get_job_run(third["id"])["result"] == {"changes": {"decisions_changed": 3}}
    finally:
        store.close()
