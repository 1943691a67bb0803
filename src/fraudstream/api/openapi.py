"""What the OpenAPI document says besides the routes' signatures: the error answers each route can
give, with the body the error handlers write, and the examples of its requests and answers.

Routes name their errors by status (`errors(401, 403, 404)`), so /docs lists what a client must
handle, and schemathesis (tests/integration/test_api_schema.py) checks every such answer against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from fraudstream.api import examples
from fraudstream.api.models import ErrorBody

__all__ = [
    "KEYED",
    "SCORING",
    "WITH_BODY",
    "answer",
    "body_example",
    "errors",
    "named_examples",
    "restore_examples",
]

#: Why each error status is answered, and a real body of it.
_ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("The body is not JSON; the detail says where it broke", examples.MALFORMED_JSON),
    401: (
        "No API key, or one that is not valid or was revoked",
        {
            "error": "http_error",
            "detail": "an API key is required: send it as X-API-Key or Authorization: Bearer",
        },
    ),
    403: (
        "The key's role may not do this (or a write signed in with the dashboard's cookie came from "
        "another site)",
        {
            "error": "http_error",
            "detail": "the role 'viewer' may not ingest; allowed: ['admin', 'analyst', 'ingest']",
        },
    ),
    404: ("Nothing by that name or id", {"error": "http_error", "detail": "no transaction 'txn_404'"}),
    409: ("The transaction_id was already scored with a different body", examples.CONFLICT),
    413: (
        "The body is larger than FRAUDSTREAM_MAX_BODY_BYTES, or a list longer than allowed",
        {"error": "body_too_large", "detail": "the request body is larger than 1048576 bytes"},
    ),
    422: ("Invalid parameters or body: the fields at fault, or the problem", examples.INVALID_TRANSACTION),
    429: (
        "Too many invalid API keys from this address: key checks resume after Retry-After seconds",
        {
            "error": "http_error",
            "detail": "too many invalid API keys from this address; key checks resume in 60 s",
        },
    ),
    503: (
        "Overloaded (retry after Retry-After seconds) or the database could not store the decision "
        "(retry: the same transaction_id is scored once); nothing of the request was kept",
        {
            "error": "overloaded",
            "detail": "1000 transactions are waiting to be scored (at most 1000); nothing of this request "
            "was taken: send it again shortly",
            "retry_after_s": 1,
        },
    ),
}

#: A route that checks the caller's key and role.
KEYED = (401, 403, 429)
#: A route that reads a JSON body (malformed, too large, invalid), besides its key.
WITH_BODY = (400, 401, 403, 413, 422, 429)
#: A route that scores and stores transactions.
SCORING = (400, 401, 403, 409, 413, 422, 429, 503)


def errors(*statuses: int, **examples_by_status: Any) -> dict[int | str, dict[str, Any]]:
    """The documented answers for ``statuses``: `ErrorBody` with its description and a real example;
    ``examples_by_status`` (``e404=...``) replaces the example of one status with the route's own."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, example = _ERRORS[status]
        example = examples_by_status.get(f"e{status}", example)
        documented[status] = {
            "model": ErrorBody,
            "description": description,
            "content": {"application/json": {"example": example}},
        }
    return documented


def answer(example: Any, description: str | None = None, **more: Any) -> dict[str, Any]:
    """A documented success answer with its example (``more``: model=, or other response fields)."""
    documented: dict[str, Any] = {"content": {"application/json": {"example": example}}, **more}
    if description is not None:
        documented["description"] = description
    return documented


def named_examples(**named: tuple[str, Any]) -> dict[str, Any]:
    """Named examples (name=(summary, value)) of a JSON body, which /docs offers in a list."""
    return {name: {"summary": summary, "value": value} for name, (summary, value) in named.items()}


def restore_examples(document: dict[str, Any], routes: Iterable[BaseRoute]) -> None:
    """Put each route's examples back into ``document`` as they were written.

    FastAPI encodes the whole document without its null values (`exclude_none`), examples included,
    so `"probability": null` vanished from a decision and the example no longer showed a real answer
    (nor matched a schema where the field is required). The examples are copied back verbatim."""
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            for status, declared in route.responses.items():
                _copy_examples(declared.get("content", {}), operation["responses"][str(status)]["content"])
            body = (route.openapi_extra or {}).get("requestBody")
            if body is not None:
                _copy_examples(body["content"], operation["requestBody"]["content"])


def _copy_examples(written: dict[str, Any], documented: dict[str, Any]) -> None:
    for media, content in written.items():
        for key in ("example", "examples"):
            if key in content:
                documented[media][key] = jsonable_encoder(content[key])


def body_example(example: Any) -> dict[str, Any]:
    """`openapi_extra` giving a JSON request body its example (merged into what FastAPI documents)."""
    return {"requestBody": {"content": {"application/json": {"example": example}}}}
