"""/v1/transactions.csv|.parquet and /v1/alerts.csv|.parquet: a listing's every row as a file, with the
filters and order of its JSON page (`api/filters.py`), streamed as it is read.

The rows are read page after page (`Store.transaction_pages`, `Store.alert_pages`) and each page is
written out (`api/export_formats.py`) before the next is read: a worker thread does both (Starlette
iterates a plain generator in its thread pool), so the event loop never waits and memory holds one
page whatever the export's length.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from fraudstream.api import examples
from fraudstream.api.deps import Caller, require, service
from fraudstream.api.export_formats import (
    ALERT_COLUMNS,
    CSV_MEDIA_TYPE,
    PARQUET_MEDIA_TYPE,
    TRANSACTION_COLUMNS,
    Column,
    csv_chunks,
    parquet_chunks,
)
from fraudstream.api.filters import AlertFilters, TransactionFilters
from fraudstream.api.models import INVALID_REQUEST
from fraudstream.api.openapi import KEYED, errors
from fraudstream.runtime.embedded import ScoringService
from fraudstream.storage.export_pages import StoredPage

__all__ = ["router"]


def _json_errors(documented: Mapping[int | str, Mapping[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """Error answers documented as JSON with their schema. FastAPI would put a declared ``model`` under
    the route's own media type (text/csv), but errors are answered as JSON (`api/errors.py`)."""
    answers: dict[int | str, dict[str, Any]] = {}
    for status, answer in documented.items():
        content = {
            media: {**body, "schema": {"$ref": "#/components/schemas/ErrorBody"}}
            for media, body in answer["content"].items()
        }
        answers[status] = {
            **{key: value for key, value in answer.items() if key != "model"},
            "content": content,
        }
    return answers


router = APIRouter(tags=["exports"], responses=_json_errors(INVALID_REQUEST))


class CsvFile(StreamingResponse):
    media_type = CSV_MEDIA_TYPE


class ParquetFile(StreamingResponse):
    media_type = PARQUET_MEDIA_TYPE


_Pages = Iterable[StoredPage]


def _file(name: str, extension: str) -> dict[str, str]:
    """The headers of an export: a download named after what it holds and when it was taken
    (``transactions-20261124T100100Z.csv``), never cached (it holds customer data)."""
    taken = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return {
        "Content-Disposition": f'attachment; filename="{name}-{taken}.{extension}"',
        "Cache-Control": "no-store",
    }


def _csv(name: str, columns: Sequence[Column], pages: _Pages) -> CsvFile:
    return CsvFile(csv_chunks(columns, pages), headers=_file(name, "csv"))


def _parquet(name: str, columns: Sequence[Column], pages: _Pages) -> ParquetFile:
    return ParquetFile(parquet_chunks(columns, pages), headers=_file(name, "parquet"))


