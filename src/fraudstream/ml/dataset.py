"""History files for training and evaluation: any CSV/Parquet, columns mapped, validated, in time order."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.batch import LabelBatch, TransactionBatch
from fraudstream.core.schema import RowError, ValidationResult, Validator, naive_times
from fraudstream.errors import ConfigError, FraudstreamError
from fraudstream.reference import load_reference

__all__ = [
    "DEFAULT_MAX_INVALID",
    "NEVER_LABELLED",
    "History",
    "InvalidRowsError",
    "Reading",
    "history_of_table",
    "load_history",
    "parse_mapping",
    "parse_max_invalid",
    "read_history",
    "read_table",
    "refuse_invalid",
    "validate_file",
    "with_labels",
]

#: The share of a file's rows that may fail validation before a command stops (``--max-invalid``).
DEFAULT_MAX_INVALID: Final = 0.01
#: The label time of a fraud whose label never arrives (a victim who never reported it).
NEVER_LABELLED: Final = np.iinfo(np.int64).max


@dataclass(frozen=True)
class History:
    """Transactions in event-time order with their ground truth (and scenario, when simulated).

    ``label_time_ms`` is when each fraud's label arrived, when the file says so (its ``label_time``
    column): `NEVER_LABELLED` for a fraud never reported, which stays a fraud in ``is_fraud``.
    """

    batch: TransactionBatch
    is_fraud: npt.NDArray[np.bool_]
    scenario: list[str] | None
    fingerprint: str
    label_time_ms: npt.NDArray[np.int64] | None = None

    def known_fraud(self, at_ms: int, delay_ms: int) -> npt.NDArray[np.bool_]:
        """Which transactions were known to be fraud at ``at_ms``: their label had arrived (at its own
        label time when the history has them, else ``delay_ms`` after the transaction). What a team
        training at ``at_ms`` can learn from; a fraud not yet reported looks legitimate to it.

        >>> batch = TransactionBatch.from_pydict({"transaction_id": ["a", "b"], "timestamp": [1_000, 2_000],
        ...     "user_id": ["u"] * 2, "amount": [5.0] * 2})
        >>> History(batch, np.array([True, True]), None, "f").known_fraud(2_600, 1_000).tolist()
        [True, False]
        """
        if self.label_time_ms is None:
            return self.is_fraud & (self.batch.timestamp_ms + delay_ms <= at_ms)
        return self.is_fraud & (self.label_time_ms <= at_ms)

    def labels(self, delay_ms: int) -> LabelBatch:
        """Label events for the frauds: each at its own label time when the history has them (never
        for a fraud never reported), otherwise each known ``delay_ms`` after its transaction.

        >>> batch = TransactionBatch.from_pydict({"transaction_id": ["a", "b", "c"],
        ...     "timestamp": [1_000, 2_000, 3_000], "user_id": ["u"] * 3, "amount": [5.0] * 3})
        >>> history = History(batch, np.array([True, True, False]), None, "f")
        >>> history.labels(500).times_ms("label_time").tolist()
        [1500, 2500]
        >>> late = np.array([9_000, NEVER_LABELLED, NEVER_LABELLED])
        >>> History(batch, history.is_fraud, None, "f", late).labels(500).times_ms("label_time").tolist()
        [9000]
        """
        if self.label_time_ms is None:
            rows = np.flatnonzero(self.is_fraud)
            known_ms = self.batch.timestamp_ms[rows] + delay_ms
        else:
            rows = np.flatnonzero(self.is_fraud & (self.label_time_ms != NEVER_LABELLED))
            # A label cannot be known before its transaction happened.
            known_ms = np.maximum(self.label_time_ms[rows], self.batch.timestamp_ms[rows])
        ts = self.batch.timestamp_ms[rows]
        columns: dict[str, object] = {
            "transaction_id": self.batch.transaction_id.take(pa.array(rows)),
            "is_fraud": pa.array(np.ones(len(rows), dtype=bool)),
            "label_time": pa.array(known_ms, pa.timestamp("ms", tz="UTC")),
            "transaction_time": pa.array(ts, pa.timestamp("ms", tz="UTC")),
        }
        for name in ("user_id", "merchant_id", "terminal_id", "card_fingerprint", "device_id", "ip"):
            columns[name] = self.batch.strings(name).take(pa.array(rows))
        return LabelBatch.from_arrow(pa.table(columns))


def _without_label_time(table: pa.Table, source: str) -> tuple[pa.Table, npt.NDArray[np.int64] | None]:
    """A history file's ``label_time`` column (when each label arrived; null: never) taken out of its
    table, so that it is not kept as a transaction attribute."""
    if "label_time" not in table.column_names:
        return table, None
    try:
        times = pc.cast(table.column("label_time"), pa.timestamp("ms", tz="UTC")).cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ConfigError(
            f"{source}: column label_time holds {table.column('label_time').type} values, not times; "
            "write RFC 3339 times with a zone, or leave it empty for frauds never reported"
        ) from None
    values = np.asarray(times.fill_null(NEVER_LABELLED).to_numpy(), dtype=np.int64)
    return table.drop_columns(["label_time"]), values


def parse_mapping(text: str | None) -> dict[str, str]:
    """``"user_id=CUSTOMER_ID,amount=TX_AMOUNT"`` → ``{"user_id": "CUSTOMER_ID", "amount": "TX_AMOUNT"}``."""
    if not text:
        return {}
    mapping = {}
    for part in text.split(","):
        if "=" not in part:
            raise ConfigError(f"--map entry {part!r}: write canonical=source, e.g. user_id=CUSTOMER_ID")
        canonical, source = (p.strip() for p in part.split("=", 1))
        mapping[canonical] = source
    return mapping


def parse_max_invalid(text: str) -> float:
    """``--max-invalid`` as a share of rows: ``"1%"`` or ``"0.01"``.

    >>> parse_max_invalid("1%"), parse_max_invalid("0.01"), parse_max_invalid("100%")
    (0.01, 0.01, 1.0)
    """
    cleaned = text.strip()
    percent = cleaned.endswith("%")
    try:
        share = float(cleaned.removesuffix("%")) / (100.0 if percent else 1.0)
    except ValueError:
        share = float("nan")
    if 0.0 <= share <= 1.0:  # false for NaN
        return share
    problem = f"{text!r} is not a share of rows from 0 to 100%; write e.g. 1% or 0.01"
    if not percent and 1.0 < share <= 100.0:
        problem += f" (for {share:g} percent, {share:g}%)"
    raise ConfigError(problem)


@dataclass(frozen=True)
class Reading:
    """What validating one input found: rows read, rows refused and the commonest reasons why."""

    source: str
    rows: int
    invalid: int
    #: ("field: problem", rows with it), commonest first.
    problems: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, source: str, rows: int, errors: Sequence[RowError], top: int = 5) -> Reading:
        """Count the rows by each of their problems (a row with two problems counts under both).

        >>> from fraudstream.errors import FieldError
        >>> bad = [RowError(i, None, (FieldError("amount", "must be >= 0", "", -1),)) for i in range(3)]
        >>> Reading.of("f.csv", 300, bad).report()
        ['f.csv: 300 rows read, 3 invalid (1.0%)', '  amount: must be >= 0 — 3 rows']
        """
        counts = Counter(
            problem for error in errors for problem in {f"{e.field}: {e.problem}" for e in error.errors}
        )
        return cls(source, rows, len(errors), tuple(counts.most_common(top)))

    @property
    def share(self) -> float:
        """The share of rows that are invalid (0 for no rows)."""
        return self.invalid / self.rows if self.rows else 0.0

    def report(self) -> list[str]:
        """Lines for a terminal: the counts, then the commonest problems."""
        head = f"{self.source}: {self.rows:,} rows read, {self.invalid:,} invalid ({self.share:.1%})"
        return [head] + [
            f"  {problem} — {count:,} row{'s' * (count != 1)}" for problem, count in self.problems
        ]

    def refusal(self, max_invalid: float) -> str | None:
        """Why a command must stop here (too many invalid rows, or none valid), or None to go on."""
        if self.rows == 0:
            return f"{self.source} holds no transactions"
        if self.invalid == self.rows:
            return f"no row of {self.source} is valid: fix the file or its --map"
        if self.share > max_invalid + 1e-12:  # 7 of 100 rows are not more than 7%, whatever the rounding
            enough = math.ceil(round(self.share * 100, 6))
            return (
                f"{self.invalid:,} of the {self.rows:,} rows of {self.source} ({self.share:.1%}) are "
                f"invalid, more than --max-invalid {max_invalid:.1%} allows: fix the file or its --map, "
                f"or skip them with --max-invalid {enough}%"
            )
        return None

    def problems_text(self) -> str:
        """The commonest problems on one line, for an error message."""
        return "; ".join(f"{problem} ({count:,} rows)" for problem, count in self.problems)


class InvalidRowsError(FraudstreamError):
    """Too many rows of a history file fail validation (or all do); ``reading`` has the counts."""

    def __init__(self, message: str, reading: Reading) -> None:
        super().__init__(message)
        self.reading = reading


def validate_file(
    validator: Validator,
    data: pa.Table | Sequence[Any],
    source: str,
    *,
    received_at_ms: int,
    mapping: Mapping[str, str] | None = None,
    timezone: str | None = None,
) -> tuple[ValidationResult, Reading]:
    """Validate the rows of a file (a table, or JSON-like records) as every command that reads files does.

    Times written without a zone are in ``timezone`` (an IANA name); without one, such times stop the
    whole file with one `ConfigError` naming their column, instead of refusing each row.
    """
    if timezone is None:
        found = naive_times(data, mapping)
        if found is not None:
            raise ConfigError(
                f"{source}: {found.where} holds times without a zone (e.g. {found.example!r}); say "
                f"which zone they are in with --timezone, e.g. --timezone UTC"
            )
    if isinstance(data, pa.Table):
        result = validator.table(
            data, received_at_ms=received_at_ms, mapping=mapping, naive_timezone=timezone
        )
    else:
        result = validator.records(data, received_at_ms=received_at_ms, naive_timezone=timezone)
    return result, Reading.of(source, len(result.rows) + len(result.errors), result.errors)


def read_table(path: Path) -> pa.Table:
    """A CSV or Parquet file as a table; anything else, or a broken file, is a `ConfigError`."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if path.suffix == ".csv":
            import pyarrow.csv as pv

            return pv.read_csv(path)
    except pa.ArrowInvalid as exc:  # a file that is not CSV / Parquet, or a broken one
        raise ConfigError(f"{path} cannot be read: {exc}") from None
    raise ConfigError(f"{path}: read .parquet or .csv files")


