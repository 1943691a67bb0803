"""The dashboard page served at / to browsers (build-free: one HTML file, plain JavaScript)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

__all__ = ["dashboard_html"]


@lru_cache(maxsize=1)
def dashboard_html() -> str:
    return resources.files("fraudstream.web").joinpath("index.html").read_text(encoding="utf-8")
