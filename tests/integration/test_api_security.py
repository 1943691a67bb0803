"""Browser and key hardening (issue 19, item 7) through the real ASGI stack: security headers, writes
signed in with the dashboard's cookie, throttled key failures, listing and revoking keys, the access log."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from fraudstream.api import create_app
from fraudstream.api.deps import KEY_FAILURES_PER_MINUTE
from fraudstream.cli import app as cli
from fraudstream.config import Settings

pytestmark = pytest.mark.integration

ADMIN_KEY = "fs_admin_security_test_0123456789"
FOREIGN = "https://evil.example"


def keyed_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "demo": True,
        "api_keys_enabled": True,
        "admin_key": ADMIN_KEY,
        "data_dir": tmp_path,
        "batch_wait_ms": 1.0,
    }
    return Settings(**(values | overrides))


def payment(tid: str, amount: float = 50.0) -> dict[str, Any]:
    return {"transaction_id": tid, "user_id": "u-sec", "amount": amount, "timestamp": "2026-11-24T10:00:00Z"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(keyed_settings(tmp_path))) as test_client:
        yield test_client


def signed_in(client: TestClient, role: str = "analyst") -> str:
    """A key of ``role``, set as the dashboard's cookie on ``client``."""
    key: str = client.app.state.service.store.create_api_key(f"{role}-browser", role, 0)  # type: ignore[attr-defined]
    client.cookies.set("fraudstream_key", key)
    return key


# --- headers --------------------------------------------------------------------------------------


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    signed_in(client)
    answers = {
        "page": client.get("/ui/queue"),
        "sign-in": client.get("/login"),
        "script": client.get("/static/app.js"),
        "api": client.get("/v1/stats"),
        "not found": client.get("/v1/nothing-here"),
        # Answered by the hot route ahead of the framework's middleware.
        "fast path": client.post("/v1/transactions", json=payment("h-1"), headers={"X-API-Key": ADMIN_KEY}),
        "refused": client.post("/v1/transactions", json=payment("h-2"), headers={"X-API-Key": "wrong"}),
    }
    assert answers["fast path"].status_code == 201
    for name, answer in answers.items():
        headers = answer.headers
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["referrer-policy"] == "same-origin", name
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, name
        assert "script-src 'self';" in policy, name
        assert "unsafe-inline" not in policy, name


def test_the_api_docs_load_nothing_from_other_hosts_and_only_their_own_inline_script(
    client: TestClient,
) -> None:
    for path in ("/docs", "/redoc"):
        policy = client.get(path).headers["content-security-policy"]
        assert "http" not in policy  # no host but this server's own ('self')
        assert "frame-ancestors 'none'" in policy
        script_src = next(part for part in policy.split("; ") if part.startswith("script-src"))
        assert script_src.startswith("script-src 'self' 'nonce-"), script_src
        assert "unsafe-inline" not in script_src


def test_the_dashboard_has_nothing_inline_its_policy_would_refuse() -> None:
    web = Path(__file__).resolve().parents[2] / "src" / "fraudstream" / "web"
    for source in [*(web / "templates").glob("*.html"), web / "static" / "app.js"]:
        text = source.read_text(encoding="utf-8")
        assert " style=" not in text, f"{source.name}: use data-style (app.js applies it) or a class"
        assert "<style" not in text, source.name
        assert "<script>" not in text, source.name
        assert "javascript:" not in text, source.name


# --- writes with the dashboard's cookie ---------------------------------------------------------


def test_a_cookie_signed_write_from_another_site_is_refused(client: TestClient) -> None:
    signed_in(client)
    foreign = client.post("/v1/transactions", json=payment("o-1"), headers={"Origin": FOREIGN})
    assert foreign.status_code == 403
    assert foreign.json()["error"] == "forbidden_origin"
    assert FOREIGN in foreign.json()["detail"]
    by_referer = client.post(
        "/v1/transactions", json=payment("o-2"), headers={"Referer": f"{FOREIGN}/page.html"}
    )
    assert by_referer.status_code == 403
    sandboxed = client.post("/v1/transactions", json=payment("o-3"), headers={"Origin": "null"})
    assert sandboxed.status_code == 403
    other_port = client.post(
        "/v1/transactions", json=payment("o-4"), headers={"Origin": "http://testserver:8001"}
    )
    assert other_port.status_code == 403
    for tid in ("o-1", "o-2", "o-3", "o-4"):
        assert client.get(f"/v1/transactions/{tid}").status_code == 404, "nothing was written"
    # The dashboard's own pages (the request's own host), and clients that send no Origin at all.
    own = client.post("/v1/transactions", json=payment("o-5"), headers={"Origin": "http://testserver"})
    assert own.status_code == 201
    assert client.post("/v1/transactions", json=payment("o-6")).status_code == 201


