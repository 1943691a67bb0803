"""Real answers of a `fraudstream serve` (keys off, the default rule set, no model yet), shown as
examples in the OpenAPI document (/docs, /redoc) and so in clients generated from it.

The requests are the README's; long lists and rule-set YAML are shortened (marked so). When an answer
changes shape, `tests/integration/test_api_schema.py` fails until the example is taken again: every
example must match its schema.

The same stored transaction (txn_fraud_002, its decision, its alert) stands in many answers, so each
piece is written once, as a function returning fresh dicts: every example owns its objects, and a
change made to one (a route's copy with other fields, a test) cannot show up in another.
"""

from __future__ import annotations

from typing import Any

# The pieces the answers are made of.

#: The HMAC fingerprint of the README's card 4242-4242-4242-4242 (the number itself is never stored).
_CARD_FINGERPRINT = "42f9ea5f4a30d770dfcf7398ade4dc3b"
#: The case txn_fraud_002's alert opened (on the card above).
_CASE_ID = "case_5f0c1e9a2b7d4e61"

#: The default rule set's YAML after its version line, shortened.
_DEFAULT_RULES_YAML = (
    "description: Default rules covering the checks of the systems users migrate from.\n"
    "lists:\n"
    "  blocked_cards:\n"
    "    kind: card_fingerprint\n"
    "    values: []\n"
    "  blocked_devices:\n"
    "    kind: device_id\n"
    "    values: []\n"
    "  blocked_ips:\n"
    "    kind: ip\n"
    "    values: []\n"
    "# ... (shortened)\n"
)


def _features(
    amount: float,
    *,
    count_24h: float = 1.0,
    amount_ratio_30d: float | None = None,
    speed_kmh: float | None = None,
) -> dict[str, Any]:
    """The features a decision shows; the defaults are a user's first payment, which has no 30-day
    average and no previous place to travel from."""
    return {
        "amount": amount,
        "user.count_30s": 1.0,
        "user.count_24h": count_24h,
        "user.amount_ratio_30d": amount_ratio_30d,
        "geo.speed_kmh": speed_kmh,
    }


def _approve_head(transaction_id: str) -> dict[str, Any]:
    """The verdict part of an approval: no rule acted, so no reasons."""
    return {
        "transaction_id": transaction_id,
        "decision": "approve",
        "score": 0,
        "probability": None,
        "is_alert": False,
        "reasons": [],
        "rules": [],
        "shadow_rules": [],
    }


def _decision(
    head: dict[str, Any],
    features: dict[str, Any],
    *,
    ruleset_version: int,
    latency_ms: float,
    decided_at_ms: int,
) -> dict[str, Any]:
    """A whole decision: its verdict, then what it was computed from and when (no model is trained)."""
    return {
        **head,
        "snoozes": [],
        "features": features,
        "model_version": None,
        "ruleset_version": ruleset_version,
        "latency_ms": latency_ms,
        "decided_at_ms": decided_at_ms,
    }


def _approved(
    transaction_id: str, amount: float, *, ruleset_version: int, latency_ms: float, decided_at_ms: int
) -> dict[str, Any]:
    """The approval of a user's first payment."""
    return _decision(
        _approve_head(transaction_id),
        _features(amount),
        ruleset_version=ruleset_version,
        latency_ms=latency_ms,
        decided_at_ms=decided_at_ms,
    )


def _fraud_reasons() -> list[dict[str, Any]]:
    """Why txn_fraud_002 (5,000.00 in Tokyo a minute after 50.00 in New York) was held."""
    return [
        {
            "code": "geo_velocity",
            "text": "10,849 km from the previous location at 650,921 km/h",
            "contribution": 65.0,
            "kind": "rule",
        },
        {
            "code": "amount_spike",
            "text": "Amount 5,000.00 is 100x this user's 30-day average",
            "contribution": 60.0,
            "kind": "rule",
        },
    ]


