"""Exports of the transaction and alert listings (`GET /v1/transactions.csv|.parquet`,
`/v1/alerts.csv|.parquet`): read back, they hold exactly the rows the JSON listing gives under the same
filters and order; formulas are neutralised in CSV; no card number leaves; a read key is required."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from factories import transaction
from fraudstream.api import create_app
from fraudstream.config import Settings
from fraudstream.storage.reports import ORDERS

pytestmark = pytest.mark.integration

ADMIN_KEY = "exports-admin-key"
AS_ADMIN = {"X-API-Key": ADMIN_KEY}
CARD = "4242 4242 4242 4242"
CARD_DIGITS = CARD.replace(" ", "")
#: What a spreadsheet would run: texts the CSV must neutralise.
FORMULAS = {
    "merchant_id": '=HYPERLINK("http://evil.example","x")',
    "location": "@SUM(1+1)",
    "device_id": "+cmd",
}


def minute(m: int) -> str:
    return f"2026-11-24T10:{m:02d}:00Z"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A running app with API keys on, on SQLite or PostgreSQL (the export's keyset pages compare and
    order as each database does, and must walk exactly what its listing pages do)."""
    database = request.getfixturevalue("module_postgres_url") if request.param == "postgresql" else None
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("exports"),
        database_url=database,
        card_key="c" * 32,
        admin_key=ADMIN_KEY,
        batch_wait_ms=1.0,
    )
    with TestClient(create_app(settings), headers=AS_ADMIN) as test_client:
        # Four users each pay small amounts, then a large one the default rules flag (alerts); some
        # with a card, a place west of Greenwich (a negative longitude), and attributes of their own.
        body = []
        for i in range(10):
            for user in ("ann", "bob", "cid", "dee"):
                extra: dict[str, Any] = {"timestamp": minute(i), "channel": "online"}
                if user == "bob":
                    extra |= {"card_number": CARD, "location": "New York", "lat": 40.71, "lon": -74.0}
                if user == "cid":
                    extra |= {"loyalty_tier": "gold", "note": "=1+1"}
                body.append(transaction(f"{user}-{i}", user, 40.0 + i + len(user), **extra))
        body += [
            transaction(f"{user}-big", user, 9000.0 + n, timestamp=minute(30 + n))
            for n, user in enumerate(("ann", "bob", "cid"))
        ]
        body.append(transaction("evil", "eve", 12.0, timestamp=minute(40), **FORMULAS))
        result = test_client.post("/v1/transactions", json=body).json()
        assert result["summary"]["scored"] == len(body)
        yield test_client


def listing(client: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a JSON listing, page after page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 7, **({"cursor": cursor} if cursor is not None else {})}
        page = client.get(path, params=query)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def transaction_row(item: dict[str, Any], time: Any) -> dict[str, Any]:
    """What an export holds for one item of the JSON listing (times through ``time``)."""
    decision = item["decision"]
    reasons = decision["reasons"]
    return {
        **{k: item[k] for k in ("transaction_id", "user_id", "amount", "currency", "merchant_id")},
        **{k: item[k] for k in ("merchant_category", "terminal_id", "channel", "location", "lat", "lon")},
        **{k: item[k] for k in ("country", "device_id", "ip", "card_fingerprint", "card_bin", "card_last4")},
        **{k: decision[k] for k in ("decision", "score", "probability", "is_alert", "model_version")},
        **{k: decision[k] for k in ("ruleset_version", "latency_ms")},
        "timestamp": time(item["timestamp_ms"]),
        "reason_codes": ",".join(r["code"] for r in reasons),
        "reasons": "; ".join(r["text"] for r in reasons),
        "rules": ",".join(decision["rules"]),
        "shadow_rules": ",".join(decision["shadow_rules"]),
        "decided_at": time(decision["decided_at_ms"]),
        "received_at": time(item["received_at_ms"]),
        "attributes": item["attributes"] or None,
        "features": decision["features"],
        "seq": item["seq"],
    }


