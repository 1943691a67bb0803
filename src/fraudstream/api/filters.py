"""The query parameters that select and order a transaction or alert listing, shared by the JSON
pages (`GET /v1/transactions`, `GET /v1/alerts`) and their CSV and Parquet exports, so that an export
holds exactly the rows its page would list."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import Query

from fraudstream.storage.export_pages import TransactionFilter

__all__ = ["MAX_CURSOR", "AlertFilters", "TransactionFilters"]

#: Cursors are row positions stored as 64-bit integers: a larger one is refused, not sent to SQL.
MAX_CURSOR = 2**63 - 1

_ORDERS = "^(newest|oldest|score_desc|score_asc|amount_desc|amount_asc)$"
_STATUSES = r"^(open|in_review|closed)(,(open|in_review|closed))*$"


def _ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


class TransactionFilters:
    """Which transactions a listing holds, and in which order (a FastAPI dependency: its arguments
    are the query parameters)."""

    def __init__(
        self,
        user: str | None = None,
        decision: str | None = Query(None, pattern="^(approve|challenge|review|decline)$"),
        start: datetime | None = Query(None, alias="from", description="RFC 3339"),
        end: datetime | None = Query(None, alias="to", description="RFC 3339"),
        min_score: int | None = Query(None, ge=0, le=100),
        max_score: int | None = Query(None, ge=0, le=100),
        rule: str | None = None,
        order: str = Query(
            "newest",
            pattern=_ORDERS,
            description="Arrival order (the cursor is the last seq) or by score/amount (the cursor is an "
            "offset)",
        ),
    ) -> None:
        self.order = order
        self.selection: TransactionFilter = {
            "user_id": user,
            "decision": decision,
            "from_ms": _ms(start),
            "to_ms": _ms(end),
            "min_score": min_score,
            "max_score": max_score,
            "rule": rule,
        }


class AlertFilters:
    """Which alerts a listing holds, and in which order (a FastAPI dependency)."""

    def __init__(
        self,
        status: str | None = Query(
            None,
            pattern=_STATUSES,
            examples=["open,in_review"],
            description="One status or several, comma-separated (the review queue asks for open,in_review)",
        ),
        order: Literal["risk", "newest"] = Query(
            "risk", description="Riskiest first (score, then amount) or newest first (the live feed)"
        ),
    ) -> None:
        self.statuses: list[str] | None = status.split(",") if status else None
        self.order = order