def _fraud_decision() -> dict[str, Any]:
    """txn_fraud_002's decision: two rules act, so it goes to review."""
    head = {
        "transaction_id": "txn_fraud_002",
        "decision": "review",
        "score": 86,
        "probability": None,
        "is_alert": True,
        "reasons": _fraud_reasons(),
        "rules": ["amount_spike", "geo_velocity"],
        "shadow_rules": [],
    }
    features = _features(5000.0, count_24h=2.0, amount_ratio_30d=100.0, speed_kmh=650920.6875)
    return _decision(head, features, ruleset_version=1, latency_ms=12.584, decided_at_ms=1796673593012)


def _fraud_alert() -> dict[str, Any]:
    """The alert txn_fraud_002 raised, before an analyst took it."""
    return {
        "transaction_id": "txn_fraud_002",
        "user_id": "user-test-123",
        "amount": 5000.0,
        "score": 86,
        "decision": "review",
        "reasons": _fraud_reasons(),
        "status": "open",
        "assignee": None,
        "verdict": None,
        "note": None,
        "created_at_ms": 1796673593012,
        "updated_at_ms": 1796673593012,
        "case_id": _CASE_ID,
    }


def _compat_decision() -> dict[str, Any]:
    """The decision on txn_compat_003, sent to a compatibility route: 42.00 in New York, after Tokyo."""
    head = {
        "transaction_id": "txn_compat_003",
        "decision": "review",
        "score": 65,
        "probability": None,
        "is_alert": True,
        "reasons": [
            {
                "code": "geo_velocity",
                "text": "10,849 km from the previous location at 162,730 km/h",
                "contribution": 65.0,
                "kind": "rule",
            }
        ],
        "rules": ["geo_velocity"],
        "shadow_rules": [],
    }
    features = _features(42.0, count_24h=3.0, amount_ratio_30d=0.0166, speed_kmh=162730.1719)
    return _decision(head, features, ruleset_version=2, latency_ms=6.359, decided_at_ms=1796673601566)


def _stored(**given: Any) -> dict[str, Any]:
    """A stored transaction as the API lists it: every field, null where the request gave none."""
    fields: dict[str, Any] = {
        "seq": None,
        "transaction_id": None,
        "timestamp_ms": None,
        "user_id": None,
        "amount": None,
        "currency": "USD",
        "merchant_id": None,
        "merchant_category": None,
        "terminal_id": None,
        "channel": None,
        "location": None,
        "lat": None,
        "lon": None,
        "country": None,
        "device_id": None,
        "ip": None,
        "card_fingerprint": None,
        "card_bin": None,
        "card_last4": None,
        "attributes": {},
        "received_at_ms": None,
    }
    if unknown := given.keys() - fields.keys():  # a misspelt field would otherwise add a key
        raise KeyError(f"not a field of a stored transaction: {sorted(unknown)}")
    return {**fields, **given}


def _fraud_stored() -> dict[str, Any]:
    """txn_fraud_002 as stored: the card became its fingerprint, BIN and last 4; Tokyo its place."""
    return _stored(
        seq=2,
        transaction_id="txn_fraud_002",
        timestamp_ms=1752573660000,
        user_id="user-test-123",
        amount=5000.0,
        merchant_id="merchant_b",
        location="Tokyo",
        lat=35.6895,
        lon=139.69171,
        country="JP",
        card_fingerprint=_CARD_FINGERPRINT,
        card_bin="424242",
        card_last4="4242",
        received_at_ms=1796673593000,
    )


def _unknown_currency() -> dict[str, Any]:
    return {
        "field": "currency",
        "problem": "is not a known code",
        "allowed": "an ISO 4217 code such as USD",
        "value": "XYZ",
    }


def _default_rules() -> list[dict[str, Any]]:
    """The two rules of the default set that act on the README's transactions."""
    return [
        {
            "code": "amount_spike",
            "description": "Amount {amount:,.2f} is {user.amount_ratio_30d:.0f}x this user's 30-day average",
            "expression": "user.amount_ratio_30d > 10 and amount > 300",
            "action": "review",
            "weight": 60.0,
            "enabled": True,
            "shadow": False,
        },
        {
            "code": "geo_velocity",
            "description": "{geo.distance_km:,.0f} km from the previous location at {geo.speed_kmh:,.0f} "
            "km/h",
            "expression": "geo.speed_kmh > 900 and geo.distance_km > 100",
            "action": "review",
            "weight": 65.0,
            "enabled": True,
            "shadow": False,
        },
    ]