def alert_row(item: dict[str, Any], time: Any) -> dict[str, Any]:
    return {
        **{k: item[k] for k in ("transaction_id", "user_id", "amount", "score", "decision", "status")},
        **{k: item[k] for k in ("assignee", "verdict", "note", "case_id")},
        "created_at": time(item["created_at_ms"]),
        "updated_at": time(item["updated_at_ms"]),
        "reason_codes": ",".join(r["code"] for r in item["reasons"]),
        "reasons": "; ".join(r["text"] for r in item["reasons"]),
    }


#: The columns whose CSV cells are numbers.
NUMBERS = {"amount", "lat", "lon", "score", "probability", "ruleset_version", "latency_ms", "seq"}


def as_csv_text(row: dict[str, Any]) -> dict[str, Any]:
    """A row as its CSV cells read back: empty text for null, true/false, numbers as numbers, JSON
    values parsed, text that would start a formula after an apostrophe."""

    def cell(name: str, value: Any) -> Any:
        if value is None or value == "":
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict) or name in NUMBERS:
            return value
        if value[0] in "=+-@\t\r":
            return f"'{value}"  # a formula, neutralised
        return value

    return {name: cell(name, value) for name, value in row.items()}


def read_csv(content: bytes) -> list[dict[str, Any]]:
    frame = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False)
    rows: list[dict[str, Any]] = frame.to_dict("records")
    for row in rows:
        for name in NUMBERS & row.keys():
            row[name] = float(row[name]) if row[name] else ""
        for name in ("attributes", "features"):
            if row.get(name):
                row[name] = json.loads(row[name])
    return rows


def read_parquet(content: bytes) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(io.BytesIO(content)).to_pylist()
    for row in rows:
        for name in ("attributes", "features"):
            if row.get(name):
                row[name] = json.loads(row[name])
    return rows


TRANSACTION_FILTERS: list[dict[str, Any]] = [
    {},
    {"user": "bob"},
    {"decision": "review"},
    {"min_score": 1, "max_score": 100},
    {"max_score": 0, "order": "oldest"},
    {"from": "2026-11-24T10:03:00Z", "to": "2026-11-24T10:06:00+00:00", "order": "amount_asc"},
    {"rule": "amount_spike", "order": "score_desc"},
    {"user": "ann", "order": "amount_desc"},
    {"order": "score_asc"},
    {"user": "nobody"},
]


@pytest.mark.parametrize("filters", TRANSACTION_FILTERS, ids=[str(f) for f in TRANSACTION_FILTERS])
def test_transaction_exports_read_back_to_the_json_listings_rows(
    client: TestClient, filters: dict[str, Any]
) -> None:
    expected = listing(client, "/v1/transactions", **filters)
    if filters.get("user") != "nobody":
        assert expected, "a filter that selects nothing proves nothing"
    csv = client.get("/v1/transactions.csv", params=filters)
    assert csv.status_code == 200, csv.text
    assert read_csv(csv.content) == [as_csv_text(transaction_row(i, rfc3339)) for i in expected]
    parquet = client.get("/v1/transactions.parquet", params=filters)
    assert parquet.status_code == 200, parquet.text
    assert read_parquet(parquet.content) == [transaction_row(i, utc) for i in expected]


ALERT_FILTERS: list[dict[str, Any]] = [
    {},
    {"status": "open"},
    {"status": "open,in_review", "order": "newest"},
]


@pytest.mark.parametrize("filters", ALERT_FILTERS, ids=[str(f) for f in ALERT_FILTERS])
def test_alert_exports_read_back_to_the_json_listings_rows(
    client: TestClient, filters: dict[str, Any]
) -> None:
    expected = listing(client, "/v1/alerts", **filters)
    assert len(expected) >= 3
    csv = client.get("/v1/alerts.csv", params=filters)
    assert read_csv(csv.content) == [as_csv_text(alert_row(i, rfc3339)) for i in expected]
    parquet = client.get("/v1/alerts.parquet", params=filters)
    assert read_parquet(parquet.content) == [alert_row(i, utc) for i in expected]