def with_labels(
    table: pa.Table, labels: pa.Table, source: str, id_column: str = "transaction_id"
) -> pa.Table:
    """``table`` with the ground truth of ``labels`` (named ``source`` in messages), matched on the
    transaction ids of its ``id_column``: ``is_fraud`` as the latest label of each transaction says
    (rows later in ``labels`` are later labels), false for a transaction no label names, and
    ``label_time`` (when each label arrived) if ``labels`` has it. Columns of those names already in
    ``table`` are replaced; the rows keep their order.

    >>> data = pa.table({"transaction_id": ["a", "b", "c"], "amount": [1.0, 2.0, 3.0]})
    >>> verdicts = pa.table({"transaction_id": ["c", "a", "c"], "is_fraud": [True, True, False]})
    >>> with_labels(data, verdicts, "labels.csv").column("is_fraud").to_pylist()
    [True, False, False]
    """
    for name in ("transaction_id", "is_fraud"):
        if name not in labels.column_names:
            raise ConfigError(
                f"{source}: no {name} column; labels name each transaction (transaction_id) and say "
                "whether it was fraud (is_fraud), and may say when that became known (label_time)"
            )
    if id_column not in table.column_names:
        raise ConfigError(f"no transaction id column {id_column!r} to match the labels of {source} with")
    latest = labels.take(pa.array(np.arange(labels.num_rows - 1, -1, -1)))  # the last label first
    ids = pc.cast(latest.column("transaction_id"), pa.string())
    found = pc.index_in(pc.cast(table.column(id_column), pa.string()), value_set=ids)
    truth = pc.fill_null(pa.array(_labels(latest.column("is_fraud"), source, "is_fraud")).take(found), False)
    table = table.drop_columns([c for c in ("is_fraud", "label_time") if c in table.column_names])
    table = table.append_column("is_fraud", truth)
    if "label_time" in latest.column_names:
        table = table.append_column("label_time", latest.column("label_time").take(found))
    return table


