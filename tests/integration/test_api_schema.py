"""The OpenAPI document: valid, every reference resolving, every body described (issue 19)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from fraudstream.api import create_app
from fraudstream.config import Settings

pytestmark = pytest.mark.integration

ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture
def document(tmp_path: Path) -> dict[str, Any]:
    """The OpenAPI document as the server serves it at /openapi.json."""
    return create_app(Settings(demo=True, data_dir=tmp_path)).openapi()


def test_the_document_is_valid_openapi_and_every_reference_resolves(document: dict[str, Any]) -> None:
    validate(document)  # the structure; it does not follow $refs inside schemas
    dangling = sorted(ref for ref in _references(document) if not _resolves(document, ref))
    assert dangling == []


def test_every_documented_422_is_the_error_body_the_handlers_answer(document: dict[str, Any]) -> None:
    documented = {
        f"{method.upper()} {path}": operation["responses"]["422"]["content"]["application/json"]["schema"]
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if "422" in operation["responses"]
    }
    assert documented
    assert {name: schema for name, schema in documented.items() if schema != ERROR_BODY} == {}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/v1/transactions"),
        ("post", "/v1/labels"),
        ("put", "/v1/rules"),
        ("post", "/transaction"),
        ("post", "/api/v1/transactions"),
        ("post", "/predict"),
        ("post", "/validate-transaction"),
    ],
)
def test_routes_that_read_their_own_body_document_it(
    document: dict[str, Any], method: str, path: str
) -> None:
    assert document["paths"][path][method]["requestBody"]["content"]


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _resolves(document: dict[str, Any], ref: str) -> bool:
    if not ref.startswith("#/"):
        return False
    node: Any = document
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