def _backtest_side(rules_version: int) -> dict[str, Any]:
    """One side of a backtest over an empty history: nothing flagged, nothing to measure."""
    no_hits = {
        "shadow": False,
        "hits": 0,
        "precision": 0.0,
        "recall": 0.0,
        "fraud_amount_caught": 0.0,
        "alerts_per_day": 0.0,
    }
    return {
        "rules_version": rules_version,
        "policy": {
            "transactions": 0,
            "frauds": 0,
            "flagged": 0,
            "frauds_flagged": 0,
            "roc_auc": None,
            "average_precision": None,
            "precision_at_threshold": 0.0,
            "recall_at_threshold": 0.0,
            "legit_flagged_share": 0.0,
            "recall_at_1pct_fpr": 0.0,
            "precision_at_100_per_day": None,
            "user_precision_at_100_per_day": None,
            "fraud_amount_caught_share": 0.0,
            "reviews_per_day": 0.0,
        },
        "rules": {"amount_spike": dict(no_hits), "geo_velocity": dict(no_hits)},
    }


def _health() -> dict[str, Any]:
    return {
        "status": "healthy",
        "database": "connected",
        "engine": "ready",
        "model": None,
        "rules_version": 2,
        "alert_subscribers": 0,
        "sinks": {"webhooks": {"state": "ok", "behind": 0}},
    }


def _webhook() -> dict[str, Any]:
    """A webhook as listed; only the answer that creates it shows its secret."""
    return {
        "id": "wh_de5fdc20ad799001",
        "url": "https://hooks.example.com/fraud",
        "events": ["alert", "decline"],
        "min_score": 70.0,
        "format": "json",
        "created_at_ms": 1796673601498,
        "created_by": "demo",
    }


# The examples.

TRANSACTION_IN: Any = {
    "transaction_id": "txn_normal_001",
    "user_id": "user-test-123",
    "card_number": "4242-4242-4242-4242",
    "amount": 50.0,
    "timestamp": "2025-07-15T10:00:00Z",
    "merchant_id": "merchant_a",
    "location": "New York",
}

#: The same user and card a minute later, in Tokyo.
TRANSACTION_IN_FRAUD: Any = {
    **TRANSACTION_IN,
    "transaction_id": "txn_fraud_002",
    "amount": 5000.0,
    "timestamp": "2025-07-15T10:01:00Z",
    "merchant_id": "merchant_b",
    "location": "Tokyo",
}

TRANSACTION_LIST_IN: Any = [
    {
        "transaction_id": "txn_list_003",
        "user_id": "user-78",
        "amount": 12.5,
        "timestamp": "2025-07-15T10:02:00Z",
    },
    {"transaction_id": "txn_list_004", "user_id": "user-78", "amount": 30.0, "currency": "XYZ"},
]

DECISION_APPROVE: Any = _approved(
    "txn_normal_001", 50.0, ruleset_version=1, latency_ms=5.2, decided_at_ms=1795551044858
)

DECISION_REVIEW: Any = _fraud_decision()

BATCH_RESULT: Any = {
    "results": [
        {
            "status": "scored",
            "http_status": 201,
            **_approved(
                "txn_list_003", 12.5, ruleset_version=2, latency_ms=14.294, decided_at_ms=1796673958148
            ),
        },
        {
            "status": "invalid",
            "http_status": 422,
            "error": "invalid_transaction",
            "transaction_id": "txn_list_004",
            "errors": [_unknown_currency()],
        },
    ],
    "summary": {"scored": 1, "duplicate": 0, "conflict": 0, "invalid": 1},
}

CONFLICT: Any = {
    "error": "conflict",
    "detail": "transaction_id 'txn_normal_001' was already scored with a different body; send the same body "
    "to get the stored decision, or use a new transaction_id",
}

INVALID_TRANSACTION: Any = {
    "error": "invalid_transaction",
    "transaction_id": "bad",
    "errors": [
        {
            "field": "amount",
            "problem": "must be >= 0",
            "allowed": "a finite number >= 0 and <= 1,000,000,000 (a number or numeric text such as '50.00')",
            "value": -5,
        },
        _unknown_currency(),
    ],
}

