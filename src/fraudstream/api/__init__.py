"""The HTTP API: versioned routes under /v1, the routes of the systems users migrate from, live alerts."""

from fraudstream.api.app import create_app

__all__ = ["create_app"]
