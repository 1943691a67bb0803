"""The test client users know: send named scenarios to a running server and say what got flagged."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

__all__ = ["SCENARIO_TESTS", "Scenario", "run_tests"]


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
    url: str, tests: list[str], count: int, delay_s: float, health: bool, report: Callable[[str], None]
) -> bool:
    """Send each scenario and report it; True when every expected alert happened."""
    ok = True
    with httpx.Client(base_url=url.rstrip("/"), timeout=30) as client:
        if health:
            answer = client.get("/health")
            report(f"health: {answer.status_code} {answer.json()}")
            ok &= answer.status_code == 200
        for name in tests:
            scenario = random_traffic(count, delay_s) if name == "random" else SCENARIO_TESTS[name]()
            flagged = set()
            for payload in scenario.payloads:
                decision = client.post("/v1/transactions", json=payload).json()
                if decision.get("is_alert"):
                    flagged.add(str(payload["transaction_id"]))
                    reasons = "; ".join(r["text"] for r in decision.get("reasons", [])[:2])
                    report(
                        f"  {name}: {payload['transaction_id']} flagged ({decision['decision']}): {reasons}"
                    )
                if scenario.delay_s:
                    time.sleep(scenario.delay_s)
            missed = scenario.must_flag - flagged
            ok &= not missed
            verdict = "MISSED " + ", ".join(sorted(missed)) if missed else "ok"
            report(f"{name}: sent {len(scenario.payloads)}, flagged {len(flagged)} — {verdict}")
    return ok
