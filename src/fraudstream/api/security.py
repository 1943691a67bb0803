"""Browser protections around the whole app: security headers on every answer, and writes that carry no
API key header (the dashboard's cookie, or nothing in demo mode) only from the server's own pages."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

import orjson
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudstream.api.access_log import AccessLog
from fraudstream.config import Settings

__all__ = ["CSP_NONCE", "DOCS_POLICY", "HEADERS", "PAGE_POLICY", "BrowserGuard", "protect"]

#: The dashboard loads its own script, style sheet and icon, calls its own API and alert socket ('self'
#: covers ws: and wss: to the same host), and runs nothing inline: app.js sets computed styles through
#: the DOM (`element.style`), which a policy without 'unsafe-inline' allows.
PAGE_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

#: The API docs, /docs (Swagger UI) and /redoc, load their script, style sheet and icon from this server
#: (`api/docs.py`) and nothing from anywhere else. Swagger UI starts with one inline script, allowed by
#: the nonce of that answer alone. Styles may be inline: ReDoc's styled-components writes <style>
#: elements at run time, without a nonce it could be given, and its page starts with one; styles run no
#: code. ReDoc's search runs in a worker made from a blob: URL.
DOCS_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'nonce-{nonce}'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

_DOCS_PATHS = frozenset({"/docs", "/redoc"})
#: The scope entry where the guard leaves a docs page's nonce, for the page to put on its script.
CSP_NONCE = "fraudstream.csp_nonce"

#: Every answer's security headers (JSON ones too: nosniff keeps a browser from reading them as HTML).
#: Referrer-Policy is same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` on
#: the dashboard's own writes, which the origin check below must refuse.
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", PAGE_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_COOKIE = "fraudstream_key"
#: Pages whose writes are HTML forms (sign-in, sign-out): origin-checked, but form-encoded.
_FORM_PATHS = frozenset({"/login", "/logout"})
_JSON_TYPES = ("application/json",)
#: Routes that take another body besides JSON, by (method, path).
_OTHER_TYPES = {("PUT", "/v1/rules"): ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")}
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def protect(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` behind the browser guard (and the access log when FRAUDSTREAM_ACCESS_LOG is on): the
    outermost layers, so that every answer, the hot route's too, gets the headers and the checks."""
    guarded: ASGIApp = BrowserGuard(app, settings.allowed_origin_list)
    return AccessLog(guarded) if settings.access_log else guarded


class BrowserGuard:
    """Adds `HEADERS` to every answer, and refuses what a page of another site could make a browser
    send with the dashboard's cookie (or, in demo mode, with no key at all):

    - a write (POST, PUT, PATCH, DELETE) or a WebSocket without an API key header (or `?key=`) whose
      `Origin` (or, without one, `Referer`) is not this server's own host: 403 `forbidden_origin`.
      A request with neither header is let through: browsers send `Origin` on every write and every
      WebSocket, so it is not a page's doing, and the cookie is `SameSite=Strict` besides.
    - a write with the cookie whose body is not JSON (or YAML where the route takes it): 415.

    Clients that send their key in `X-API-Key` or `Authorization: Bearer` are not checked: a page of
    another site cannot add those headers without a CORS preflight, which this server never grants.
    """

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(_origin_key(o) for o in allowed_origins) - {None}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        added = _docs_headers(scope) if scope["path"] in _DOCS_PATHS else HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        if scope["method"] in _UNSAFE_METHODS:
            headers = _headers(scope)
            if not _has_key_header(headers):
                refusal = self._origin_refusal(headers) or _media_type_refusal(scope, headers)
                if refusal is not None:
                    await _answer(send_with_headers, *refusal)
                    return
        await self.app(scope, receive, send_with_headers)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        explicit = _has_key_header(headers) or b"key=" in scope.get("query_string", b"")
        refusal = None if explicit else self._origin_refusal(headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await receive()  # websocket.connect
        # Closing before accepting makes the server answer the handshake with 403.
        await send({"type": "websocket.close", "code": 4403, "reason": refusal[2]["detail"][:120]})

    def _origin_refusal(self, headers: dict[bytes, bytes]) -> tuple[int, str, dict[str, str]] | None:
        source = headers.get(b"origin") or headers.get(b"referer")
        if source is None:
            return None
        claimed = _origin_key(source.decode("latin-1"))
        if claimed is not None and (claimed == _host_key(headers, claimed[0]) or claimed in self.allowed):
            return None
        shown = source.decode("latin-1")[:200]
        detail = (
            f"this write comes from a page of another site ({shown!r}), without an API key header; "
            "only this server's own pages may write with the dashboard's sign-in. Send the key as "
            "X-API-Key, or list the site in FRAUDSTREAM_ALLOWED_ORIGINS"
        )
        return 403, "forbidden_origin", {"detail": detail}


def _media_type_refusal(scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str, dict[str, str]] | None:
    """415 for a cookie-authenticated write whose body is not of a type its route takes."""
    if scope["path"] in _FORM_PATHS or _COOKIE not in cookie_parser(
        headers.get(b"cookie", b"").decode("latin-1")
    ):
        return None
    declared = headers.get(b"content-type")
    if declared is None:
        has_body = headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
        if not has_body:
            return None
        media = ""
    else:
        media = declared.decode("latin-1").split(";", 1)[0].strip().lower()
    allowed = _JSON_TYPES + _OTHER_TYPES.get((scope["method"], scope["path"]), ())
    if media in allowed or media.endswith("+json"):
        return None
    detail = (
        f"the body's Content-Type is {media or 'missing'}; this route takes {' or '.join(allowed)} "
        "(a write signed in with the dashboard's cookie must say what its body is)"
    )
    return 415, "unsupported_media_type", {"detail": detail, "allowed": ", ".join(allowed)}


def _docs_headers(scope: Scope) -> tuple[tuple[bytes, bytes], ...]:
    """A docs page's headers, with a fresh nonce in its policy, left in ``scope`` for the page."""
    nonce = secrets.token_urlsafe(18)
    scope[CSP_NONCE] = nonce
    policy = DOCS_POLICY.format(nonce=nonce).encode()
    return ((b"content-security-policy", policy), *HEADERS[1:])


async def _answer(send: Send, status: int, error: str, fields: dict[str, str]) -> None:
    body = orjson.dumps({"error": error, **fields})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", ())}


def _has_key_header(headers: dict[bytes, bytes]) -> bool:
    return bool(headers.get(b"x-api-key")) or headers.get(b"authorization", b"")[:7].lower() == b"bearer "


def _origin_key(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or URL, the port filled in from the scheme; None when it
    names no host (`null`, garbage)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme]


def _host_key(headers: dict[bytes, bytes], scheme: str) -> tuple[str, str, int] | None:
    """The request's own host as an origin of ``scheme``: a TLS proxy in front turns https into http,
    so the scheme is taken from the origin and only host and port must match."""
    host = headers.get(b"host")
    return None if host is None else _origin_key(f"{scheme}://{host.decode('latin-1')}")
