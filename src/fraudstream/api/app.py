"""The FastAPI application: the service's life cycle, routes, error handlers and body limits."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from fraudstream import __version__
from fraudstream.api import compat, docs, errors
from fraudstream.api.openapi import restore_examples
from fraudstream.api.routes import (
    alerts,
    audit,
    backtests,
    cases,
    drift,
    exports,
    health,
    jobs,
    keys,
    labels,
    metrics,
    models,
    rules,
    snoozes,
    stats,
    stream,
    transactions,
    users,
    webhooks,
)
from fraudstream.api.security import protect
from fraudstream.config import Settings
from fraudstream.errors import ConfigError
from fraudstream.runtime.embedded import ScoringService
from fraudstream.web import pages

__all__ = ["SHUTDOWN_GRACE_S", "create_app", "ensure_port_free"]

#: On SIGTERM/Ctrl-C, requests in flight get this long to finish; then open connections (live alert
#: WebSockets never end by themselves) are closed, and the service drains and writes its snapshot.
SHUTDOWN_GRACE_S = 3


def ensure_port_free(host: str, port: int) -> None:
    """Fail at once, saying so, when ``host:port`` cannot be listened on (another server has it):
    uvicorn finds out only after the service has started, and then exits with a bare log line."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; stop what is using it "
                "or choose another port (--port, FRAUDSTREAM_PORT)"
            ) from None


def create_app(settings_or_service: Settings | ScoringService | None = None) -> FastAPI:
    """The whole HTTP surface around a scoring service: one built from settings, or one given.

    The app's lifespan starts the service and stops it (final snapshot) on shutdown.
    """
    if isinstance(settings_or_service, ScoringService):
        service = settings_or_service
    else:
        service = ScoringService(settings_or_service or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = _Api(
        title="fraudstream",
        version=__version__,
        description="Real-time transaction fraud detection: decisions, scores and reasons in milliseconds.",
        lifespan=lifespan,
        # Served by `api/docs.py` from this server's own copy of Swagger UI and ReDoc, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    errors.install(app)
    # Routes are added to the app's own router: one flat table to match against per request, rather
    # than one nested router per module.
    routes = (
        exports,
        transactions, alerts, labels, rules, backtests, models, stats, users, health, metrics, stream, compat,
        keys, webhooks, docs, pages,
        snoozes,
        jobs,
        cases, audit,
        drift,
    )  # fmt: skip
    for module in routes:
        app.router.routes.extend(module.router.routes)
    app.add_middleware(errors.BodyLimit, limit=service.settings.max_body_bytes)
    return app


class _Api(FastAPI):
    """FastAPI with the hot route (`POST /v1/transactions`) answered ahead of its whole middleware
    stack, by the same code as its documented route (`routes/transactions.py`)."""

    def build_middleware_stack(self) -> ASGIApp:
        service: ScoringService = self.state.service
        scored_first = transactions.ScoreRouteFirst(super().build_middleware_stack(), service)
        return protect(scored_first, service.settings)  # headers, origin checks, access log: for every answer

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            restore_examples(super().openapi(), self.routes)
        return super().openapi()  # the document built once, kept by FastAPI
