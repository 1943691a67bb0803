"""Browser and key hardening (issue 19, item 7) through the real ASGI stack: security headers, writes
signed in with the dashboard's cookie, throttled key failures, listing and revoking keys, the access log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
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
    assert again.exit_code == 1
    assert "no valid API key named 'bob'" in again.output