MALFORMED_JSON: Any = {
    "error": "malformed_json",
    "detail": "the body is not valid JSON: unexpected end of data: line 1 column 13 (char 12)",
}

TRANSACTION_PAGE: Any = {
    "items": [
        {
            **_stored(
                seq=3,
                transaction_id="txn_list_001",
                timestamp_ms=1752573720000,
                user_id="user-77",
                amount=12.5,
                received_at_ms=1796673593179,
            ),
            "decision": _approved(
                "txn_list_001", 12.5, ruleset_version=1, latency_ms=17.799, decided_at_ms=1796673593196
            ),
        }
    ],
    "next_cursor": 3,
}

TRANSACTION: Any = {
    **_fraud_stored(),
    "decision": _fraud_decision(),
    "alert": _fraud_alert(),
    "labels": [],
    "shadow_scores": {},
    "audit": [],
}

USER_HISTORY: Any = {
    "user_id": "user-test-123",
    "items": [{**_fraud_stored(), "decision": _fraud_decision()}],
}

ALERT_PAGE: Any = {"items": [_fraud_alert()], "next_cursor": 1}

ALERT_COUNTS: Any = {"open": 1, "in_review": 0, "closed": 0}

ASSIGNED: Any = {"transaction_id": "txn_fraud_002", "status": "in_review", "assignee": "alice"}

REVIEWED: Any = {
    "transaction_id": "txn_fraud_002",
    "status": "closed",
    "verdict": "fraud",
    "label": {
        "transaction_id": "txn_fraud_002",
        "is_fraud": True,
        "label_time": 1796673593797,
        "transaction_time": 1752573660000,
        "user_id": "user-test-123",
        "merchant_id": "merchant_b",
        "terminal_id": None,
        "card_fingerprint": _CARD_FINGERPRINT,
        "device_id": None,
        "ip": None,
    },
}

LABELS_ACCEPTED: Any = {"accepted": 1, "unknown_transactions": [], "invalid": []}

LABELS_INVALID: Any = {
    "error": "invalid_labels",
    "accepted": 0,
    "unknown_transactions": [],
    "invalid": [
        {
            "index": 0,
            "transaction_id": "txn_normal_001",
            "errors": [
                {
                    "field": "is_fraud",
                    "problem": "is required and must be true or false",
                    "allowed": "true or false",
                    "value": None,
                }
            ],
        }
    ],
}

RULE_SET: Any = {
    "version": 1,
    "yaml": "version: 1\n" + _DEFAULT_RULES_YAML,
    "rules": _default_rules(),
    "lists": {
        "blocked_bins": {"kind": "card_bin", "values": [], "expiries": {}},
        "blocked_cards": {"kind": "card_fingerprint", "values": [], "expiries": {}},
    },
    "versions": [{"version": 1, "created_at_ms": 1796673274383, "actor": "system", "active": True}],
    "hits": {"amount_spike": 1, "geo_velocity": 1},
}

INVALID_RULES: Any = {
    "error": "invalid_rules",
    "detail": "rule 'big' at column 10: syntax error: invalid syntax",
    "rule": "big",
    "position": 10,
    "reason": "syntax error: invalid syntax",
}

RULE_VALID: Any = {
    "valid": True,
    "yaml": "version: 2\n" + _DEFAULT_RULES_YAML,
    "rule": {
        "code": "big_online",
        "description": "A large online payment",
        "expression": "amount > 2000 and channel == 'online'",
        "action": "review",
        "weight": 40.0,
        "enabled": True,
        "shadow": False,
    },
}

RULE_INVALID: Any = {
    "valid": False,
    "detail": "rule 'big' at column 8: only + - * / are allowed as arithmetic",
    "rule": "big",
    "position": 8,
    "reason": "only + - * / are allowed as arithmetic",
}

RULE_PERFORMANCE: Any = {
    "days": 7.0,
    "rules": [{**rule, "hits": 1, "labelled": 1, "fraud": 1, "precision": 1.0} for rule in _default_rules()],
}

LIST_REPLACED: Any = {"name": "blocked_devices", "size": 2}

BACKTEST_QUEUED: Any = {"id": "05a79af42cc5", "status": "queued", "progress": 0.0}

