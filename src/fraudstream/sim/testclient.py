"""The test client users know: send named scenarios to a running server and say what got flagged."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

__all__ = ["SCENARIO_TESTS", "Scenario", "error_detail", "run_tests"]


@dataclass
class Scenario:
    """Payloads to send in order, and the ids among them that must come back as alerts."""

    name: str
    payloads: list[dict[str, object]]
    must_flag: set[str] = field(default_factory=set)
    delay_s: float = 0.0


def _at(offset_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat()


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def large() -> Scenario:
    user = _id("test-large")
    normal = {"transaction_id": _id("tx"), "user_id": user, "amount": 42.0, "timestamp": _at(-60)}
    big = {"transaction_id": _id("tx"), "user_id": user, "amount": 15_000.0, "timestamp": _at(0)}
    return Scenario("large", [normal, big], {str(big["transaction_id"])})


def rapid() -> Scenario:
    user = _id("test-rapid")
    payloads = [
        {"transaction_id": _id("tx"), "user_id": user, "amount": 25.0 + i, "timestamp": _at(-12 + 2 * i)}
        for i in range(7)
    ]
    return Scenario("rapid", payloads, {str(p["transaction_id"]) for p in payloads[6:]})


def location() -> Scenario:
    user = _id("test-location")
    home = {
        "transaction_id": _id("tx"),
        "user_id": user,
        "amount": 60.0,
        "location": "New York",
        "timestamp": _at(-600),
    }
    away = {
        "transaction_id": _id("tx"),
        "user_id": user,
        "amount": 60.0,
        "location": "Tokyo",
        "timestamp": _at(0),
    }
    return Scenario("location", [home, away], {str(away["transaction_id"])})


def random_traffic(count: int, delay_s: float) -> Scenario:
    cities = ["New York", "London", "Paris", "Berlin", "Madrid", "Toronto"]
    payloads = [
        {
            "transaction_id": _id("tx"),
            "user_id": f"test-random-{random.randrange(50)}",
            "amount": round(random.lognormvariate(3.5, 0.8), 2),
            "location": random.choice(cities),
        }
        for _ in range(count)
    ]
    return Scenario("random", payloads, set(), delay_s)


SCENARIO_TESTS: dict[str, Callable[[], Scenario]] = {"large": large, "rapid": rapid, "location": location}


def run_tests(
    url: str,
    tests: list[str],
    count: int,
    delay_s: float,
    health: bool,
    report: Callable[[str], None],
    api_key: str | None = None,
) -> bool:
    """Send each scenario (with ``api_key`` as X-API-Key when given) and report it; True when every
    request was accepted and every expected alert happened.

    A request the server refuses (any 4xx or 5xx) is reported as refused with its status and the
    server's error detail, never as a missed alert: a refused transaction was not scored at all.
    """
    ok = True
    headers = {"X-API-Key": api_key} if api_key else {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30) as client:
        if health:
            answer = client.get("/health")
            report(f"health: {answer.status_code} {_body(answer)}")
            ok &= answer.status_code == 200
        for name in tests:
            scenario = random_traffic(count, delay_s) if name == "random" else SCENARIO_TESTS[name]()
            ok &= _send(client, scenario, report)
    return ok


def _send(client: httpx.Client, scenario: Scenario, report: Callable[[str], None]) -> bool:
    """Send one scenario and report each flagged or refused transaction, then the scenario's verdict."""
    name = scenario.name
    flagged: set[str] = set()
    refused: dict[str, int] = {}
    for payload in scenario.payloads:
        transaction_id = str(payload["transaction_id"])
        answer = client.post("/v1/transactions", json=payload)
        if answer.is_error:
            refused[transaction_id] = answer.status_code
            report(f"  {name}: {transaction_id} refused {answer.status_code}: {error_detail(answer)}")
        elif (decision := answer.json()).get("is_alert"):
            flagged.add(transaction_id)
            reasons = "; ".join(r["text"] for r in decision.get("reasons", [])[:2])
            report(f"  {name}: {transaction_id} flagged ({decision['decision']}): {reasons}")
        if scenario.delay_s:
            time.sleep(scenario.delay_s)
    missed = scenario.must_flag - flagged - set(refused)
    verdict = _verdict(missed, refused)
    report(f"{name}: sent {len(scenario.payloads)}, flagged {len(flagged)} — {verdict}")
    return not missed and not refused


def _verdict(missed: set[str], refused: dict[str, int]) -> str:
    """``ok``, or what went wrong: requests refused (by status) and expected alerts missed."""
    problems = []
    if refused:
        statuses = ", ".join(f"{n} x {s}" for s, n in sorted(Counter(refused.values()).items()))
        problems.append(f"REFUSED {len(refused)} ({statuses})")
    if missed:
        problems.append("MISSED " + ", ".join(sorted(missed)))
    return "; ".join(problems) or "ok"


def error_detail(answer: httpx.Response) -> str:
    """The server's own words for a refusal: its ``detail`` (or field ``errors``), else the body."""
    try:
        body = answer.json()
    except ValueError:
        return _short(answer.text) or answer.reason_phrase
    if not isinstance(body, dict):
        return _short(str(body))
    detail = body.get("detail") or body.get("errors") or body.get("error") or body
    return _short(detail if isinstance(detail, str) else json.dumps(detail))


def _body(answer: httpx.Response) -> object:
    try:
        return answer.json()
    except ValueError:
        return _short(answer.text)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
