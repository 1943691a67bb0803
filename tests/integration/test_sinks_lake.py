"""The data lake from a real server: zstd Parquet in date partitions, in a folder and on S3 (moto's
server, started here), read back to exactly the transactions sent, across a kill -9, an S3 outage and
a shutdown; and the training commands reading a lake."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from factories import transaction
from servers import RunningServer, free_port, sink_failing, start_server, stop, wait_for

pytestmark = pytest.mark.integration

#: Over the built-in rule `huge_amount`'s 50,000: a decline, so an alert.
ALERTING = 75_000.0
CARD = "4111111111111111"
DAY_MS = 86_400_000
#: 2026-01-01T00:00:00Z, where the simulator starts too.
START_MS = 1_767_225_600_000


def handmade(prefix: str, count: int, first_ms: int) -> list[dict[str, Any]]:
    """Transactions spread over three days: one in five alerting, one in three with a card number,
    one in four with extra fields (nested, and one holding a card number, which is kept masked)."""
    records = []
    for i in range(count):
        extra: dict[str, Any] = {}
        if i % 3 == 0:
            extra["card_number"] = CARD
        if i % 4 == 0:
            extra |= {"loyalty_tier": "gold", "basket": {"items": i, "tags": ["a", "b"]}, "memo": CARD}
        at = datetime.fromtimestamp((first_ms + i * (3 * DAY_MS // count)) / 1000, UTC)
        amount = ALERTING if i % 5 == 0 else 20.0 + i
        records.append(
            transaction(f"{prefix}{i}", f"user-{prefix}{i % 7}", amount, timestamp=at.isoformat(), **extra)
        )
    return records


def send(server: RunningServer, records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """POST in lists of 500; every request answered 200 and each transaction scored: the answers by id."""
    answers = {}
    for start in range(0, len(records), 500):
        answer = httpx.post(f"{server.url}/v1/transactions", json=records[start : start + 500], timeout=60)
        assert answer.status_code == 200, answer.text
        for result in answer.json()["results"]:
            assert result["status"] == "scored", result
            answers[result["transaction_id"]] = result
    return answers


def read_lake(root: str, filesystem: pafs.FileSystem | None = None) -> tuple[pa.Table, pa.Table]:
    """Both folders of a lake as a reader would take them: Hive-partitioned Parquet datasets."""
    filesystem = filesystem or pafs.LocalFileSystem()
    tables = []
    for folder in ("raw/transactions", "decisions"):
        found = filesystem.get_file_info(f"{root}/{folder}").type == pafs.FileType.Directory
        if not found:
            tables.append(pa.table({}))
            continue
        dataset = ds.dataset(f"{root}/{folder}", filesystem=filesystem, partitioning="hive")
        # A day's folder may hold only a file still being written (a hidden name readers skip).
        tables.append(dataset.to_table().sort_by("seq") if dataset.files else pa.table({}))
    return tables[0], tables[1]


def ids_in(root: str, filesystem: pafs.FileSystem | None = None) -> list[str]:
    transactions, _ = read_lake(root, filesystem)
    return transactions.column("transaction_id").to_pylist() if transactions.num_columns else []


def time_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def assert_lake_holds_exactly(
    transactions: pa.Table,
    decisions: pa.Table,
    sent: list[dict[str, Any]],
    answers: dict[str, dict[str, Any]],
) -> None:
    """Each sent transaction once, as sent (card number aside), its decision as the API answered."""
    rows = {row["transaction_id"]: row for row in transactions.to_pylist()}
    assert transactions.num_rows == len(rows), "a transaction is in the lake more than once"
    assert set(rows) == {record["transaction_id"] for record in sent}
    for record in sent:
        row = rows[record["transaction_id"]]
        assert (row["user_id"], row["amount"]) == (record["user_id"], record["amount"])
        assert int(row["timestamp"].timestamp() * 1000) == time_ms(record["timestamp"])
        # The partition is the UTC day of the transaction's own time.
        assert row["date"] == row["timestamp"].astimezone(UTC).date().isoformat()
        if "card_number" in record:
            number = record["card_number"]
            assert (row["card_bin"], row["card_last4"]) == (number[:6], number[-4:])
            assert len(row["card_fingerprint"]) >= 32
        if "loyalty_tier" in record:
            extra = json.loads(row["attributes"])
            assert extra["loyalty_tier"] == "gold"
            assert extra["basket"] == record["basket"]
            assert extra["memo"] != CARD, "a card number in an extra field is masked"
    assert decisions.column("transaction_id").to_pylist() == transactions.column("transaction_id").to_pylist()
    for decision in decisions.to_pylist():
        answer = answers[decision["transaction_id"]]
        for name in ("decision", "score", "probability", "is_alert", "rules", "model_version"):
            assert decision[name] == answer[name], name
        assert decision["ruleset_version"] == answer["ruleset_version"]
        assert json.loads(decision["reasons"]) == answer["reasons"]
        assert int(decision["decided_at"].timestamp() * 1000) == answer["decided_at_ms"]
        assert decision["date"] == rows[decision["transaction_id"]]["date"]
    assert {d["decision"] for d in decisions.to_pylist()} >= {"approve", "decline"}
    everything = str(transactions.to_pylist()) + str(decisions.to_pylist())
    assert not {r["card_number"] for r in sent if "card_number" in r} & set(
        re.findall(r"\d{12,19}", everything)
    )


# --- a folder -------------------------------------------------------------------------------------


@dataclass
class FolderLake:
    """What the folder-lake run sent, was answered and saw; the lake and the labels of its traffic."""

    lake: Path
    #: The servers' data folder: their database holds the labels too.
    data: Path
    labels: Path
    sent: list[dict[str, Any]]
    answers: dict[str, dict[str, Any]]
    #: Rows the first server had written when it was killed, and how many it still buffered.
    written_before_kill: int
    buffered_at_kill: int


@pytest.fixture(scope="module")
def folder_lake(tmp_path_factory: pytest.TempPathFactory) -> FolderLake:
    """A server writing a lake folder (files of 700 rows or more, no timed flush) takes simulated traffic and
    handmade transactions, and is killed (SIGKILL) with rows buffered; a second one on the same data
    takes more and is stopped (SIGTERM)."""
    from fraudstream.sim.generator import SimulationConfig, labels_for, simulate
    from fraudstream.sim.output import records_for_http

    folder = tmp_path_factory.mktemp("folder-lake")
    lake, data = folder / "lake", folder / "data"
    settings = {"lake_url": str(lake), "lake_flush_s": "3600", "data_dir": str(data)}
    traffic = simulate(SimulationConfig(count=1_200, fraud_rate=0.05, duration_ms=3 * DAY_MS))
    pq.write_table(labels_for(traffic), folder / "labels.parquet")
    simulated = records_for_http(traffic.drop_columns(["is_fraud", "fraud_scenario"]))
    buffered, later = handmade("b", 30, START_MS), handmade("c", 20, START_MS + DAY_MS)
    first = simulated + buffered

    server = start_server(folder / "first", **settings, lake_file_rows="700")
    try:

        def written_and_the_rest_buffered(sent: int, least: int) -> Callable[[], bool]:
            def check() -> bool:
                behind = httpx.get(f"{server.url}/readyz", timeout=5).json()["sinks"]["lake"]["behind"]
                written = len(ids_in(str(lake)))
                return written >= least and behind == sent - written

            return check

        answers = send(server, simulated)
        # Files of at least 700 rows, so fewer than 700 - 30 rows are left waiting ...
        wait_for(written_and_the_rest_buffered(len(simulated), 700), "files rolled by size, the rest read")
        written = len(ids_in(str(lake)))
        answers |= send(server, buffered)
        # ... and the next 30 wait with them, read but not written (no timed flush).
        wait_for(written_and_the_rest_buffered(len(first), written), "the next transactions read")
        assert len(ids_in(str(lake))) == written
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    finally:
        stop(server)
    assert len(ids_in(str(lake))) == written, "a killed server writes nothing more"

    server = start_server(folder / "second", **settings)
    try:
        answers |= send(server, later)
        reported = [
            {"transaction_id": label["transaction_id"], "is_fraud": True, "label_time": label["label_time"]}
            for label in records_for_http(labels_for(traffic).select(["transaction_id", "label_time"]))
        ]
        stored = httpx.post(f"{server.url}/v1/labels", json=reported, timeout=30)
        assert stored.status_code == 200, stored.text
    finally:
        stop(server)  # SIGTERM: the rest of the log, and the buffer, are written before it exits
    # uvicorn ends by raising the signal again once it has shut down: -15 is a clean stop here.
    assert server.process.returncode in (0, -signal.SIGTERM), server.log()[-2000:]
    return FolderLake(
        lake, data, folder / "labels.parquet", first + later, answers, written, len(first) - written
    )


def test_folder_lake_reads_back_each_transaction_once_across_a_kill_9_and_a_shutdown(
    folder_lake: FolderLake,
) -> None:
    assert folder_lake.written_before_kill >= 700, "files rolled by size while the first server ran"
    assert folder_lake.buffered_at_kill >= 30, "the first server was killed with rows buffered"
    transactions, decisions = read_lake(str(folder_lake.lake))
    assert_lake_holds_exactly(transactions, decisions, folder_lake.sent, folder_lake.answers)
    files = sorted(folder_lake.lake.rglob("*"))
    parquet = [f for f in files if f.is_file()]
    assert {f.parent.parent.relative_to(folder_lake.lake).as_posix() for f in parquet} == {
        "raw/transactions",
        "decisions",
    }
    for file in parquet:
        day = file.parent.name.removeprefix("date=")
        assert file.parent.name.startswith("date=")
        assert datetime.strptime(day, "%Y-%m-%d")
        assert file.name.startswith("part-")
        assert file.suffix == ".parquet"
        metadata = pq.ParquetFile(file).metadata
        assert metadata.row_group(0).column(0).compression == "ZSTD"
        assert CARD.encode() not in file.read_bytes()
        # A file is named by the first log position it holds.
        assert int(file.stem.removeprefix("part-")) == pq.read_table(file).column("seq")[0].as_py()


def test_train_evaluate_and_score_read_a_lake_folder_with_labels_from_a_file_or_the_database(
    folder_lake: FolderLake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fraudstream.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner(env={"FRAUDSTREAM_CARD_KEY": "test-card-key"})  # the servers' key
    lake, registry = str(folder_lake.lake), str(tmp_path / "models")
    trained = runner.invoke(
        app,
        [
            *("train", "--data", lake, "--labels", str(folder_lake.labels), "--model", "logistic"),
            *("--registry", registry, "--label-delay", "1d", "--train-to", "2026-01-03T00:00:00+00:00"),
            "--json",
        ],
    )
    assert trained.exit_code == 0, trained.output
    assert f"{lake}: {len(folder_lake.sent):,} transactions read from the lake" in trained.output
    card = json.loads(trained.stdout)
    assert card["training_frauds"] > 0
    assert 0.0 <= card["roc_auc"] <= 1.0

    scored = runner.invoke(
        app, ["score", lake, "--model", "latest", "--registry", registry, "-o", "decisions.jsonl"]
    )
    assert scored.exit_code == 0, scored.output
    lines = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    # Every transaction once, in the order the server decided them.
    assert [line["transaction_id"] for line in lines] == [r["transaction_id"] for r in folder_lake.sent]
    assert {line["model_version"] for line in lines} == {card["version"]}

    one_day = runner.invoke(
        app, ["score", lake, "--data-from", "2026-01-02", "--data-to", "2026-01-02", "--model", "none"]
    )
    assert one_day.exit_code == 0, one_day.output
    on_that_day = sum(r["timestamp"].startswith("2026-01-02") for r in folder_lake.sent)
    assert f"{on_that_day:,} transactions read from the lake" in one_day.output

    frauds = []
    for labels, data in ((str(folder_lake.labels), tmp_path / "data"), ("database", folder_lake.data)):
        monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(data))
        arguments = ["evaluate", "--data", lake, "--labels", labels, "--model", "rules", "--json"]
        evaluated = runner.invoke(app, arguments)
        assert evaluated.exit_code == 0, evaluated.output
        frauds.append(json.loads(evaluated.stdout)["frauds"])
    assert frauds[0] > 0
    assert frauds[0] == frauds[1], "the labels the server stored are the labels of the file"

    (tmp_path / "empty").mkdir()
    for arguments, problem in (
        (
            ["train", "--data", "empty", "--labels", str(folder_lake.labels)],
            "empty is not a fraudstream lake",
        ),
        (
            ["evaluate", "--data", lake, "--model", "rules"],
            "the lake holds no labels; give them with --labels",
        ),
    ):
        refused = runner.invoke(app, arguments)
        assert refused.exit_code == 2, refused.output
        assert problem in " ".join(refused.output.split())


def test_a_write_repeated_from_the_cursor_replaces_files_instead_of_duplicating_rows(tmp_path: Path) -> None:
    """What a crash or a failed write leaves (files written after the last saved cursor, some of a
    write missing) is replaced by the writes that follow from that cursor, whatever their sizes."""
    from fraudstream.sinks.base import LogBatch
    from fraudstream.sinks.lake import LakeSink

    def batch(first: int, last: int) -> LogBatch:
        rows = [log_row(seq) for seq in range(first, last + 1)]
        return LogBatch(list(rows[0]), [tuple(row.values()) for row in rows], last)

    lake = tmp_path / "lake"
    crashed = LakeSink(str(lake), flush_s=3600, file_rows=10_000)
    crashed.deliver(batch(1, 40))
    assert crashed.flush(final=True) == 40
    # The crash came while the decisions of one day were being written: that file never appeared.
    next(iter(sorted((lake / "decisions").glob("date=*/*.parquet")))).unlink()

    again = LakeSink(str(lake), flush_s=3600, file_rows=15)  # the runner reads again from cursor 0
    durable = [again.deliver(batch(first, min(first + 6, 55))) for first in range(1, 56, 7)]
    durable.append(again.flush(final=True))
    assert [seq for seq in durable if seq is not None][-1] == 55
    transactions, decisions = read_lake(str(lake))
    assert transactions.column("seq").to_pylist() == list(range(1, 56))
    assert decisions.column("seq").to_pylist() == list(range(1, 56))


def log_row(seq: int) -> dict[str, Any]:
    """A row as `Store.log_after` hands it over; days interleave, as late events make them."""
    return {
        "seq": seq,
        "transaction_id": f"t{seq}",
        "user_id": "u1",
        "timestamp_ms": START_MS + (seq % 3) * DAY_MS + seq,
        "amount": float(seq),
        "currency": "USD",
        **dict.fromkeys(["merchant_id", "merchant_category", "terminal_id", "channel", "location"]),
        **dict.fromkeys(["lat", "lon", "country", "device_id", "ip", "card_fingerprint", "card_bin"]),
        "card_last4": None,
        "attributes": None,
        "body_hash": "h",
        "received_at_ms": START_MS,
        "decision": "approve",
        "score": 1,
        "probability": None,
        "is_alert": False,
        "reasons": "[]",
        "rules": "[]",
        "shadow_rules": "[]",
        "features": "{}",
        "model_version": None,
        "ruleset_version": 1,
        "latency_ms": 0.5,
        "decided_at_ms": START_MS,
    }


# --- S3 -------------------------------------------------------------------------------------------


class MotoS3:
    """moto's S3 server on a fixed loopback port, in this process: ``stop`` takes the endpoint down,
    ``start`` brings it back on the same port (with the bucket)."""

    def __init__(self, port: int, bucket: str) -> None:
        self.port = port
        self.bucket = bucket
        self.server: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            pytest.fail(f"the S3 test server needs moto: pip install 'moto[server]>=5,<6' ({exc})")
        import boto3

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        client = boto3.client("s3", endpoint_url=self.endpoint)
        # moto in this process keeps its buckets across restarts of the endpoint.
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=self.bucket)

    def stop(self) -> None:
        self.server.stop()

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(
            endpoint_override=self.endpoint, access_key="testing", secret_key="testing", region="us-east-1"
        )


@pytest.fixture
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    s3 = MotoS3(free_port(), "datalake")
    s3.start()
    yield s3
    s3.stop()


def test_s3_lake_reads_back_and_catches_up_exactly_once_after_the_endpoint_was_down(
    moto_s3: MotoS3, run_server: Callable[..., RunningServer]
) -> None:
    server = run_server(
        lake_url=f"s3://{moto_s3.bucket}/fraudstream", s3_endpoint_url=moto_s3.endpoint, lake_flush_s="0.5"
    )
    root, filesystem = f"{moto_s3.bucket}/fraudstream", moto_s3.filesystem()
    sent = handmade("s", 40, START_MS)
    answers = send(server, sent)
    wait_for(lambda: len(ids_in(root, filesystem)) == len(sent), "the first transactions in the S3 lake")
    transactions, decisions = read_lake(root, filesystem)
    assert_lake_holds_exactly(transactions, decisions, sent, answers)

    moto_s3.stop()
    for round_number in range(10):  # every request is still decided while the lake is away
        records = handmade(f"down{round_number}-", 10, START_MS + DAY_MS)
        answers |= send(server, records)
        sent += records
        time.sleep(0.05)

    wait_for(lambda: sink_failing(server, "lake"), "/readyz to say degraded with the lake failing")
    assert httpx.get(f"{server.url}/readyz", timeout=5).json()["sinks"]["lake"]["behind"] > 0
    assert 'fraudstream_sink_up{sink="lake"} 0.0' in httpx.get(f"{server.url}/metrics", timeout=5).text

    moto_s3.start()  # the same port: what the lake missed is written from the log, without a restart
    wait_for(lambda: len(ids_in(root, filesystem)) >= len(sent), "the lake to catch up", timeout_s=45)
    wait_for(lambda: httpx.get(f"{server.url}/readyz", timeout=5).json()["status"] == "healthy", "healthy")
    transactions, decisions = read_lake(root, filesystem)
    assert_lake_holds_exactly(transactions, decisions, sent, answers)