BACKTEST_DONE: Any = {
    "id": "05a79af42cc5",
    "status": "done",
    "progress": 1.0,
    "result": {"current": _backtest_side(2), "candidate": _backtest_side(1), "transactions": 0},
}

MODELS: Any = {"champion": None, "challengers": [], "scoring": None, "pinned": False, "versions": []}

STATS: Any = {
    "transactions": 3,
    "decisions": {"approve": 2, "challenge": 0, "review": 1, "decline": 0},
    "alerts": 1,
    "open_alerts": 0,
    "labelled": 2,
    "confirmed_fraud": 1,
    "fraud_rate": 0.333333,
    "latency_ms": {"p50": 17.799, "p99": 11051.568},
    "per_minute": [
        {"minute_ms": 1796673540000, "transactions": 3, "alerts": 1},
        {"minute_ms": 1796673600000, "transactions": 0, "alerts": 0},
    ],
    "decisions_per_second": 0.3,
    "live_latency_ms": {"p50": 17.799, "p99": 10830.893},
    "top_rules": [{"rule": "amount_spike", "hits": 1}, {"rule": "geo_velocity", "hits": 1}],
    "uptime_s": 327.4,
}

SERIES: Any = {
    "window": "10m",
    "bucket_ms": 30000,
    "buckets": [
        {"t_ms": 1796673570000, "transactions": 3, "alerts": 1},
        {"t_ms": 1796673600000, "transactions": 0, "alerts": 0},
    ],
}


def _drift_day(day: str, day_ms: int, decisions: int, alerts: int, scores: list[int]) -> dict[str, Any]:
    kinds = {"approve": decisions - alerts, "challenge": 0, "review": alerts, "decline": 0}
    return {
        "day": day,
        "day_ms": day_ms,
        "decisions": decisions,
        "alerts": alerts,
        "alert_rate": round(alerts / decisions, 6) if decisions else None,
        "decisions_by_kind": kinds,
        "scores": scores,
    }


DRIFT: Any = {
    "model_version": "20261207-221503-lightgbm-3f2a",
    "status": "drifted",
    "warning": True,
    "message": "1 feature(s) drifted from the training data of 20261207-221503-lightgbm-3f2a (PSI >= 0.25): "
    "amount; check the traffic, and retrain if it is the new normal",
    "window": {
        "days": ["2026-12-06", "2026-12-07"],
        "from_ms": 1796515200000,
        "to_ms": 1796673612000,
        "transactions": 1200,
    },
    "thresholds": {"watch": 0.1, "drifted": 0.25, "min_transactions": 200},
    "reference_rows": 2400,
    "features": [
        {
            "feature": "amount",
            "psi": 2.3113,
            "status": "drifted",
            "edges": [9.81, 15.02, 20.37, 26.1, 32.86, 41.55, 52.7, 69.12, 99.48],
            "expected": [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.0],
            "actual": [0.005, 0.0075, 0.0108, 0.0183, 0.0325, 0.0475, 0.0692, 0.1033, 0.1675, 0.5383, 0.0],
        },
        {
            "feature": "hour_of_day",
            "psi": 0.0412,
            "status": "stable",
            "edges": [3.0, 7.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0],
            "expected": [0.093, 0.101, 0.098, 0.104, 0.099, 0.102, 0.097, 0.103, 0.1, 0.103, 0.0],
            "actual": [0.087, 0.112, 0.091, 0.109, 0.104, 0.094, 0.088, 0.113, 0.097, 0.105, 0.0],
        },
    ],
    "daily": [
        _drift_day("2026-12-06", 1796515200000, 0, 0, [0] * 10),
        _drift_day("2026-12-07", 1796601600000, 1200, 62, [780, 190, 88, 41, 23, 16, 38, 15, 6, 3]),
    ],
}

KEYS: Any = {
    "keys": [
        {
            "name": "alice",
            "role": "analyst",
            "created": "2026-12-07T20:00:51Z",
            "created_at_ms": 1796673651429,
            "revoked": False,
        }
    ]
}

WEBHOOK_CREATED: Any = {**_webhook(), "secret": "whsec_3643e76ae697071990da983c57d2770ca2b616ca89b6513a"}

WEBHOOKS: Any = {"webhooks": [_webhook()]}

