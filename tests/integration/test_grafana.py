"""deploy/grafana against real services: every PromQL expression of the dashboard answers from a real
Prometheus scraping a running `fraudstream serve` and `fraudstream worker`, every SQL query of it runs
on the server's PostgreSQL, and the trend views it reads hold the right figures on SQLite and
PostgreSQL alike."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
import yaml
from alembic import command
from alembic.config import Config
from confluent_kafka import Producer

from fraudstream.config import DEMO_CARD_KEY
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import records_for_http
from fraudstream.storage.tables import alerts, decisions, labels
from kafka_broker import create_topic
from servers import RunningServer, free_port, start_server, stop

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARD = DEPLOY / "dashboards" / "fraudstream.json"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "grafana.md"
VIEWS = ("trend_decisions_minute", "trend_alerts_minute", "trend_labels_minute", "trend_rules_minute")
PROMETHEUS_HOW_TO_INSTALL = (
    "prometheus is missing: run `./scripts/install-promtool` (apt-get install -y prometheus; "
    "it brings /usr/bin/prometheus with promtool)"
)
#: What Grafana puts for the dashboard's variables when it sends a PromQL query: a rate window of a
#: minute (the traffic of the test falls inside it), all jobs (the values of the Job variable, as
#: Grafana joins them), the decisions that raise an alert.
PROMQL_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
    "job": "(fraudstream-server|fraudstream-worker)",
}


# --- the dashboard and its provisioning -----------------------------------------------------------


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def targets(node: Any) -> Iterator[dict[str, Any]]:
    """Every query target of the dashboard, in rows and panels at any depth."""
    if isinstance(node, dict):
        if "refId" in node and ("expr" in node or "rawSql" in node):
            yield node
        for value in node.values():
            yield from targets(value)
    elif isinstance(node, list):
        for item in node:
            yield from targets(item)


def promql_of(expr: str) -> str:
    """``expr`` with Grafana's variables replaced as Grafana would; an unknown one fails the test."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in PROMQL_VARIABLES:
            pytest.fail(f"the dashboard uses ${name}, which this test cannot stand in for: {expr}")
        return PROMQL_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def sql_of(raw: str, start: datetime, end: datetime) -> str:
    """``raw`` with ``$__timeFilter(column)`` written as Grafana's PostgreSQL data source writes it;
    any other macro or variable fails the test."""
    between = f"BETWEEN '{start:%Y-%m-%dT%H:%M:%SZ}' AND '{end:%Y-%m-%dT%H:%M:%SZ}'"
    query = re.sub(r"\$__timeFilter\(([\w.\"]+)\)", rf"\1 {between}", raw)
    if "$" in query:
        pytest.fail(f"the dashboard's SQL uses a macro this test cannot stand in for: {raw}")
    return query


def promql_targets() -> list[str]:
    return [t["expr"] for t in targets(dashboard()["panels"]) if "expr" in t]


def sql_targets() -> list[str]:
    return [t["rawSql"] for t in targets(dashboard()["panels"]) if "rawSql" in t]


def test_the_dashboard_queries_what_the_runtimes_expose_and_the_views_hold() -> None:
    board = dashboard()
    assert board["uid"] == "fraudstream"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["prometheus"]["type"] == variables["postgresql"]["type"] == "datasource"
    for target in targets(board["panels"]):
        expected = "${prometheus}" if "expr" in target else "${postgresql}"
        assert target["datasource"]["uid"] == expected, target
    promql = " ".join(promql_targets())
    for metric in (
        "fraudstream_decisions_total",
        "fraudstream_decision_latency_seconds_bucket",
        "fraudstream_rule_hits_total",
        "fraudstream_score_bucket",
        "fraudstream_worker_consumer_lag",
        "fraudstream_worker_checkpoint_age_seconds",
        "fraudstream_sink_outbox_depth",
    ):
        assert metric in promql, f"no panel shows {metric}"
    assert "histogram_quantile(0.99, sum by (le) (rate(" in promql
    sql = " ".join(sql_targets())
    for view in VIEWS:
        assert view in sql, f"no panel reads {view}"


