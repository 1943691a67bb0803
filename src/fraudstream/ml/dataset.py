"""History files for training and evaluation: any CSV/Parquet, columns mapped, validated, in time order."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.batch import LabelBatch, TransactionBatch
from fraudstream.core.schema import Validator
from fraudstream.errors import ConfigError
from fraudstream.reference import load_reference

__all__ = ["History", "load_history", "parse_mapping"]


@dataclass(frozen=True)
class History:
    """Transactions in event-time order with their ground truth (and scenario, when simulated)."""

    batch: TransactionBatch
    is_fraud: npt.NDArray[np.bool_]
    scenario: list[str] | None
    fingerprint: str

    def labels(self, delay_ms: int) -> LabelBatch:
        """Label events for the frauds, each known ``delay_ms`` after its transaction."""
        rows = np.flatnonzero(self.is_fraud)
        ts = self.batch.timestamp_ms[rows]
        columns: dict[str, object] = {
            "transaction_id": self.batch.transaction_id.take(pa.array(rows)),
            "is_fraud": pa.array(np.ones(len(rows), dtype=bool)),
            "label_time": pa.array(ts + delay_ms, pa.timestamp("ms", tz="UTC")),
            "transaction_time": pa.array(ts, pa.timestamp("ms", tz="UTC")),
        }
        for name in ("user_id", "merchant_id", "terminal_id", "card_fingerprint", "device_id", "ip"):
            columns[name] = self.batch.strings(name).take(pa.array(rows))
        return LabelBatch.from_arrow(pa.table(columns))


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


def _read(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if path.suffix == ".csv":
        import pyarrow.csv as pv

        return pv.read_csv(path)
    raise ConfigError(f"{path}: read .parquet or .csv files")


def load_history(
    path: Path, mapping: Mapping[str, str] | None = None, card_key: bytes = b"training"
) -> History:
    """Read, map and validate a history file; rows that fail validation are left out."""
    table = _read(path)
    mapping = dict(mapping or {})
    label_column = mapping.pop("is_fraud", "is_fraud")
    if label_column not in table.column_names:
        raise ConfigError(f"{path}: no label column {label_column!r}; map it with --map is_fraud=YOUR_COLUMN")
    result = Validator(load_reference(), card_key).table(table, received_at_ms=0, mapping=mapping)
    truth = np.asarray(
        pc.cast(table.column(label_column), pa.bool_()).to_numpy(zero_copy_only=False), dtype=bool
    )
    truth = truth[result.rows]
    scenario = None
    if "fraud_scenario" in table.column_names:
        scenario = table.column("fraud_scenario").take(pa.array(result.rows)).to_pylist()
    order = np.argsort(result.batch.timestamp_ms, kind="stable")
    batch = result.batch.take(order)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return History(batch, truth[order], [scenario[i] for i in order] if scenario else None, digest)