DELIVERIES: Any = {
    "webhook_id": "wh_9ebac9641b6dd85c",
    "deliveries": [
        {
            "id": "whd_c5cfb7ea97c47c6adf6296e3bce7f94e4b90dbe6",
            "transaction_id": "txn_fraud_004",
            "event": "alert",
            "status": "pending",
            "attempts": 1,
            "next_attempt_ms": 1796673628386,
            "last_status_code": None,
            "last_error": "ConnectError: [Errno -2] Name or service not known",
            "created_at_ms": 1796673623555,
            "delivered_at_ms": None,
        }
    ],
}

WEBHOOK_DELETED: Any = {"id": "wh_de5fdc20ad799001", "deleted": True, "cancelled_deliveries": 0}

READY: Any = _health()

COMPAT_TRANSACTION: Any = {"status": "accepted", "is_fraud": True, **_compat_decision()}

COMPAT_API_V1: Any = {
    "status": "success",
    "transactionId": "159402f6-e3ea-476b-8457-d1c362751c8d",
    "fraud": False,
    **_approved(
        "159402f6-e3ea-476b-8457-d1c362751c8d",
        120.0,
        ruleset_version=2,
        latency_ms=5.934,
        decided_at_ms=1796673601579,
    ),
}

COMPAT_HEALTH: Any = {
    **_health(),
    "consumer": True,
    "producer": True,
    "redis": "not configured (FRAUDSTREAM_REDIS_URL)",
}

COMPAT_ROOT: Any = {"message": "fraudstream is running", "status": "healthy", "docs": "/docs"}

COMPAT_RECENT: Any = {
    "items": [
        {
            **_stored(
                seq=5,
                transaction_id="159402f6-e3ea-476b-8457-d1c362751c8d",
                timestamp_ms=1796673601574,
                user_id="user-456",
                amount=120.0,
                currency="EUR",
                location="Paris",
                lat=48.85341,
                lon=2.3488,
                country="FR",
                received_at_ms=1796673601574,
            ),
            "status": "approve",
            "is_fraud": False,
            "score": 0,
            "fraud_reason": None,
            "reasons": [],
        }
    ],
    "meta": {
        "returned": 1,
        "total": 5,
        "fraud": 2,
        "legit": 3,
        "by_decision": {"approve": 3, "challenge": 0, "review": 2, "decline": 0},
    },
}

COMPAT_PREDICT: Any = {
    "prediction": "legit",
    "is_fraud": False,
    **_approved(
        "abbf2ae6-1caa-4f2f-94a4-39eae3d5acf2",
        80.0,
        ruleset_version=2,
        latency_ms=14.681,
        decided_at_ms=1796673601644,
    ),
}

#: /check answers in its own order, with the user's history instead of timings.
COMPAT_CHECK: Any = {
    "verdict": "legit",
    "is_fraud": False,
    **_approve_head("check-3ecf55b0-eadd-4543-819f-9eefbfa2d4a3"),
    "late": False,
    "model_version": None,
    "ruleset_version": 2,
    "features": _features(9000.0),
    "user_history": [
        {
            **_stored(
                seq=4,
                transaction_id="txn_compat_003",
                timestamp_ms=1752573900000,
                user_id="user-test-123",
                amount=42.0,
                location="New York",
                lat=40.71427,
                lon=-74.00597,
                country="US",
                received_at_ms=1796673601560,
            ),
            "decision": _compat_decision(),
        }
    ],
}

NOT_ACCEPTABLE: Any = {
    "error": "not_acceptable",
    "detail": "this path streams alerts over a WebSocket, or as Server-Sent Events with 'Accept: "
    "text/event-stream'; for curl use: curl -N <host>/v1/stream/alerts.sse",
}


# Cases and the audit log.


def _case(**changes: Any) -> dict[str, Any]:
    """The case txn_fraud_002's alert opened on its card: high priority (score 86), due 4 h later."""
    return {
        "id": _CASE_ID,
        "entity_kind": "card",
        "entity_id": _CARD_FINGERPRINT,
        "status": "open",
        "priority": "high",
        "risk": 86,
        "assignee": None,
        "verdict": None,
        "due_at_ms": 1796687993012,
        "opened_at_ms": 1796673593012,
        "updated_at_ms": 1796673593012,
        "closed_at_ms": None,
        **changes,
    }