def test_the_provisioning_files_name_the_dashboards_data_sources_and_folder() -> None:
    sources = yaml.safe_load((DEPLOY / "provisioning" / "datasources" / "fraudstream.yaml").read_text())
    by_type = {source["type"]: source for source in sources["datasources"]}
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    for variable, kind in (("prometheus", "prometheus"), ("postgresql", "grafana-postgresql-datasource")):
        assert variables[variable]["query"] == kind
        assert variables[variable]["current"]["value"] == by_type[kind]["uid"]
    postgresql = by_type["grafana-postgresql-datasource"]
    assert postgresql["jsonData"]["database"]
    # The password only from Grafana's environment, never written in the file.
    assert "password" not in postgresql
    assert "password" not in postgresql["jsonData"]
    assert postgresql["secureJsonData"]["password"] == "$__env{FRAUDSTREAM_GRAFANA_DB_PASSWORD}"
    providers = yaml.safe_load((DEPLOY / "provisioning" / "dashboards" / "fraudstream.yaml").read_text())
    path = providers["providers"][0]["options"]["path"]
    assert providers["providers"][0]["type"] == "file"
    assert path.startswith("/")
    assert path in DOCS.read_text(), "docs/grafana.md should say where to put deploy/grafana/dashboards"


# --- a real Prometheus scraping a real server and worker ------------------------------------------