def _stored_page(items: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Items of a JSON listing (a transaction's decision merged in) as a page of stored rows: JSON
    fields as their text. For the documented example, which is the listing's example exported."""
    rows = [{**item, **(item["decision"] if isinstance(item["decision"], dict) else {})} for item in items]
    for row in rows:
        for name in ("reasons", "rules", "shadow_rules", "features", "attributes"):
            if name in row:
                row[name] = orjson.dumps(row[name]).decode()
    return {name: [row.get(name) for row in rows] for name in rows[0]}


def _documented(columns: Sequence[Column], items: Sequence[Mapping[str, Any]], what: str) -> dict[Any, Any]:
    """The answers an export route documents: the CSV (the example is the JSON listing's example
    ``items`` as the route writes them), or the Parquet file of the same columns, and the errors of a
    keyed route."""
    csv_example = b"".join(csv_chunks(columns, [_stored_page(items)])).decode()
    names = ", ".join(c.name for c in columns)
    disposition = {
        "Content-Disposition": {
            "description": "attachment, with a file name holding the time of the export",
            "schema": {"type": "string"},
        }
    }
    return {
        "csv": {
            200: {
                "description": f"{what} as CSV (UTF-8, a header row, texts quoted; times in RFC 3339 UTC "
                "with milliseconds; a text that would start a formula begins with an apostrophe). "
                f"Columns: {names}",
                "headers": disposition,
                "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}, "example": csv_example}},
            },
            **_json_errors(errors(*KEYED)),
        },
        "parquet": {
            200: {
                "description": f"{what} as a Parquet file, one row group per page of rows; times are "
                f"UTC timestamps in milliseconds. Columns: {names}",
                "headers": disposition,
                "content": {
                    PARQUET_MEDIA_TYPE: {
                        "schema": {"type": "string", "format": "binary"},
                        "example": "(a Parquet file: binary, starting and ending with PAR1)",
                    }
                },
            },
            **_json_errors(errors(*KEYED)),
        },
    }


_TRANSACTIONS = _documented(
    TRANSACTION_COLUMNS,
    [*examples.TRANSACTION_PAGE["items"], examples.TRANSACTION],
    "Every transaction the filters select, with its decision, in the listing's order",
)
_ALERTS = _documented(
    ALERT_COLUMNS, examples.ALERT_PAGE["items"], "Every alert the filters select, in the listing's order"
)


def _transaction_pages(svc: ScoringService, filters: TransactionFilters) -> Iterator[StoredPage]:
    return svc.reads.transaction_pages(filters.selection, filters.order)


@router.get(
    "/v1/transactions.csv",
    operation_id="exportTransactionsCsv",
    summary="Export transactions with their decisions as CSV (the listing's filters and order)",
    response_class=CsvFile,
    responses=_TRANSACTIONS["csv"],
)
async def export_transactions_csv(
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("read")),
    filters: TransactionFilters = Depends(),
) -> CsvFile:
    """Every row `GET /v1/transactions` would list, page after page, with the same filters (the
    download is audited)."""
    await svc.record_export(caller.name, "transactions.csv", {**filters.selection, "order": filters.order})
    return _csv("transactions", TRANSACTION_COLUMNS, _transaction_pages(svc, filters))


@router.get(
    "/v1/transactions.parquet",
    operation_id="exportTransactionsParquet",
    summary="Export transactions with their decisions as Parquet (the listing's filters and order)",
    response_class=ParquetFile,
    responses=_TRANSACTIONS["parquet"],
)
async def export_transactions_parquet(
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("read")),
    filters: TransactionFilters = Depends(),
) -> ParquetFile:
    """Every row `GET /v1/transactions` would list, page after page, with the same filters (the
    download is audited)."""
    await svc.record_export(
        caller.name, "transactions.parquet", {**filters.selection, "order": filters.order}
    )
    return _parquet("transactions", TRANSACTION_COLUMNS, _transaction_pages(svc, filters))


@router.get(
    "/v1/alerts.csv",
    operation_id="exportAlertsCsv",
    summary="Export alerts as CSV (the listing's status filter and order)",
    response_class=CsvFile,
    responses=_ALERTS["csv"],
)
async def export_alerts_csv(
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("read")),
    filters: AlertFilters = Depends(),
) -> CsvFile:
    """Every alert `GET /v1/alerts` would list, page after page, with the same filters (the download
    is audited)."""
    await svc.record_export(caller.name, "alerts.csv", {"status": filters.statuses, "order": filters.order})
    return _csv("alerts", ALERT_COLUMNS, svc.reads.alert_pages(filters.statuses, filters.order))


@router.get(
    "/v1/alerts.parquet",
    operation_id="exportAlertsParquet",
    summary="Export alerts as Parquet (the listing's status filter and order)",
    response_class=ParquetFile,
    responses=_ALERTS["parquet"],
)
async def export_alerts_parquet(
    svc: ScoringService = Depends(service),
    caller: Caller = Depends(require("read")),
    filters: AlertFilters = Depends(),
) -> ParquetFile:
    """Every alert `GET /v1/alerts` would list, page after page, with the same filters (the download
    is audited)."""
    await svc.record_export(
        caller.name, "alerts.parquet", {"status": filters.statuses, "order": filters.order}
    )
    return _parquet("alerts", ALERT_COLUMNS, svc.reads.alert_pages(filters.statuses, filters.order))