CASE_PAGE: Any = {"items": [_case(overdue=False, alert_count=1, card_last4="4242")], "next_cursor": None}

CASE: Any = {
    **_case(overdue=False),
    "alerts": [
        {
            **_fraud_alert(),
            "timestamp_ms": 1752573660000,
            "currency": "USD",
            "merchant_id": "merchant_b",
            "merchant_category": None,
            "channel": None,
            "country": "JP",
            "card_bin": "424242",
            "card_last4": "4242",
            "device_id": None,
            "ip": None,
            "location": "Tokyo",
        }
    ],
    "alert_count": 1,
    "comments": [
        {
            "id": 1,
            "case_id": _CASE_ID,
            "at_ms": 1796673612000,
            "author": "alice",
            "body": "Customer called: the card was stolen on Friday.",
        }
    ],
    "audit": [
        {
            "id": 2,
            "at_ms": 1796673593012,
            "actor": "system",
            "action": "open_case",
            "subject": _CASE_ID,
            "details": {
                "transaction_id": "txn_fraud_002",
                "score": 86,
                "priority": "high",
                "entity_kind": "card",
                "entity_id": _CARD_FINGERPRINT,
            },
        }
    ],
}

CASE_ASSIGNED: Any = _case(status="in_review", assignee="alice", updated_at_ms=1796673605000)

CASE_COMMENT: Any = {
    "id": 1,
    "case_id": _CASE_ID,
    "at_ms": 1796673612000,
    "author": "alice",
    "body": "Customer called: the card was stolen on Friday.",
}

CASE_CLOSED: Any = {
    **_case(
        status="closed",
        assignee="alice",
        verdict="fraud",
        updated_at_ms=1796673620000,
        closed_at_ms=1796673620000,
    ),
    "labels": [{**REVIEWED["label"], "label_time": 1796673620000}],
}

AUDIT_PAGE: Any = {
    "items": [
        {
            "id": 5,
            "at_ms": 1796673620000,
            "actor": "alice",
            "action": "close_case",
            "subject": _CASE_ID,
            "details": {
                "verdict": "fraud",
                "labels": {"fraud": 1, "legit": 0},
                "note": "card reported stolen",
            },
        }
    ],
    "next_cursor": 5,
    "actions": ["assign_case", "close_case", "comment_case", "open_case", "save_rules"],
}


# --- jobs (api/routes/jobs.py) -------------------------------------------------------------------


def _job_run(**changes: Any) -> dict[str, Any]:
    """A run of the rescore job as listed (GET /v1/jobs): queued by an admin, not started yet."""
    run = {
        "id": "3f9c2a7be0d14c55",
        "job": "rescore",
        "trigger": "manual",
        "status": "queued",
        "progress": 0.0,
        "params": {"from": "2026-12-01T00:00:00Z", "rules_version": 1, "model": "champion"},
        "error": None,
        "actor": "admin",
        "created_at_ms": 1796673600000,
        "started_at_ms": None,
        "finished_at_ms": None,
    }
    return {**run, **changes}


RESCORE_PARAMS: Any = {
    "from": "2026-12-01T00:00:00Z",
    "to": "2026-12-07T00:00:00Z",
    "rules": _DEFAULT_RULES_YAML,
    "model": "champion",
}

JOB_RUN_QUEUED: Any = {**_job_run(), "result": None}

JOB_RUNS: Any = {
    "items": [
        _job_run(status="running", progress=0.55, started_at_ms=1796673600150),
        _job_run(
            id="8d1e40c2aa7f4b09",
            job="retrain",
            trigger="labels",
            status="done",
            progress=1.0,
            params={"labels_up_to": 200},
            actor="scheduler",
            created_at_ms=1796670000000,
            started_at_ms=1796670000040,
            finished_at_ms=1796670012900,
        ),
    ]
}

