"""What validation hands back: the good rows as a batch, and each bad row with all its problems."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fraudstream.core.batch import TransactionBatch
from fraudstream.core.schema.raw import Bool, _Raw
from fraudstream.errors import FieldError


@dataclass(frozen=True)
class RowError:
    """One input row that cannot be scored, with every problem it has."""

    index: int
    transaction_id: str | None
    errors: tuple[FieldError, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "transaction_id": self.transaction_id,
            "errors": [e.as_dict() for e in self.errors],
        }


@dataclass(frozen=True)
class ValidationResult:
    """The good rows as a batch (in input order), where each came from, and the bad rows."""

    batch: TransactionBatch
    rows: npt.NDArray[np.int64]
    errors: list[RowError]


def _type_name(value: object) -> str:
    return f"has type {type(value).__name__}"


class _Errors:
    """Field errors by input row; built only for the rows a vectorized check flagged."""

    def __init__(self) -> None:
        self.by_row: dict[int, list[FieldError]] = {}

    def add(self, row: int, error: FieldError) -> None:
        self.by_row.setdefault(row, []).append(error)

    def flag(
        self,
        rows: Bool,
        field: str,
        problem: str | Callable[[object], str],
        allowed: str,
        raw: _Raw | None,
        show: Callable[[object], object] | None = None,
    ) -> None:
        if not rows.any():
            return
        for row in np.flatnonzero(rows).tolist():
            value = raw.value(row) if raw is not None else None
            text = problem(value) if callable(problem) else problem
            self.add(row, FieldError(field, text, allowed, show(value) if show else value))