def _labels(column: pa.ChunkedArray, source: str, name: str) -> npt.NDArray[np.bool_]:
    try:
        truth = pc.cast(column, pa.bool_())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ConfigError(
            f"{source}: label column {name!r} holds {column.type} values that are not 0/1 or true/false"
        ) from None
    return np.asarray(truth.to_numpy(zero_copy_only=False), dtype=bool)


def read_history(
    path: Path,
    mapping: Mapping[str, str] | None = None,
    card_key: bytes = b"training",
    *,
    timezone: str | None = None,
) -> tuple[History, Reading]:
    """Read, map and validate a history file: its valid rows in time order, and how many were not.

    ``timezone`` (an IANA name) is the zone of times written without one; without it such times are
    a `ConfigError`. Nothing is refused here for invalid rows: `load_history` and the commands decide.
    """
    table = read_table(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return history_of_table(table, str(path), digest, mapping, card_key, timezone=timezone)


def history_of_table(
    table: pa.Table,
    source: str,
    fingerprint: str,
    mapping: Mapping[str, str] | None = None,
    card_key: bytes = b"training",
    *,
    timezone: str | None = None,
) -> tuple[History, Reading]:
    """`read_history` of a table already in memory, named ``source`` in messages; ``fingerprint``
    identifies its data in model cards and reports.

    >>> table = pa.table({"transaction_id": ["b", "a"], "timestamp": [2_000, 1_000], "user_id": ["u", "u"],
    ...     "amount": [5.0, 6.0], "is_fraud": [False, True]})
    >>> history, reading = history_of_table(table, "table", "f")
    >>> history.batch.transaction_id.to_pylist(), history.is_fraud.tolist(), reading.invalid
    (['a', 'b'], [True, False], 0)
    """
    mapping = dict(mapping or {})
    label_column = mapping.pop("is_fraud", "is_fraud")
    if label_column not in table.column_names:
        raise ConfigError(
            f"{source}: no label column {label_column!r}; map it with --map is_fraud=YOUR_COLUMN"
        )
    table, label_time = _without_label_time(table, source)
    validator = Validator(load_reference(), card_key)
    result, reading = validate_file(
        validator, table, source, received_at_ms=0, mapping=mapping, timezone=timezone
    )
    truth = _labels(table.column(label_column), source, label_column)[result.rows]
    scenario = None
    if "fraud_scenario" in table.column_names:
        scenario = table.column("fraud_scenario").take(pa.array(result.rows)).to_pylist()
    order = np.argsort(result.batch.timestamp_ms, kind="stable")
    batch = result.batch.take(order)
    label_time_ms = None if label_time is None else label_time[result.rows][order]
    history = History(
        batch, truth[order], [scenario[i] for i in order] if scenario else None, fingerprint, label_time_ms
    )
    return history, reading


def load_history(
    path: Path,
    mapping: Mapping[str, str] | None = None,
    card_key: bytes = b"training",
    *,
    timezone: str | None = None,
    max_invalid: float = DEFAULT_MAX_INVALID,
) -> History:
    """Read, map and validate a history file; rows that fail validation are left out, up to
    ``max_invalid`` of them (a share): more, or none valid, is an `InvalidRowsError`.

    ``timezone``: the IANA zone of times written without one (see `read_history`).
    """
    history, reading = read_history(path, mapping, card_key, timezone=timezone)
    refuse_invalid(reading, max_invalid)
    return history


def refuse_invalid(reading: Reading, max_invalid: float) -> None:
    """Raise `InvalidRowsError` when more than ``max_invalid`` (a share) of the rows read are invalid,
    or none is valid, with the commonest problems; return when the rest may go on without them."""
    refusal = reading.refusal(max_invalid)
    if refusal is not None:
        problems = f". Commonest problems: {reading.problems_text()}" if reading.problems else ""
        raise InvalidRowsError(refusal + problems, reading)