@dataclass
class Stack:
    """A server on PostgreSQL and a Kafka worker, both with traffic decided, and a Prometheus that
    scraped them after each wave of traffic."""

    prometheus: str
    database_url: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert answer["status"] == "success", f"{promql}: {answer}"
        result = answer["data"]["result"]
        if answer["data"]["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return list(result)


def poll(what: str, check: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout_s:g} s")
        time.sleep(0.2)


def scraped_total(stack: Stack, metric: str, job: str) -> float:
    found = stack.query(f'sum({metric}{{job="{job}"}})')
    return float(found[0]["value"][1]) if found else 0.0


def start_worker(broker: str, topic: str, folder: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FRAUDSTREAM_CARD_KEY": DEMO_CARD_KEY,
        "FRAUDSTREAM_DATA_DIR": str(folder / "data"),
        "FRAUDSTREAM_KAFKA_CONTROL_TOPIC": "",
    }
    command = [
        sys.executable, "-m", "fraudstream", "worker", "--brokers", broker, "--group", f"g-{topic}",
        "--topic", topic, "--checkpoint-dir", str(folder / "checkpoints"), "--checkpoint-interval", "0.5",
        "--metrics-port", str(port),
    ]  # fmt: skip
    with (folder / "worker.log").open("wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def start_prometheus(folder: Path, server: str, worker: str) -> tuple[subprocess.Popen[bytes], str]:
    """Prometheus scraping the server and the worker every second, its data in ``folder``."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        pytest.fail(PROMETHEUS_HOW_TO_INSTALL)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "fraudstream-server", "static_configs": [{"targets": [server]}]},
            {"job_name": "fraudstream-worker", "static_configs": [{"targets": [worker]}]},
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        binary,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'tsdb'}",
        f"--web.listen-address={url.removeprefix('http://')}",
    ]
    with (folder / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    return process, url


def targets_up(prometheus: str) -> bool:
    try:
        active = httpx.get(f"{prometheus}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
    except (httpx.HTTPError, ValueError):
        return False
    return len(active) == 2 and all(t["health"] == "up" for t in active)


def send_to_server(server: RunningServer, records: list[dict[str, Any]]) -> None:
    for start in range(0, len(records), 100):
        answer = httpx.post(f"{server.url}/v1/transactions", json=records[start : start + 100], timeout=30)
        assert answer.status_code in (200, 201), answer.text


def produce(broker: str, topic: str, records: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 5})
    for record in records:
        producer.produce(topic, key=str(record["user_id"]).encode(), value=orjson.dumps(record))
    producer.flush()


def label_and_review(server: RunningServer, records: list[dict[str, Any]], is_fraud: list[bool]) -> None:
    """Confirmed fraud for the simulated frauds, one false alarm, and analysts' verdicts on alerts."""
    found = [{"transaction_id": r["transaction_id"], "is_fraud": f} for r, f in zip(records, is_fraud) if f]
    found.append({"transaction_id": records[0]["transaction_id"], "is_fraud": False})
    assert httpx.post(f"{server.url}/v1/labels", json=found, timeout=30).status_code == 200
    raised = httpx.get(f"{server.url}/v1/alerts", timeout=10).json()["items"]
    assert len(raised) >= 2, "the simulated traffic raised fewer than two alerts"
    for alert, verdict in zip(raised[:2], ("fraud", "legit")):
        reviewed = httpx.post(
            f"{server.url}/v1/alerts/{alert['transaction_id']}/review", json={"verdict": verdict}, timeout=10
        )
        assert reviewed.status_code == 200, reviewed.text


def wait_until_scraped(stack: Stack, server_decisions: int, worker_decisions: int) -> None:
    """Until Prometheus holds a sample of each runtime's decisions counter at these totals."""

    def seen() -> bool:
        return (
            scraped_total(stack, "fraudstream_decisions_total", "fraudstream-server") == server_decisions
            and scraped_total(stack, "fraudstream_decisions_total", "fraudstream-worker") == worker_decisions
        )

    poll("prometheus did not see every decision of the server and the worker", seen)


@pytest.fixture(scope="module")
def stack(broker: str, module_postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    database_url = module_postgres_url
    folder = tmp_path_factory.mktemp("grafana")
    topic = f"tx-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic, 2)
    worker_port = free_port()
    with ExitStack() as running:
        worker = start_worker(broker, topic, folder, worker_port)
        running.callback(end, worker)
        # The decisions and alerts topics as a sink: the sink panels have a sink to show.
        server = start_server(folder / "server", database_url=database_url, kafka_outputs=broker)
        running.callback(stop, server)
        prometheus, prometheus_url = start_prometheus(
            folder, server.url.removeprefix("http://"), f"127.0.0.1:{worker_port}"
        )
        running.callback(end, prometheus)
        stack = Stack(prometheus_url, database_url)
        poll("prometheus did not scrape both the server and the worker", lambda: targets_up(prometheus_url))
        table = simulate(SimulationConfig(count=800, seed=21, fraud_rate=0.05, duration_ms=86_400_000))
        is_fraud = table.column("is_fraud").to_pylist()
        records = records_for_http(table.drop_columns(["is_fraud", "fraud_scenario"]))
        for_server, for_worker = records[:500], records[500:]
        # Two waves, each scraped: rates and latency quantiles need a change between two samples.
        produce(broker, topic, for_worker[:150])
        send_to_server(server, for_server[:250])
        wait_until_scraped(stack, 250, 150)
        produce(broker, topic, for_worker[150:])
        send_to_server(server, for_server[250:])
        wait_until_scraped(stack, 500, 300)
        label_and_review(server, for_server, is_fraud[:500])
        yield stack


def end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process has not stopped within 15 s."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_every_promql_expression_of_the_dashboard_answers_from_prometheus(stack: Stack) -> None:
    expressions = promql_targets()
    assert len(expressions) >= 20
    empty = []
    for expr in expressions:
        values = [float(sample["value"][1]) for sample in stack.query(promql_of(expr))]
        if not any(math.isfinite(v) for v in values):
            empty.append(f"{expr} -> {values or 'no series'}")
    assert not empty, "panels that would show nothing:\n" + "\n".join(empty)


def test_the_job_variable_lists_the_server_and_the_worker(stack: Stack) -> None:
    answer = httpx.get(
        f"{stack.prometheus}/api/v1/label/job/values",
        params={"match[]": "fraudstream_build_info"},
        timeout=10,
    ).json()
    assert answer["data"] == ["fraudstream-server", "fraudstream-worker"]


def test_every_sql_query_of_the_dashboard_runs_on_postgresql_and_returns_rows(stack: Stack) -> None:
    queries = sql_targets()
    assert len(queries) >= 6
    now = datetime.now(UTC)
    engine = sa.create_engine(stack.database_url)
    empty = []
    try:
        with engine.connect() as connection:
            for raw in queries:
                rows = (
                    connection.execute(sa.text(sql_of(raw, now - timedelta(hours=1), now))).mappings().all()
                )
                values = [v for row in rows for name, v in row.items() if name != "time"]
                if not any(v is not None for v in values):
                    empty.append(f"{raw} -> {rows}")
            rate = connection.execute(
                sa.text(
                    sql_of(next(q for q in queries if '"fraud rate"' in q), now - timedelta(hours=1), now)
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert not empty, "panels that would show nothing:\n" + "\n".join(empty)
    assert 0 < rate < 1, "the labels sent should give a confirmed fraud rate"


# --- the views themselves, on both databases -------------------------------------------------------

MINUTE = 1_800_000_000_000  # a minute's start, in ms
NEXT = MINUTE + 60_000


def decision_row(tid: str, at: int, decision: str, score: int, alert: bool, **extra: Any) -> dict[str, Any]:
    return {
        "transaction_id": tid,
        "decision": decision,
        "score": score,
        "probability": None,
        "is_alert": alert,
        "reasons": "[]",
        "rules": "[]",
        "shadow_rules": "[]",
        "features": "{}",
        "model_version": None,
        "ruleset_version": 1,
        "latency_ms": None,
        "decided_at_ms": at,
        **extra,
    }


def alert_row(tid: str, at: int, score: int, status: str, verdict: str | None) -> dict[str, Any]:
    return {
        "transaction_id": tid,
        "user_id": "u1",
        "amount": 100.0,
        "score": score,
        "decision": "review",
        "reasons": "[]",
        "status": status,
        "assignee": None,
        "verdict": verdict,
        "note": None,
        "created_at_ms": at,
        "updated_at_ms": at,
    }


def fill(connection: sa.Connection) -> None:
    """Three decisions in one minute and one in the next, two alerts, labels (one reversed later)."""
    connection.execute(
        sa.insert(decisions),
        [
            decision_row("t1", MINUTE + 1_000, "approve", 10, False, latency_ms=2.0),
            decision_row(
                "t2",
                MINUTE + 30_000,
                "review",
                70,
                True,
                latency_ms=4.0,
                rules='["large_amount", "geo_velocity"]',
                shadow_rules='["night_owl"]',
            ),
            decision_row("t3", MINUTE + 59_999, "decline", 95, True, rules='["large_amount"]'),
            decision_row("t4", NEXT, "approve", 20, False, latency_ms=1.0, shadow_rules='["night_owl"]'),
        ],
    )
    connection.execute(
        sa.insert(alerts),
        [
            alert_row("t2", MINUTE + 30_000, 70, "open", None),
            alert_row("t3", MINUTE + 59_999, 95, "closed", "legit"),
        ],
    )
    label = {"label_time_ms": NEXT, "source": "test", "note": None, "actor": None}
    connection.execute(
        sa.insert(labels),
        [
            {"transaction_id": "t2", "is_fraud": True, **label},
            {"transaction_id": "t3", "is_fraud": True, **label},
            {"transaction_id": "t3", "is_fraud": False, **label},  # reversed: t3 was legitimate
            {"transaction_id": "t4", "is_fraud": True, **label},
        ],
    )


def view(connection: sa.Connection, name: str, *order: str) -> list[dict[str, Any]]:
    query = f"SELECT * FROM {name} ORDER BY {', '.join(('minute_ms', *order))}"
    return [dict(row) for row in connection.execute(sa.text(query)).mappings()]


def migrations() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("fraudstream.storage") / "migrations"))
    return config


@pytest.fixture(params=["sqlite", "postgresql"])
def upgraded_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database brought to the newest schema by `fraudstream db upgrade`, as a user does it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'trends.db'}"
    else:
        url = request.getfixturevalue("empty_postgres_url")
    env = {**os.environ, "FRAUDSTREAM_DATABASE_URL": url, "FRAUDSTREAM_DATA_DIR": str(tmp_path / "data")}
    upgraded = subprocess.run(
        [sys.executable, "-m", "fraudstream", "db", "upgrade"], env=env, capture_output=True, text=True
    )
    assert upgraded.returncode == 0, upgraded.stderr
    return url


def test_trend_views_count_each_minute_alike_on_sqlite_and_postgresql(upgraded_url: str) -> None:
    engine = sa.create_engine(upgraded_url)
    try:
        with engine.begin() as connection:
            fill(connection)
        with engine.connect() as connection:
            by_decision = view(connection, "trend_decisions_minute")
            by_alert = view(connection, "trend_alerts_minute")
            by_label = view(connection, "trend_labels_minute")
            by_rule = view(connection, "trend_rules_minute", "rule")
    finally:
        engine.dispose()
    start = datetime.fromtimestamp(MINUTE / 1000, UTC)
    # PostgreSQL answers a timestamptz (date_bin), SQLite the same instant as UTC text.
    shown = start if upgraded_url.startswith("postgresql") else f"{start:%Y-%m-%d %H:%M:%S}"
    assert by_decision[0]["minute"] == shown
    assert [{k: v for k, v in row.items() if k != "minute"} for row in by_decision] == [
        {
            "minute_ms": MINUTE, "decisions": 3, "approve": 1, "challenge": 0, "review": 1, "decline": 1,
            "alerts": 2, "alert_rate": pytest.approx(2 / 3), "mean_score": pytest.approx(175 / 3),
            "max_score": 95, "timed": 2, "mean_latency_ms": 3.0, "max_latency_ms": 4.0,
        },
        {
            "minute_ms": NEXT, "decisions": 1, "approve": 1, "challenge": 0, "review": 0, "decline": 0,
            "alerts": 0, "alert_rate": 0.0, "mean_score": 20.0, "max_score": 20, "timed": 1,
            "mean_latency_ms": 1.0, "max_latency_ms": 1.0,
        },
    ]  # fmt: skip
    assert [{k: v for k, v in row.items() if k != "minute"} for row in by_alert] == [
        {
            "minute_ms": MINUTE, "alerts": 2, "open_alerts": 1, "in_review": 0, "closed": 1,
            "verdict_fraud": 0, "verdict_legit": 1, "mean_score": 82.5, "max_score": 95, "amount": 200.0,
        }
    ]  # fmt: skip
    assert [(r["minute_ms"], r["decisions"], r["labelled"], r["confirmed_fraud"]) for r in by_label] == [
        (MINUTE, 3, 2, 1),  # t3's latest label says legitimate
        (NEXT, 1, 1, 1),
    ]
    assert [(r["fraud_alerted"], r["legit_alerted"], r["fraud_rate"]) for r in by_label] == [
        (1, 1, pytest.approx(1 / 3)),
        (0, 0, 1.0),
    ]
    assert [(r["minute_ms"], r["rule"], r["hits"], r["shadow_hits"]) for r in by_rule] == [
        (MINUTE, "geo_velocity", 1, 0),
        (MINUTE, "large_amount", 2, 0),
        (MINUTE, "night_owl", 0, 1),
        (NEXT, "night_owl", 0, 1),
    ]


def test_downgrade_drops_the_trend_views_and_upgrade_brings_them_back(upgraded_url: str) -> None:
    engine = sa.create_engine(upgraded_url)
    config = migrations()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0004")
        assert not set(VIEWS) & set(sa.inspect(engine).get_view_names())
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        assert set(VIEWS) <= set(sa.inspect(engine).get_view_names())
    finally:
        engine.dispose()