def test_a_write_with_an_api_key_header_is_not_origin_checked(client: TestClient) -> None:
    answer = client.post(
        "/v1/transactions", json=payment("k-1"), headers={"Origin": FOREIGN, "X-API-Key": ADMIN_KEY}
    )
    assert answer.status_code == 201


def test_sign_in_from_another_site_is_refused(client: TestClient) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    foreign = client.post("/login", content=f"key={ADMIN_KEY}&next=/", headers={**form, "Origin": FOREIGN})
    assert foreign.status_code == 403
    assert "set-cookie" not in foreign.headers
    own = client.post(
        "/login",
        content=f"key={ADMIN_KEY}&next=/",
        headers={**form, "Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert own.status_code == 303


def test_allowed_origins_may_write_with_the_cookie(tmp_path: Path) -> None:
    settings = keyed_settings(
        tmp_path, allowed_origins="https://fraud.example.com, https://ops.example.com:8443"
    )
    with TestClient(create_app(settings)) as client:
        signed_in(client)
        for origin, status in (
            ("https://fraud.example.com", 201),
            ("https://ops.example.com:8443", 201),
            ("https://ops.example.com", 403),
        ):
            answer = client.post(
                "/v1/transactions", json=payment(f"a-{status}-{origin}"), headers={"Origin": origin}
            )
            assert answer.status_code == status, origin


def test_demo_mode_writes_from_another_site_are_refused(tmp_path: Path) -> None:
    # With keys off every caller is an admin: a page elsewhere must not change the rules of a local demo.
    with TestClient(create_app(Settings(demo=True, data_dir=tmp_path))) as client:
        rules = "version: 9\nrules: []\n"
        foreign = client.put(
            "/v1/rules", content=rules, headers={"Origin": FOREIGN, "Content-Type": "text/plain"}
        )
        assert foreign.status_code == 403
        assert client.get("/v1/rules").json()["version"] != 9
        # curl and scripts send no Origin, and need no Content-Type.
        assert client.put("/v1/rules", content=rules).status_code == 200


def test_a_cookie_signed_write_must_say_its_body_is_json(client: TestClient) -> None:
    signed_in(client, "admin")
    body = json.dumps(payment("c-1"))
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        refused = client.post("/v1/transactions", content=body, headers={"Content-Type": content_type})
        assert refused.status_code == 415, content_type
        assert refused.json()["error"] == "unsupported_media_type"
        assert "application/json" in refused.json()["detail"]
    assert client.get("/v1/transactions/c-1").status_code == 404
    assert client.post("/v1/transactions", content=body).status_code == 415  # a body of no stated type
    accepted = client.post(
        "/v1/transactions", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert accepted.status_code == 201
    # Bodiless writes (assign, promote, shadow) need no type; PUT /v1/rules also takes YAML.
    client.post("/v1/transactions", json=payment("c-2", 60_000.0))
    assert client.post("/v1/alerts/c-2/assign").status_code == 200
    yaml_rules = client.put(
        "/v1/rules", content="version: 3\nrules: []\n", headers={"Content-Type": "application/yaml"}
    )
    assert yaml_rules.status_code == 200
    plain_rules = client.put(
        "/v1/rules", content="version: 4\nrules: []\n", headers={"Content-Type": "text/plain"}
    )
    assert plain_rules.status_code == 415
    assert "application/yaml" in plain_rules.json()["detail"]


def test_clients_with_a_key_header_may_send_json_of_any_stated_type(client: TestClient) -> None:
    # `curl -d` says application/x-www-form-urlencoded unless told otherwise; a key header cannot be
    # sent by another site's page, so its writes are no forgery and keep working.
    body = json.dumps(payment("curl-1"))
    answer = client.post(
        "/v1/transactions",
        content=body,
        headers={"X-API-Key": ADMIN_KEY, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 201


def test_the_alert_socket_refuses_a_page_of_another_site_with_the_cookie(client: TestClient) -> None:
    signed_in(client)
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/v1/stream/alerts", headers={"Origin": FOREIGN}) as ws,
    ):
        ws.receive_json()
    assert refused.value.code == 4403
    with client.websocket_connect("/v1/stream/alerts", headers={"Origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "hello"


# --- failed key checks ---------------------------------------------------------------------------


def test_failed_key_checks_are_logged_without_the_key_and_throttled_per_address(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    app = create_app(keyed_settings(tmp_path))
    with TestClient(from_address(app), client=("203.0.113.7", 5000)) as guesser, capture_logs() as logs:
        neighbour = {"X-Test-Client": "198.51.100.1"}
        for i in range(KEY_FAILURES_PER_MINUTE):
            # The hot route (POST /v1/transactions) and the others count alike, each request once.
            path = "/v1/stats" if i % 2 else "/v1/transactions"
            answer = guesser.request(
                "GET" if i % 2 else "POST", path, json=payment(f"g-{i}"), headers={"X-API-Key": f"guess-{i}"}
            )
            assert answer.status_code == 401, i
        blocked = guesser.get("/v1/stats", headers={"X-API-Key": "guess-more"})
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        # While blocked even a valid key is not checked, so a lucky guess looks like any other.
        assert guesser.get("/v1/stats", headers={"X-API-Key": ADMIN_KEY}).status_code == 429
        fast = guesser.post("/v1/transactions", json=payment("g-ok"), headers={"X-API-Key": ADMIN_KEY})
        assert fast.status_code == 429
        login = guesser.post(
            "/login",
            content=f"key={ADMIN_KEY}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert login.status_code == 429
        assert guesser.get("/v1/stats", headers={"X-API-Key": ADMIN_KEY, **neighbour}).status_code == 200
    refused = [entry for entry in logs if entry["event"] == "api_key_refused"]
    assert len(refused) == KEY_FAILURES_PER_MINUTE
    assert {entry["client"] for entry in refused} == {"203.0.113.7"}
    assert all(len(entry["key_fingerprint"]) == 8 for entry in refused)
    assert any(entry["event"] == "api_key_checks_blocked" for entry in logs)
    assert "guess-" not in repr(logs)
    assert ADMIN_KEY not in repr(logs)


def from_address(app: ASGIApp) -> ASGIApp:
    """``app`` seeing requests with an X-Test-Client header as coming from that address."""

    async def with_address(scope: Scope, receive: Receive, send: Send) -> None:
        address = dict(scope.get("headers", ())).get(b"x-test-client")
        if address is not None:
            scope = {**scope, "client": (address.decode(), 5000)}
        await app(scope, receive, send)

    return with_address


# --- listing and revoking keys --------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def keyed_database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings for SQLite, or for a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return {}
    url: str = request.getfixturevalue("empty_postgres_url")
    return {"database_url": url}


def test_admins_list_and_revoke_keys_and_a_revoked_key_stops_at_once(
    tmp_path: Path, keyed_database: dict[str, Any]
) -> None:
    with TestClient(create_app(keyed_settings(tmp_path, **keyed_database))) as client:
        store = client.app.state.service.store  # type: ignore[attr-defined]
        alice = store.create_api_key("alice", "analyst", 1_795_000_000_000)
        feed = store.create_api_key("feed", "ingest", 1_795_000_001_000)
        admin = {"X-API-Key": ADMIN_KEY}
        # Used once, so the server remembers alice's key as valid (the 30 s cache).
        assert client.get("/v1/stats", headers={"X-API-Key": alice}).status_code == 200
        listed = client.get("/v1/keys", headers=admin)
        assert listed.status_code == 200
        by_name = {k["name"]: k for k in listed.json()["keys"]}
        assert by_name["alice"] == {"name": "alice", "role": "analyst", "created": "2026-11-18T11:06:40Z",
                                    "created_at_ms": 1_795_000_000_000, "revoked": False}  # fmt: skip
        assert set(by_name) == {"admin", "alice", "feed"}
        for secret in (alice, feed, ADMIN_KEY, "key_hash"):
            assert secret not in listed.text
        assert client.get("/v1/keys", headers={"X-API-Key": alice}).status_code == 403
        assert client.delete("/v1/keys/feed", headers={"X-API-Key": alice}).status_code == 403

        revoked = client.delete("/v1/keys/alice", headers=admin)
        assert revoked.status_code == 200
        assert revoked.json() == {"name": "alice", "revoked": 1}
        assert client.get("/v1/stats", headers={"X-API-Key": alice}).status_code == 401
        assert (
            client.post("/v1/transactions", json=payment("r-1"), headers={"X-API-Key": alice}).status_code
            == 401
        )
        assert client.delete("/v1/keys/alice", headers=admin).status_code == 404
        assert client.delete("/v1/keys/nobody", headers=admin).status_code == 404
        assert {k["name"]: k["revoked"] for k in client.get("/v1/keys", headers=admin).json()["keys"]}[
            "alice"
        ]
        assert client.get("/v1/stats", headers={"X-API-Key": feed}).status_code == 403  # ingest: valid key
        audit = client.get("/v1/transactions/r-1", headers=admin)
        assert audit.status_code == 404
        operations = client.app.openapi()["paths"]["/v1/keys/{name}"]  # type: ignore[attr-defined]
        assert operations["delete"]["summary"]


def test_keys_list_and_revoke_on_the_command_line(
    tmp_path: Path, keyed_database: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FRAUDSTREAM_CARD_KEY", raising=False)
    if "database_url" in keyed_database:
        monkeypatch.setenv("FRAUDSTREAM_DATABASE_URL", keyed_database["database_url"])
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "bob", "--role", "viewer"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    listed = runner.invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    assert "bob" in listed.output
    assert "viewer" in listed.output
    assert key not in listed.output
    done = runner.invoke(cli, ["keys", "revoke", "bob"])
    assert done.exit_code == 0, done.output
    assert "revoked 1 API key of bob" in done.output
    assert "revoked" in runner.invoke(cli, ["keys", "list"]).output.split("bob", 1)[1].splitlines()[0]
    again = runner.invoke(cli, ["keys", "revoke", "bob"])
    assert again.exit_code == 2
    assert "no valid API key named 'bob'" in again.output


# --- access log -----------------------------------------------------------------------------------


def test_the_access_log_names_caller_status_and_time_but_never_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fraudstream.logs import configure_logging

    lines = io.StringIO()
    monkeypatch.setattr("sys.stderr", lines)
    configure_logging("json")
    with TestClient(create_app(keyed_settings(tmp_path, access_log=True))) as client:
        viewer = client.app.state.service.store.create_api_key("wall", "viewer", 0)  # type: ignore[attr-defined]
        client.get("/v1/stats?limit=5", headers={"X-API-Key": viewer})
        client.post("/v1/transactions", json=payment("l-1"), headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        client.get("/v1/stats", headers={"X-API-Key": "fs_wrong_key_for_the_log"})
        with client.websocket_connect(f"/v1/stream/alerts?key={viewer}&since=0") as ws:
            assert ws.receive_json()["type"] == "hello"
        client.cookies.set("fraudstream_key", viewer)
        client.get("/ui/queue")
    log = lines.getvalue()
    for secret in (viewer, ADMIN_KEY, "fs_wrong_key_for_the_log"):
        assert secret not in log
    requests = [json.loads(line) for line in log.splitlines() if '"event": "request"' in line]
    seen = {(r["method"], r["path"], r["status"], r["caller"]) for r in requests}
    assert ("GET", "/v1/stats", 200, "wall") in seen
    assert ("POST", "/v1/transactions", 201, "admin") in seen
    assert ("GET", "/v1/stats", 401, None) in seen
    assert ("WEBSOCKET", "/v1/stream/alerts", 101, "wall") in seen
    assert ("GET", "/ui/queue", 200, "wall") in seen
    socket_line = next(r for r in requests if r["method"] == "WEBSOCKET")
    assert socket_line["query"] == "key=****&since=0"
    assert all(isinstance(r["duration_ms"], float) for r in requests)