JOB_RUN_DONE: Any = _job_run(
    status="done",
    progress=1.0,
    started_at_ms=1796673600150,
    finished_at_ms=1796673604410,
    result={
        "from_ms": 1796083200000,
        "to_ms": 1796601600000,
        "transactions": 0,
        "replayed": 0,
        "model": None,
        "current_rules_version": 2,
        "candidate_rules_version": 1,
        "changes": {
            "decisions_changed": 0,
            "transitions": [],
            "alerts_gained": 0,
            "alerts_gained_fraud": 0,
            "alerts_lost": 0,
            "alerts_lost_fraud": 0,
            "examples": [],
        },
        "current": _backtest_side(2),
        "candidate": _backtest_side(1),
        "comparison": {"policy": {}, "rules": []},
    },
)

JOB_SCHEDULE: Any = {
    "now_ms": 1796673600000,
    "checked_at_ms": 1796673590000,
    "jobs": [
        {
            "job": "retrain",
            "cron": None,
            "next_runs_ms": [],
            "last_run": JOB_RUNS["items"][1],
            "after_labels": 200,
            "labels_since_last": 37,
        },
        {"job": "rescore", "cron": None, "next_runs_ms": [], "last_run": JOB_RUNS["items"][0]},
        {
            "job": "backtest_report",
            "cron": "0 6 * * 1",
            "next_runs_ms": [1797055200000, 1797660000000, 1798264800000],
            "last_run": None,
        },
    ],
}

JOB_BUSY: Any = {
    "error": "job_busy",
    "detail": "a run of rescore is already running (3f9c2a7be0d14c55); this trigger is skipped",
    "run": _job_run(
        id="c04d9e1f7a2b4e38",
        status="skipped",
        error="a run of rescore is already running (3f9c2a7be0d14c55); this trigger is skipped",
        finished_at_ms=1796673601000,
    ),
}

JOB_INVALID: Any = {
    "error": "http_error",
    "detail": "rescore: from: Field required; rescore: give the candidate rule set: either rules (YAML) or "
    "rules_version, not both",
}


# Lists with expiries, snoozes and rule set rollback.

LIST_CONTENTS: Any = {
    "name": "blocked_devices",
    "kind": "device_id",
    "size": 2,
    "items": [
        {"value": "dev-123", "expires_at_ms": 1798135200000},
        {"value": "dev-456", "expires_at_ms": None},
    ],
}

RULE_ROLLBACK: Any = {
    "version": 3,
    "yaml": "version: 3\n" + _DEFAULT_RULES_YAML,
    "rules": _default_rules(),
    "lists": {
        "blocked_bins": {"kind": "card_bin", "values": [], "expiries": {}},
        "blocked_cards": {"kind": "card_fingerprint", "values": [], "expiries": {}},
    },
    "versions": [
        {"version": 3, "created_at_ms": 1796673702000, "actor": "admin", "active": True},
        {"version": 2, "created_at_ms": 1796673601000, "actor": "admin", "active": False},
        {"version": 1, "created_at_ms": 1796673274383, "actor": "system", "active": False},
    ],
    "hits": {"amount_spike": 1, "geo_velocity": 1},
    "restored": 1,
}

SNOOZE_REQUEST: Any = {
    "entity_kind": "card",
    "card_number": "4242-4242-4242-4242",
    "rule": "geo_velocity",
    "until": "2026-12-24T18:00:00Z",
    "reason": "customer travelling, called in",
}


def _snooze(**changes: Any) -> dict[str, Any]:
    """The snooze of SNOOZE_REQUEST as stored (the card as its fingerprint), with ``changes``."""
    return {
        "id": "snz_8c1f2e7a90b34d16",
        "entity_kind": "card",
        "entity_id": _CARD_FINGERPRINT,
        "rule": "geo_velocity",
        "until_ms": 1798135200000,
        "reason": "customer travelling, called in",
        "created_at_ms": 1796673702000,
        "created_by": "alice",
        "cancelled_at_ms": None,
        "state": "active",
        **changes,
    }


SNOOZE: Any = _snooze()

SNOOZES: Any = {"items": [_snooze()]}

SNOOZE_CANCELLED: Any = _snooze(cancelled_at_ms=1796673800000, state="cancelled")

SNOOZE_INVALID: Any = {
    "error": "invalid_transaction",
    "errors": [
        {
            "field": "until",
            "problem": "is not in the future",
            "allowed": "a time after now",
            "value": "2020-01-01T00:00:00Z",
        }
    ],
}