def test_an_alert_changed_by_an_analyst_leaves_the_filtered_export(client: TestClient) -> None:
    client.post("/v1/alerts/ann-big/review", json={"verdict": "fraud", "note": "called the customer"})
    closed = read_csv(client.get("/v1/alerts.csv", params={"status": "closed"}).content)
    assert [(a["transaction_id"], a["verdict"], a["note"]) for a in closed] == [
        ("ann-big", "fraud", "called the customer")
    ]
    still_open = read_parquet(client.get("/v1/alerts.parquet", params={"status": "open"}).content)
    assert "ann-big" not in {a["transaction_id"] for a in still_open}


def test_csv_cells_that_would_run_as_formulas_begin_with_an_apostrophe(client: TestClient) -> None:
    rows = {r["transaction_id"]: r for r in read_csv(client.get("/v1/transactions.csv").content)}
    assert {name: rows["evil"][name] for name in FORMULAS} == {k: f"'{v}" for k, v in FORMULAS.items()}
    # Numbers stay numbers (a negative longitude is no formula), and the raw CSV has no cell that a
    # spreadsheet would read as a formula.
    assert rows["bob-1"]["lon"] == -74.0
    raw = pd.read_csv(
        io.BytesIO(client.get("/v1/transactions.csv").content), dtype=str, keep_default_na=False
    )
    for name in raw.columns:
        for cell in raw[name]:
            assert not re.match(r"[=+@\t\r]", cell), (name, cell)
            assert not cell.startswith("-") or re.fullmatch(r"-[0-9.]+", cell), (name, cell)
    # A client's own attribute keeps its value, inside the attributes column's JSON.
    assert rows["cid-1"]["attributes"] == {"loyalty_tier": "gold", "note": "=1+1"}
    # Parquet is not read by a spreadsheet's formula engine: its values are the stored ones.
    stored = {r["transaction_id"]: r for r in read_parquet(client.get("/v1/transactions.parquet").content)}
    assert {name: stored["evil"][name] for name in FORMULAS} == FORMULAS


def test_no_card_number_leaves_in_an_export_only_its_fingerprint_bin_and_last4(client: TestClient) -> None:
    csv = client.get("/v1/transactions.csv", params={"user": "bob"}).content.decode()
    assert CARD not in csv
    assert CARD_DIGITS not in csv
    rows = read_parquet(client.get("/v1/transactions.parquet", params={"user": "bob"}).content)
    cells = [str(value) for row in rows for value in row.values()]
    assert not [c for c in cells if CARD_DIGITS in c.replace(" ", "").replace("-", "")]
    cards = {(r["card_bin"], r["card_last4"]) for r in rows if r["card_fingerprint"]}
    assert cards == {("424242", "4242")}


def test_an_export_is_a_download_named_after_its_time(client: TestClient) -> None:
    for path, media_type in (
        ("/v1/transactions.csv", "text/csv; charset=utf-8"),
        ("/v1/transactions.parquet", "application/vnd.apache.parquet"),
        ("/v1/alerts.csv", "text/csv; charset=utf-8"),
        ("/v1/alerts.parquet", "application/vnd.apache.parquet"),
    ):
        answer = client.get(path)
        assert answer.headers["content-type"] == media_type
        name = path.removeprefix("/v1/").replace(".", r"-\d{8}T\d{6}Z\.")
        assert re.fullmatch(f'attachment; filename="{name}"', answer.headers["content-disposition"]), path
        assert answer.headers["cache-control"] == "no-store"


