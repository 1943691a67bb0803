"""Every stored transaction or alert of a listing, page after page, for an export of any length.

A page is one short query: the next rows after the last row seen, in the listing's order (keyset
pagination on the order's sort keys, which end with a unique column). No connection or transaction is
held between pages, so an export of millions of rows neither holds the database nor grows in memory,
and a row that changes while the export runs is neither repeated nor skipped for having moved.

A page is columnar, as stored: each column's name and its values, JSON columns (reasons, rules,
features, attributes) still as their stored text, so that a writer of CSV or Parquet takes them as they
are rather than decoding and encoding each row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping

from fraudstream.storage.reports import (
    ALERT_ORDERS,
    TRANSACTION_ORDERS,
    SortKey,
    alert_conditions,
    sort_keys,
    transaction_conditions,
)
from fraudstream.storage.tables import alerts, decisions, transactions

__all__ = ["EXPORT_PAGE_ROWS", "ExportPages", "StoredPage", "TransactionFilter", "after_row"]

#: Rows per page of an export: one query, one Parquet row group.
EXPORT_PAGE_ROWS = 5000

#: A page of stored rows by column: each column's name and its values, row by row.
StoredPage = dict[str, list[Any]]

#: What a transaction export reads: the stored transaction (but the hash of its body) and its decision.
_TRANSACTION_EXPORT = (
    *(c for c in transactions.c if c.name != "body_hash"),
    *(c for c in decisions.c if c.name != "transaction_id"),
)


class TransactionFilter(TypedDict, total=False):
    """The filters of a transaction listing, as `Reports.list_transactions` takes them."""

    user_id: str | None
    decision: str | None
    from_ms: int | None
    to_ms: int | None
    min_score: int | None
    max_score: int | None
    rule: str | None


def after_row(keys: Sequence[SortKey], row: Mapping[str, Any] | RowMapping) -> sa.ColumnElement[bool]:
    """The condition "comes after ``row``" in the order of ``keys``: a row is after it when it ties
    on the first keys and sorts after it on the next one (in that key's direction)."""
    alternatives = []
    for position, (column, descending) in enumerate(keys):
        value = row[column.name]
        ties = [earlier == row[earlier.name] for earlier, _ in keys[:position]]
        alternatives.append(sa.and_(*ties, column < value if descending else column > value))
    return sa.or_(*alternatives)


class ExportPages:
    """The pages of the transaction and alert listings, for exports (mixed into `Store`)."""

    engine: Engine

    def transaction_pages(
        self, filters: TransactionFilter, order: str, page_rows: int = EXPORT_PAGE_ROWS
    ) -> Iterator[StoredPage]:
        """The transactions ``filters`` select, with their decisions' columns, in ``order`` (one of
        `reports.ORDERS`), the rows `list_transactions` pages: pages of at most ``page_rows``."""
        keys = TRANSACTION_ORDERS[order]
        query = (
            sa.select(*_TRANSACTION_EXPORT)
            .join_from(transactions, decisions, decisions.c.transaction_id == transactions.c.transaction_id)
            .where(*transaction_conditions(**filters))
            .order_by(*sort_keys(keys))
            .limit(page_rows)
        )
        return self._pages(query, keys, page_rows)

    def alert_pages(
        self, status: Sequence[str] | None, order: str, page_rows: int = EXPORT_PAGE_ROWS
    ) -> Iterator[StoredPage]:
        """The alerts in any of ``status`` (all when None) in ``order`` (``risk`` or ``newest``), the
        rows `list_alerts` pages: pages of at most ``page_rows``."""
        keys = ALERT_ORDERS[order]
        query = sa.select(alerts).where(*alert_conditions(status)).order_by(*sort_keys(keys)).limit(page_rows)
        return self._pages(query, keys, page_rows)

    def _pages(self, query: sa.Select[Any], keys: Sequence[SortKey], page_rows: int) -> Iterator[StoredPage]:
        names = list(query.selected_columns.keys())
        page = query
        while True:
            with self.engine.connect() as connection:
                rows = connection.execute(page).all()
            if rows:
                yield dict(zip(names, map(list, zip(*rows))))
            if len(rows) < page_rows:
                return
            page = query.where(after_row(keys, rows[-1]._mapping))
