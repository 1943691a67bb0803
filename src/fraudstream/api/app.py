"""The FastAPI application: the service's life cycle, routes, error handlers and body limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fraudstream import __version__
from fraudstream.api import compat, errors
from fraudstream.api.routes import alerts, backtests, health, labels, rules, stats, stream, transactions
from fraudstream.config import Settings
from fraudstream.runtime.embedded import ScoringService

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The whole HTTP surface around a scoring service built from ``settings``."""
    service = ScoringService(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="fraudstream",
        version=__version__,
        description="Real-time transaction fraud detection: decisions, scores and reasons in milliseconds.",
        lifespan=lifespan,
    )
    app.state.service = service
    errors.install(app)
    # Routes are added to the app's own router: one flat table to match against per request, rather
    # than one nested router per module.
    for module in (transactions, alerts, labels, rules, backtests, stats, health, stream, compat):
        app.router.routes.extend(module.router.routes)
    app.add_middleware(errors.BodyLimit, limit=service.settings.max_body_bytes)
    return app
