"""/docs (Swagger UI) and /redoc, served with their scripts and styles from this server.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so offline (or behind a firewall) they are
blank. The assets come from the `fastapi-offline` package (Swagger UI 5 and ReDoc 2, re-released as
they change): installed with the server, never copied into this repository, never fetched at run time.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount

from fraudstream.api.security import CSP_NONCE

__all__ = ["ASSETS", "ASSETS_PATH", "router"]

#: The folder of `fastapi-offline`'s assets: swagger-ui-bundle.js, swagger-ui.css,
#: redoc.standalone.js and favicon.png.
ASSETS = Path(str(files("fastapi_offline") / "static"))
#: Where they are served.
ASSETS_PATH = "/docs/assets"

#: What Swagger UI starts with, besides FastAPI's defaults. `validatorUrl: None` turns off its badge,
#: which would send the document's address to validator.swagger.io; the key given to Authorize is kept
#: across reloads (in the browser's local storage); each operation shows its operationId, the name a
#: generated client gives it.
SWAGGER_PARAMETERS = {"validatorUrl": None, "persistAuthorization": True, "displayOperationId": True}

router = APIRouter(include_in_schema=False)
router.routes.append(Mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs_assets"))


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="fraudstream API — Swagger UI",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        swagger_ui_parameters=SWAGGER_PARAMETERS,
    )
    return _with_nonce(page, request)


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    page = get_redoc_html(
        openapi_url="/openapi.json",
        title="fraudstream API — ReDoc",
        redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_PATH}/favicon.png",
        with_google_fonts=False,
    )
    return _with_nonce(page, request)


def _with_nonce(page: HTMLResponse, request: Request) -> HTMLResponse:
    """The page with this answer's nonce on its inline script (Swagger UI's start): the browser guard
    allows exactly that script in the page's policy, and no other inline code."""
    nonce: str | None = request.scope.get(CSP_NONCE)  # None without the guard: then no policy applies
    html = bytes(page.body).decode()
    return HTMLResponse(html if nonce is None else html.replace("<script>", f'<script nonce="{nonce}">'))
