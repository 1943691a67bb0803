"""/docs (Swagger UI) and /redoc work offline: the pages and their assets come from the server itself
(the fastapi-offline package), their policy names no other host, and in a real Chromium that may
reach nothing but this machine both list every operation of /openapi.json, and Swagger UI's Authorize
and "Try it out" call the API with the key (issue 24)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from browsers import offline_context
from servers import RunningServer, start_server, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ADMIN_KEY = "fs_admin_docs_test_0123456789"
WAIT_MS = 30_000
#: ReDoc 2 draws the Redocly logo beside "API docs by Redocly" from this address, with no option to
#: turn it off; the docs' policy (img-src 'self' data:) stops it in the browser before any request.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_BLOCKED = re.compile(r"Loading the \w+ '([^']+)' violates the following Content Security Policy")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    found = start_server(tmp_path_factory.mktemp("docs"), api_keys_enabled="true", admin_key=ADMIN_KEY)
    yield found
    stop(found)


@pytest.fixture(scope="module")
def operation_ids(server: RunningServer) -> set[str]:
    document = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    paths = document["paths"].values()
    return {operation["operationId"] for methods in paths for operation in methods.values()}


class _References(HTMLParser):
    """Every src and href of a page, and the text of its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        if tag == "script" and "src" not in found:
            self.inline_scripts.append(found)


def _references(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_reference_nothing_but_this_server(server: RunningServer, path: str) -> None:
    page = httpx.get(f"{server.url}{path}", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    found = _references(page.text)
    assert found.urls, "the page loads its script from somewhere"
    assert [url for url in found.urls if not url.startswith("/") or url.startswith("//")] == []
    assert "://" not in page.text  # nor in an inline script or style
    policy = page.headers["content-security-policy"]
    assert "http" not in policy, policy
    # The one inline script (Swagger UI's start) carries the nonce of this answer's policy.
    for script in found.inline_scripts:
        assert f"'nonce-{script['nonce']}'" in policy


def test_each_answer_has_its_own_nonce(server: RunningServer) -> None:
    answers = [httpx.get(f"{server.url}/docs", timeout=10) for _ in range(3)]
    policies = {answer.headers["content-security-policy"] for answer in answers}
    assert len(policies) == 3


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/docs/assets/swagger-ui-bundle.js", "text/javascript", b"SwaggerUIBundle"),
        ("/docs/assets/swagger-ui.css", "text/css", b".swagger-ui"),
        ("/docs/assets/redoc.standalone.js", "text/javascript", b"Redoc"),
        ("/docs/assets/favicon.png", "image/png", b"\x89PNG"),
    ],
)
def test_the_assets_are_served_by_the_server(
    server: RunningServer, path: str, content_type: str, marker: bytes
) -> None:
    answer = httpx.get(f"{server.url}{path}", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == content_type
    assert marker in answer.content[:200_000]


def test_every_asset_a_page_names_is_served(server: RunningServer) -> None:
    for path in ("/docs", "/redoc"):
        for url in _references(httpx.get(f"{server.url}{path}", timeout=10).text).urls:
            assert httpx.get(f"{server.url}{url}", timeout=10).status_code == 200, url


def test_swagger_ui_lists_every_operation_offline(
    browser: Any, server: RunningServer, operation_ids: set[str]
) -> None:
    with _offline_page(browser) as (page, outside, console):
        page.goto(f"{server.url}/docs")
        expect(page.locator(".opblock")).to_have_count(len(operation_ids), timeout=WAIT_MS)
        shown = set(page.locator(".opblock-summary-operation-id").all_inner_texts())
        assert shown == operation_ids
        expect(page.get_by_role("button", name="Authorize")).to_be_visible()
        assert outside == []
        assert console == []


def test_redoc_lists_every_operation_offline(
    browser: Any, server: RunningServer, operation_ids: set[str]
) -> None:
    with _offline_page(browser) as (page, outside, console):
        page.goto(f"{server.url}/redoc")
        menu = page.locator("li[data-item-id*='/operation/']")
        expect(menu).to_have_count(len(operation_ids), timeout=WAIT_MS)
        items = menu.evaluate_all("items => items.map(i => i.dataset.itemId)")
        assert {item.rsplit("/operation/", 1)[1] for item in items} == operation_ids
        assert outside == []
        blocked = [m for line in console if (m := _BLOCKED.search(line)) is not None]
        assert {m.group(1) for m in blocked} <= {REDOC_LOGO}
        assert [line for line in console if not _BLOCKED.search(line)] == []


def test_swagger_ui_authorizes_with_a_key_and_tries_an_operation(browser: Any, server: RunningServer) -> None:
    with _offline_page(browser) as (page, outside, console):
        page.goto(f"{server.url}/docs#/stats/getStats")
        operation = page.locator("#operations-stats-getStats")
        expect(operation).to_be_visible(timeout=WAIT_MS)
        page.get_by_role("button", name="Authorize").first.click()
        dialog = page.locator(".auth-container").filter(has_text="ApiKey")
        dialog.locator("input").fill(ADMIN_KEY)
        dialog.get_by_role("button", name="Apply credentials").click()
        page.get_by_role("button", name="Close", exact=True).first.click()
        operation.get_by_role("button", name="Try it out").click()
        with page.expect_response(f"{server.url}/v1/stats") as answered:
            operation.get_by_role("button", name="Execute").click()
        assert answered.value.status == 200
        assert answered.value.request.headers["x-api-key"] == ADMIN_KEY
        expect(operation.locator(".live-responses-table tbody .response-col_status")).to_have_text(
            "200", timeout=WAIT_MS
        )
        assert outside == []
        assert console == []


@contextmanager
def _offline_page(browser: Any) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A page in a context that may reach only this machine: the page, the outside URLs it tried, and
    its console errors and uncaught exceptions."""
    context, outside = offline_context(browser, viewport={"width": 1280, "height": 900})
    console: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(f"uncaught: {e}"))
    try:
        yield page, outside, console
    finally:
        context.close()
