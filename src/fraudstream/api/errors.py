"""Every error answer is JSON that names the field and the problem; bad input is never a 500."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudstream.api.deps import MalformedJSONError
from fraudstream.errors import OverloadError, RuleError, SinkError, ValidationError

__all__ = [
    "BodyLimit",
    "answer_for",
    "body_too_large",
    "http_error",
    "install",
    "internal_error",
    "invalid_transaction",
    "malformed_json",
    "overloaded",
    "storage_unavailable",
]

log = structlog.get_logger("fraudstream.api")


def _fields(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        errors.append({"field": ".".join(location) or "body", "problem": error.get("msg", "is invalid")})
    return errors


def storage_unavailable(exc: SinkError) -> tuple[int, dict[str, Any]]:
    """The database could not store the decision: 503, so the client retries (ids make it safe).

    The database's own message (which may quote the statement and its values) goes to the log under an
    error id; the client gets the id, to quote when asking an operator."""
    error_id = secrets.token_hex(6)
    log.error("storage unavailable", error_id=error_id, error=str(exc))
    detail = (
        "the database could not store this request; retry it (a transaction sent again with the same "
        "transaction_id is scored once)"
    )
    return 503, {"error": "storage_unavailable", "detail": detail, "error_id": error_id}


def overloaded(exc: OverloadError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Too much is waiting: 503 with Retry-After; nothing of the request was taken."""
    body = {"error": "overloaded", "detail": str(exc), "retry_after_s": exc.retry_after_s}
    return 503, body, {"retry-after": str(exc.retry_after_s)}


def internal_error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """A bug: logged with its traceback under an error id; the client gets the id and nothing else."""
    error_id = secrets.token_hex(6)
    log.error("request failed", error_id=error_id, exc_info=exc)
    detail = "the server failed to answer this request; quote the error_id when you report it"
    return 500, {"error": "internal_error", "detail": detail, "error_id": error_id}


def malformed_json(exc: MalformedJSONError) -> tuple[int, dict[str, Any]]:
    """400 saying where the JSON broke."""
    return 400, {"error": "malformed_json", "detail": f"the body is not valid JSON: {exc.detail}"}


def invalid_transaction(exc: ValidationError) -> tuple[int, dict[str, Any]]:
    """422 naming each invalid field, its problem and what is allowed."""
    return 422, {"error": "invalid_transaction", "errors": [e.as_dict() for e in exc.errors]}


def http_error(exc: StarletteHTTPException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A refusal a route raised (401, 403, 404, 413, 429...), with its headers (Retry-After)."""
    return exc.status_code, {"error": "http_error", "detail": exc.detail}, dict(exc.headers or {})


def body_too_large(limit: int) -> tuple[int, dict[str, Any]]:
    """413 for a body over ``limit`` bytes."""
    return 413, {"error": "body_too_large", "detail": f"the request body is larger than {limit} bytes"}


def answer_for(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and extra headers for what the transaction route (which writes its own answers)
    can raise: overload, refusals, malformed JSON, invalid fields, storage; anything else is a bug (500).
    The same answers as the application's handlers give."""
    if isinstance(exc, OverloadError):
        return overloaded(exc)
    if isinstance(exc, StarletteHTTPException):
        return http_error(exc)
    if isinstance(exc, MalformedJSONError):
        return (*malformed_json(exc), {})
    if isinstance(exc, ValidationError):
        return (*invalid_transaction(exc), {})
    if isinstance(exc, SinkError):
        return (*storage_unavailable(exc), {})
    return (*internal_error(exc), {})


def install(app: FastAPI) -> None:
    @app.exception_handler(MalformedJSONError)
    async def malformed(_: Request, exc: MalformedJSONError) -> JSONResponse:
        status, body = malformed_json(exc)
        return JSONResponse(body, status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        json_error = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if json_error is not None:
            detail = f"the body is not valid JSON: {json_error.get('ctx', {}).get('error', 'parse error')}"
            return JSONResponse({"error": "malformed_json", "detail": detail}, 400)
        return JSONResponse({"error": "invalid_request", "errors": _fields(exc)}, 422)

    @app.exception_handler(ValidationError)
    async def invalid_fields(_: Request, exc: ValidationError) -> JSONResponse:
        status, body = invalid_transaction(exc)
        return JSONResponse(body, status)

    @app.exception_handler(RuleError)
    async def invalid_rules(_: Request, exc: RuleError) -> JSONResponse:
        detail = {"rule": exc.rule, "position": exc.position, "reason": exc.reason}
        return JSONResponse({"error": "invalid_rules", "detail": str(exc), **detail}, 422)

    @app.exception_handler(SinkError)
    async def unavailable(_: Request, exc: SinkError) -> JSONResponse:
        status, body = storage_unavailable(exc)
        return JSONResponse(body, status)

    @app.exception_handler(OverloadError)
    async def too_busy(_: Request, exc: OverloadError) -> JSONResponse:
        status, body, headers = overloaded(exc)
        return JSONResponse(body, status, headers=headers)

    @app.exception_handler(Exception)
    async def failed(_: Request, exc: Exception) -> JSONResponse:
        status, body = internal_error(exc)
        return JSONResponse(body, status)

    @app.exception_handler(StarletteHTTPException)
    async def refused(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        status, body, headers = http_error(exc)
        return JSONResponse(body, status, headers=headers)


class BodyLimit:
    """Refuse bodies over the limit with 413, with or without a Content-Length header."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLargeError
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLargeError:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = orjson.dumps(body_too_large(self.limit)[1])
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLargeError(Exception):
    pass
