"""The dashboard's pages: overview at /, the rest under /ui/, sign-in at /login."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.routing import Mount

from fraudstream import __version__
from fraudstream.access import blocked_for, identify, may
from fraudstream.runtime.embedded import ScoringService

__all__ = ["overview", "router"]

_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=_HERE / "templates")
router = APIRouter(include_in_schema=False)
router.routes.append(Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"))

COOKIE = "fraudstream_key"

#: The navigation: (path, label) in the order analysts use them.
NAV = (
    ("/", "Overview"),
    ("/ui/queue", "Review queue"),
    ("/ui/cases", "Cases"),
    ("/ui/transactions", "Transactions"),
    ("/ui/check", "Check a transaction"),
    ("/ui/rules", "Rules"),
    ("/ui/models", "Models"),
    ("/ui/drift", "Drift"),
    ("/ui/jobs", "Jobs"),
    ("/ui/audit", "Audit"),
)


async def _page(request: Request, template: str, title: str, **context: Any) -> Response:
    caller = await identify(request.app.state.service, request)
    if caller is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    svc: ScoringService = request.app.state.service
    permissions = {p: may(caller.role, p) for p in ("read", "review", "admin")}
    if not permissions["read"]:
        return HTMLResponse(f"The role {caller.role!r} cannot use the dashboard.", status_code=403)
    return templates.TemplateResponse(
        request,
        template,
        {
            "title": title,
            "nav": NAV,
            "path": request.url.path,
            "caller": caller,
            "can": permissions,
            "keys_required": svc.settings.keys_required,
            "version": __version__,
            **context,
        },
    )


async def overview(request: Request) -> Response:
    return await _page(request, "overview.html", "Overview")


@router.get("/ui/transactions/{transaction_id}")
async def transaction_page(request: Request, transaction_id: str) -> Response:
    return await _page(
        request, "transaction.html", f"Transaction {transaction_id}", transaction_id=transaction_id
    )


@router.get("/ui/cases/{case_id}")
async def case_page(request: Request, case_id: str) -> Response:
    return await _page(request, "case.html", f"Case {case_id}", case_id=case_id)


def _simple_page(template: str, title: str) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        return await _page(request, template, title)

    return page


# Every page in the navigation but the overview (served at / by the compatibility route) is a template
# named after its path: /ui/queue → queue.html.
for _path, _title in NAV[1:]:
    router.add_api_route(_path, _simple_page(f"{_path.removeprefix('/ui/')}.html", _title), methods=["GET"])


def _safe_next(target: str | None) -> str:
    """Only a local path: a sign-in link must not send the analyst to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
async def login_form(request: Request, target: str = Query("/", alias="next")) -> Response:
    return templates.TemplateResponse(
        request,
        "login.html",
        {"title": "Sign in", "next": _safe_next(target), "error": None, "version": __version__},
    )


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    key = (form.get("key") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/"])[0])
    svc: ScoringService = request.app.state.service
    caller = await identify(svc, request, key) if key else None  # a refused key is logged and counted
    if caller is None:
        wait = blocked_for(svc, request)
        error = "This API key is not valid or was revoked."
        if wait is not None:
            error = f"Too many invalid keys from this address; try again in {wait} seconds."
        context = {"title": "Sign in", "next": target, "version": __version__, "error": error}
        headers = None if wait is None else {"Retry-After": str(wait)}
        return templates.TemplateResponse(
            request, "login.html", context, status_code=401 if wait is None else 429, headers=headers
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE, key, httponly=True, samesite="strict", secure=request.url.scheme == "https", max_age=12 * 3600
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response
