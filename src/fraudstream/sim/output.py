"""Where simulated traffic goes: Parquet/CSV/JSONL files, or a running server over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import pyarrow as pa

from fraudstream.errors import ConfigError

__all__ = [
    "OUTPUT_FORMATS",
    "batch_for",
    "records_for_http",
    "send_http",
    "send_kafka",
    "writable",
    "write_table",
]

#: What ``write_table`` writes, by file name suffix.
OUTPUT_FORMATS = "write .parquet, .csv or .jsonl (or .json: JSON lines)"


def writable(path: Path) -> bool:
    """Whether ``write_table`` knows the format of ``path`` (by its suffix)."""
    return path.suffix in (".parquet", ".csv", ".jsonl", ".json")


def write_table(table: pa.Table, path: Path) -> None:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif path.suffix == ".csv":
        import pyarrow.csv as pv

        pv.write_csv(table, path)
    elif path.suffix in (".jsonl", ".json"):
        with path.open("w", encoding="utf-8") as file:
            for record in records_for_http(table):
                file.write(json.dumps(record) + "\n")
    else:
        raise ConfigError(f"{path}: {OUTPUT_FORMATS}")


def records_for_http(table: pa.Table) -> list[dict[str, object]]:
    """Rows as the JSON objects a client would send: RFC 3339 times, no empty fields.

    >>> from datetime import datetime, UTC
    >>> records_for_http(pa.table({"timestamp": [datetime(2026, 1, 1, tzinfo=UTC)], "label_time": [None],
    ...     "amount": [5.0]}).cast(pa.schema([("timestamp", pa.timestamp("ms", tz="UTC")),
    ...     ("label_time", pa.timestamp("ms", tz="UTC")), ("amount", pa.float64())])))
    [{'amount': 5.0, 'timestamp': '2026-01-01T00:00:00.000Z'}]
    """
    times = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
    millis = {name: table.column(name).cast(pa.int64()).to_pylist() for name in times}
    records = []
    for i, row in enumerate(table.drop_columns(times).to_pylist()):
        record = {k: v for k, v in row.items() if v is not None}
        for name in times:
            ms = millis[name][i]
            if ms is not None:
                record[name] = _rfc3339(ms)
        records.append(record)
    return records


def _rfc3339(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def batch_for(rate: float) -> int:
    """Rows per request at ``rate`` per second: a tenth of a second's worth, 1 to 50 (50 unpaced),
    so that a slow stream arrives a few events at a time rather than 50 at once then silence.

    >>> batch_for(0), batch_for(2), batch_for(200), batch_for(10_000)
    (50, 1, 20, 50)
    """
    return 50 if rate <= 0 else max(1, min(50, int(rate / 10)))


def send_http(
    table: pa.Table,
    url: str,
    rate: float,
    batch: int | None = None,
    api_key: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> int:
    """POST the rows to ``{url}/v1/transactions`` in small lists (``batch``, or `batch_for` the
    rate), paced at ``rate`` per second; ``progress`` hears ("sending", sent, all) after each list.

    Pacing follows a monotonic schedule (each batch has a due time from the start), so delays do not
    accumulate into drift.
    """
    headers = {"X-API-Key": api_key} if api_key else {}
    batch = batch or batch_for(rate)
    records = records_for_http(table)
    start = time.monotonic()
    sent = 0
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30) as client:
        for offset in range(0, len(records), batch):
            _wait_until_due(start, offset, rate)
            response = client.post("/v1/transactions", json=records[offset : offset + batch])
            response.raise_for_status()
            sent += len(records[offset : offset + batch])
            if progress is not None:
                progress("sending", sent, len(records))
    return sent


def _wait_until_due(start: float, sent: int, rate: float) -> None:
    """Sleep until the row numbered ``sent`` is due at ``rate`` per second from ``start`` (a
    monotonic time); at rate 0, never."""
    if rate > 0:
        pause = start + sent / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)


def send_kafka(
    table: pa.Table,
    url: str,
    rate: float = 0,
    *,
    default_topic: str = "transactions",
    properties: Mapping[str, str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> int:
    """Produce the rows to ``kafka://host:port/topic`` (``default_topic`` if the URL names none),
    keyed by user id so that one user's events stay in one partition, in order; paced at ``rate``
    per second as `send_http` is, or as fast as possible at 0. ``properties``: the user's librdkafka
    properties (SASL, TLS, ...), as every client of fraudstream gets them. ``progress`` hears
    ("producing", sent, all) once per paced batch (at most every 50 rows)."""
    import orjson
    from confluent_kafka import Producer

    address, _, topic = url.removeprefix("kafka://").partition("/")
    from fraudstream.runtime.kafka.clientlog import client_logger
    from fraudstream.runtime.kafka.clients import client_settings

    producer = Producer(client_settings(address, properties, **{"linger.ms": 5, "logger": client_logger()}))
    records = records_for_http(table)
    start, batch = time.monotonic(), batch_for(rate)
    for sent, record in enumerate(records):
        if sent % batch == 0:
            _wait_until_due(start, sent, rate)
            if progress is not None:
                progress("producing", sent, len(records))
        producer.produce(
            topic or default_topic, key=str(record["user_id"]).encode(), value=orjson.dumps(record)
        )
        producer.poll(0)
    if progress is not None:
        progress("waiting for the broker to take every message", len(records), len(records))
    producer.flush()
    return len(records)