def test_every_export_is_in_the_audit_log_with_who_took_it_and_its_filters(client: TestClient) -> None:
    client.get("/v1/transactions.csv", params={"user": "bob", "min_score": 10})
    client.get("/v1/alerts.parquet", params={"status": "open"})
    entries = client.get("/v1/audit", params={"action": "export", "limit": 2}).json()["items"]
    assert [(e["subject"], e["details"]) for e in entries] == [
        ("alerts.parquet", {"status": ["open"], "order": "risk"}),
        ("transactions.csv", {"user_id": "bob", "min_score": 10, "order": "newest"}),
    ]
    assert {e["actor"] for e in entries} == {"admin"}


def test_an_export_of_nothing_is_a_header_or_an_empty_table_with_every_column(client: TestClient) -> None:
    csv = client.get("/v1/transactions.csv", params={"user": "nobody"}).content.decode()
    assert csv.startswith('"transaction_id","timestamp","user_id","amount",')
    assert csv.count("\n") == 1
    table = pq.read_table(
        io.BytesIO(client.get("/v1/alerts.parquet", params={"status": "in_review"}).content)
    )
    assert table.num_rows == 0
    assert table.column_names[:3] == ["transaction_id", "created_at", "updated_at"]


def test_the_file_names_are_not_read_as_a_transaction_id(client: TestClient) -> None:
    # `/v1/transactions/{transaction_id}` is a route too: the exports must be answered as exports.
    assert client.get("/v1/transactions.csv").text.startswith('"transaction_id",')
    assert client.get("/v1/transactions/ann-1").json()["transaction_id"] == "ann-1"


@pytest.mark.parametrize(
    "path", ["/v1/transactions.csv", "/v1/transactions.parquet", "/v1/alerts.csv", "/v1/alerts.parquet"]
)
def test_an_export_needs_a_key_that_may_read(client: TestClient, path: str) -> None:
    keyless = TestClient(client.app)  # the same running app, without the admin's key
    anonymous = keyless.get(path)
    assert anonymous.status_code == 401, anonymous.text
    assert "API key" in anonymous.json()["detail"]
    store = client.app.state.service.store  # type: ignore[attr-defined]
    viewer = store.create_api_key(f"viewer-{path}", "viewer", 0)
    ingest = store.create_api_key(f"ingest-{path}", "ingest", 0)
    assert keyless.get(path, headers={"X-API-Key": viewer}).status_code == 200
    refused = keyless.get(path, headers={"Authorization": f"Bearer {ingest}"})
    assert refused.status_code == 403
    assert "ingest" in refused.json()["detail"]
    # The dashboard's cookie, as a download link on its pages sends it.
    assert keyless.get(path, headers={"Cookie": f"fraudstream_key={viewer}"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/transactions.csv", {"decision": "maybe"}, "decision"),
        ("/v1/transactions.parquet", {"from": "yesterday"}, "from"),
        ("/v1/transactions.csv", {"order": "random"}, "order"),
        ("/v1/alerts.csv", {"status": "pending"}, "status"),
        ("/v1/alerts.parquet", {"order": "oldest"}, "order"),
    ],
)
def test_a_bad_filter_is_refused_as_json_naming_the_field(
    client: TestClient, path: str, params: dict[str, str], field: str
) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/json"
    assert [e["field"] for e in answer.json()["errors"]] == [field]


@pytest.mark.parametrize("order", ORDERS)
def test_store_pages_walk_every_row_once_in_the_listings_order(client: TestClient, order: str) -> None:
    store = client.app.state.service.store  # type: ignore[attr-defined]
    expected = [i["transaction_id"] for i in listing(client, "/v1/transactions", order=order)]
    pages = list(store.transaction_pages({}, order, page_rows=6))
    assert [len(page["seq"]) for page in pages[:-1]] == [6] * (len(pages) - 1)
    assert [tid for page in pages for tid in page["transaction_id"]] == expected
    for alert_order in ("risk", "newest"):
        alerts = [a["transaction_id"] for a in listing(client, "/v1/alerts", order=alert_order)]
        pages = list(store.alert_pages(None, alert_order, page_rows=1))
        assert [tid for page in pages for tid in page["transaction_id"]] == alerts
