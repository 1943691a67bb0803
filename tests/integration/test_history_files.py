"""History files as users export them, read by `load_history` / `read_history`: times without a zone,
integer ids and amounts, 0.00 amounts, and the rows refused counted by reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from fraudstream.errors import ConfigError
from fraudstream.ml.dataset import InvalidRowsError, load_history, read_history

pytestmark = pytest.mark.integration

MAPPING = {
    "transaction_id": "TRANSACTION_ID",
    "timestamp": "TX_DATETIME",
    "user_id": "CUSTOMER_ID",
    "terminal_id": "TERMINAL_ID",
    "amount": "TX_AMOUNT",
    "is_fraud": "TX_FRAUD",
}


def history_file(path: Path, times: list[str], amounts: list[float] | pa.Array) -> Path:
    """A file with the Fraud Detection Handbook's columns: integer ids, times as written, 0/1 labels."""
    n = len(times)
    table = pa.table(
        {
            "TRANSACTION_ID": pa.array(range(n), pa.int64()),
            "TX_DATETIME": times,
            "CUSTOMER_ID": pa.array([7 + i % 3 for i in range(n)], pa.int64()),
            "TERMINAL_ID": pa.array([100 + i % 5 for i in range(n)], pa.int64()),
            "TX_AMOUNT": amounts,
            "TX_FRAUD": pa.array([i % 2 for i in range(n)], pa.int8()),
        }
    )
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)  # read back, the times become timestamp[s] without a zone
    else:
        pq.write_table(table, path)  # the times stay text
    return path


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def minutes(n: int) -> list[str]:
    """``n`` naive times a minute apart from 2018-04-01 00:00:31."""
    return [str(datetime(2018, 4, 1, 0, 0, 31) + timedelta(minutes=m)) for m in range(n)]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_naive_times_are_instants_of_the_named_zone_across_daylight_saving(
    tmp_path: Path, suffix: str
) -> None:
    local = ["2018-03-25 01:30:00", "2018-03-25 03:30:00", "2018-10-28 01:30:00", "2018-10-28 03:30:00"]
    path = history_file(tmp_path / f"dst{suffix}", local, [10.0, 20.0, 30.0, 40.0])
    history, reading = read_history(path, MAPPING, timezone="Europe/Paris")
    assert (reading.rows, reading.invalid) == (4, 0)
    assert history.batch.timestamp_ms.tolist() == [
        ms("2018-03-25T01:30:00+01:00"),
        ms("2018-03-25T03:30:00+02:00"),
        ms("2018-10-28T01:30:00+02:00"),
        ms("2018-10-28T03:30:00+01:00"),
    ]
    utc = load_history(path, MAPPING, timezone="UTC").batch.timestamp_ms
    assert (utc - history.batch.timestamp_ms).tolist() == [3_600_000, 7_200_000, 7_200_000, 3_600_000]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(
    "amounts", [pa.array([12.5, 0.0, 99.99], pa.float64()), pa.array([12, 0, 100], pa.int64())]
)
def test_integer_ids_and_integer_or_float_amounts_are_read_as_they_are(
    tmp_path: Path, suffix: str, amounts: pa.Array
) -> None:
    history = load_history(
        history_file(tmp_path / f"h{suffix}", minutes(3), amounts), MAPPING, timezone="UTC"
    )
    assert history.batch.transaction_id.to_pylist() == ["0", "1", "2"]
    assert history.batch.user_id.to_pylist() == ["7", "8", "9"]
    assert history.batch.strings("terminal_id").to_pylist() == ["100", "101", "102"]
    assert history.batch.amount.tolist() == [float(a) for a in amounts.to_pylist()]
    assert history.is_fraud.tolist() == [False, True, False]
    assert history.batch.timestamp_ms[0] == ms("2018-04-01T00:00:31+00:00")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_naive_times_without_a_zone_are_one_error_naming_the_column(tmp_path: Path, suffix: str) -> None:
    path = history_file(tmp_path / f"h{suffix}", minutes(50), [5.0] * 50)
    with pytest.raises(ConfigError) as refused:
        read_history(path, MAPPING)
    assert str(refused.value) == (
        f"{path}: column TX_DATETIME holds times without a zone (e.g. '2018-04-01 00:00:31'); "
        "say which zone they are in with --timezone, e.g. --timezone UTC"
    )


def test_too_many_invalid_rows_are_refused_with_the_commonest_reasons(tmp_path: Path) -> None:
    amounts = np.full(100, 5.0)
    amounts[::10] = -1.0
    times = minutes(61) + ["soon"] * 3 + minutes(36)  # rows 61-63; amounts of rows 0, 10, ... 90
    path = history_file(tmp_path / "dirty.parquet", times, pa.array(amounts))
    _, reading = read_history(path, MAPPING, timezone="UTC")
    assert (reading.rows, reading.invalid) == (100, 13)
    assert reading.problems == (
        ("amount: must be >= 0", 10),
        ("timestamp: is not an RFC 3339 date-time", 3),
    )
    with pytest.raises(InvalidRowsError, match=r"^13 of the 100 rows .* \(13.0%\) are invalid") as refused:
        load_history(path, MAPPING, timezone="UTC")
    assert "Commonest problems: amount: must be >= 0 (10 rows); timestamp:" in str(refused.value)
    assert refused.value.reading == reading
    assert len(load_history(path, MAPPING, timezone="UTC", max_invalid=0.13).batch) == 87


def test_a_file_with_no_valid_row_is_refused_whatever_the_limit(tmp_path: Path) -> None:
    path = history_file(tmp_path / "bad.parquet", minutes(5), [-1.0] * 5)
    with pytest.raises(InvalidRowsError, match=r"no row of .* is valid"):
        load_history(path, MAPPING, timezone="UTC", max_invalid=1.0)
