"""Signed webhooks: each decision a webhook asks for is queued in the deliveries table (the persistent
outbox), then POSTed to its receiver by a delivery thread and retried with exponential backoff.

Reading the log and sending are apart on purpose. ``deliver`` only turns log rows into delivery rows,
whose ids are derived from (webhook, transaction, event): reading the same rows again after a crash
queues nothing twice, and the log cursor moves on as soon as they are stored. The delivery thread
takes due deliveries from the table, one task per receiver in a small pool, so a receiver that is down
or slow holds up only its own deliveries, and a restart picks up every pending one.
"""

from __future__ import annotations

import hashlib
import hmac
import queue
import random
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import orjson
import structlog

from fraudstream.sinks.base import LogBatch
from fraudstream.storage.rows import decision_record, transaction_record

if TYPE_CHECKING:
    from fraudstream.config import Settings
    from fraudstream.storage import Store

__all__ = [
    "DECISIONS",
    "EVENTS",
    "FORMATS",
    "WebhookSink",
    "delivery_id",
    "new_webhook",
    "retry_delay_s",
    "signature",
    "url_problem",
]

log = structlog.get_logger("fraudstream.sinks")

#: The decisions a webhook can ask for by name.
DECISIONS = ("approve", "challenge", "review", "decline")
#: What a webhook can subscribe to: ``alert`` (the decision raised an alert), one decision, or
#: ``decision`` (every decision).
EVENTS = ("alert", *DECISIONS, "decision")
#: How a delivery's body looks: the JSON event, or Slack's ``{"text": ...}``.
FORMATS = ("json", "slack")

#: The live webhooks are read again at least this often (and at once when the API changes them).
REFRESH_S = 2.0
#: Due deliveries taken from the outbox per look.
FETCH = 500
#: Most deliveries one task sends to one receiver before their outcomes are stored.
PER_TASK = 100
#: Receivers sent to at the same time.
PARALLEL_RECEIVERS = 8
#: Longest pause between two looks at the outbox when nothing says it changed.
IDLE_WAIT_S = 0.5
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 3600.0


def _user_agent() -> str:
    try:
        return f"fraudstream/{version('fraudstream')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "fraudstream"


def delivery_id(webhook_id: str, transaction_id: str, event: str) -> str:
    """The id of the delivery of ``event`` for a transaction to a webhook: the same every time, so
    queuing it again is a no-op, and receivers de-duplicate on it (``X-Fraudstream-Delivery``).

    >>> delivery_id("wh_1", "t1", "alert") == delivery_id("wh_1", "t1", "alert")
    True
    >>> delivery_id("wh_1", "t1", "alert")[:4], len(delivery_id("wh_1", "t1", "alert"))
    ('whd_', 44)
    """
    digest = hashlib.sha256(f"{webhook_id}\x1f{transaction_id}\x1f{event}".encode()).hexdigest()
    return "whd_" + digest[:40]


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Fraudstream-Signature`` header: ``t=<unix seconds>,v1=<hex HMAC-SHA256>`` of
    ``"<t>.<body>"``, keyed with the whole secret (``whsec_...``) as UTF-8.

    >>> signature("whsec_test", 1700000000, b'{"a":1}')[:16]
    't=1700000000,v1='
    """
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def retry_delay_s(attempts: int, jitter: float = 1.0) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 1, 2, 4, ... doubling up to an
    hour, times ``jitter`` (0.8 to 1.2 when sending, so receivers are not hit by waves of retries).

    >>> [retry_delay_s(n) for n in (1, 2, 3, 13, 30)]
    [1.0, 2.0, 4.0, 3600.0, 3600.0]
    """
    return min(MAX_RETRY_S, FIRST_RETRY_S * 2.0 ** min(attempts - 1, 30)) * jitter


def url_problem(url: str) -> str | None:
    """What is wrong with a receiver's URL, or None: it must be http(s) with a host.

    >>> url_problem("https://hooks.example.com/fraud") is None
    True
    >>> url_problem("ftp://example.com")
    'must be an http:// or https:// URL with a host'
    """
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port out of range raises here)
    except ValueError:
        return "must be an http:// or https:// URL with a host and a valid port"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def new_webhook(
    url: str, events: Sequence[str], min_score: float | None, body_format: str, actor: str, now_ms: int
) -> dict[str, Any]:
    """The row of a new webhook, with a fresh id and signing secret (the secret is shown to its creator
    once; deliveries are signed with it)."""
    return {
        "id": "wh_" + secrets.token_hex(8),
        "url": url,
        "events": sorted(set(events), key=EVENTS.index),
        "min_score": min_score,
        "format": body_format,
        "secret": "whsec_" + secrets.token_hex(24),
        "created_at_ms": now_ms,
        "created_by": actor,
        "deleted_at_ms": None,
    }


@dataclass(frozen=True)
class _Target:
    """A live webhook as the sink matches decisions against it."""

    id: str
    events: frozenset[str]
    min_score: float
    format: str


def _column(batch: LogBatch, name: str) -> list[Any]:
    at = batch.names.index(name)
    return [row[at] for row in batch.values]


def _slack_text(decision: Mapping[str, Any], transaction: Mapping[str, Any]) -> str:
    """One readable line: decision, score, amount, the top reasons and the transaction id (Slack's
    control characters &, < and > escaped, as its message format asks)."""
    reasons = "; ".join(str(r.get("text") or r.get("code")) for r in decision["reasons"][:3])
    line = (
        f"fraudstream: {decision['decision'].upper()} (score {decision['score']}) "
        f"{transaction['amount']:,.2f} {transaction['currency']}"
        f"{' - ' + reasons if reasons else ''} - transaction {transaction['transaction_id']}"
    )
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _payload(
    target: _Target, event: str, identifier: str, row: Mapping[str, Any], now_ms: int
) -> dict[str, Any]:
    decision = decision_record(row)
    transaction = transaction_record(row)
    transaction.pop("seq", None)
    if target.format == "slack":
        return {"text": _slack_text(decision, transaction)}
    return {
        "id": identifier,
        "event": event,
        "webhook_id": target.id,
        "created_at_ms": now_ms,
        "decision": decision,
        # Stored fields only: the card is its keyed fingerprint, BIN and last four, never its number.
        "transaction": transaction,
    }


class WebhookSink:
    """The ``webhooks`` sink: queues matching decisions as deliveries and sends them, signed.

    Always configured; ``active`` only while a webhook exists, so a server without webhooks reads
    nothing for them. Problems of the receivers (refused connections, timeouts, non-2xx answers) do
    not reach the runner, which only sees ``deliver``; ``problem`` reports them for /readyz."""

    name = "webhooks"
    alerts_only = False
    #: After a crash the last second of the log is read again: its deliveries exist, none is queued twice.
    save_every_s = 1.0

    def __init__(self, store: Store, *, timeout_s: float, max_attempts: int) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self._client = httpx.Client(
            timeout=timeout_s,
            follow_redirects=False,
            headers={"User-Agent": _user_agent(), "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=PARALLEL_RECEIVERS * 2, max_keepalive_connections=16),
        )
        self._targets: list[_Target] = []
        self._live: frozenset[str] = frozenset()
        self._loaded_at = -REFRESH_S
        self._lock = threading.Lock()
        #: Webhooks a task is sending to now: the next looks at the outbox leave their deliveries.
        self._busy: set[str] = set()
        #: Webhook id -> why its last attempt failed, until one succeeds.
        self._failing: dict[str, str] = {}
        #: Webhooks whose receiver took a delivery since this process started.
        self._answered: set[str] = set()
        self._outbox_error: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        #: One receiver's due deliveries per item, taken by the sending threads.
        self._tasks: queue.Queue[tuple[str, list[dict[str, Any]]]] = queue.Queue()
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> WebhookSink:
        return cls(store, timeout_s=settings.webhook_timeout_s, max_attempts=settings.webhook_max_attempts)

    # --- the runner's side: the log into the outbox ------------------------------------------------

    def reload(self) -> None:
        """Read the live webhooks now (the API calls this after creating or deleting one)."""
        rows = self.store.webhook_targets()
        self._targets = [
            _Target(r["id"], frozenset(r["events"]), float(r["min_score"] or 0), r["format"]) for r in rows
        ]
        self._live = frozenset(r["id"] for r in rows)
        self._loaded_at = time.monotonic()

    def _current(self) -> list[_Target]:
        if time.monotonic() - self._loaded_at >= REFRESH_S:
            self.reload()
        return self._targets

    def active(self) -> bool:
        if not self._current():
            return False
        self._start_sending()
        return True

    def deliver(self, batch: LogBatch) -> int | None:
        if len(batch):
            self.store.add_deliveries(self.deliveries(batch, self._current(), int(time.time() * 1000)))
            self._wake.set()
        return batch.last_seq

    @staticmethod
    def deliveries(batch: LogBatch, targets: Iterable[_Target], now_ms: int) -> list[dict[str, Any]]:
        """The delivery rows (status pending, due now) of the rows each webhook asks for: one per
        webhook and transaction, its event the most specific the webhook subscribes to (``alert``,
        then the decision's own name, then ``decision``), and its score at least ``min_score``."""
        decided = np.asarray(_column(batch, "decision"), dtype=object)
        scores = np.asarray(_column(batch, "score"), dtype=np.float64)
        alerting = np.asarray(_column(batch, "is_alert"), dtype=bool)
        transaction_ids = _column(batch, "transaction_id")
        rows: list[dict[str, Any]] = []
        for target in targets:
            named = np.isin(decided, [d for d in DECISIONS if d in target.events])
            as_alert = alerting & ("alert" in target.events)
            wanted = (as_alert | named | ("decision" in target.events)) & (scores >= target.min_score)
            events = np.where(as_alert, "alert", np.where(named, decided, "decision"))
            for i in np.flatnonzero(wanted).tolist():
                event = str(events[i])
                identifier = delivery_id(target.id, transaction_ids[i], event)
                row = dict(zip(batch.names, batch.values[i]))
                body = orjson.dumps(_payload(target, event, identifier, row, now_ms)).decode()
                rows.append(
                    {
                        "id": identifier,
                        "webhook_id": target.id,
                        "transaction_id": transaction_ids[i],
                        "event": event,
                        "payload": body,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_ms": now_ms,
                        "last_status_code": None,
                        "last_error": None,
                        "created_at_ms": now_ms,
                        "delivered_at_ms": None,
                    }
                )
        return rows

    def flush(self, final: bool) -> int | None:
        return None

    def reset(self) -> None:
        return None

    def problem(self) -> str | None:
        """Why receivers are failing (by webhook id: a URL may carry a token, and /readyz is public),
        or why the outbox cannot be read; None when every live receiver took its last delivery."""
        with self._lock:
            failing = sorted((w, e) for w, e in self._failing.items() if w in self._live)
        if self._outbox_error is not None:
            return f"the webhook outbox cannot be read: {self._outbox_error}"
        if not failing:
            return None
        shown = "; ".join(f"{w}: {e}" for w, e in failing[:3])
        return f"{len(failing)} of {len(self._live)} webhook receivers failing ({shown})"

    def close(self) -> None:
        """Stop sending: attempts in flight get the timeout to end and be recorded; what is pending
        stays in the outbox for the next start. (An attempt cut short is sent again then, with its
        delivery id, which receivers de-duplicate on.)"""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + self.timeout_s + 1
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            log.warning("webhook attempts still in flight at stop; they are sent again at the next start")
        else:
            self._client.close()

    # --- the delivery thread: the outbox to the receivers ----------------------------------------

    def _start_sending(self) -> None:
        if self._threads or self._stopping.is_set():
            return
        # Daemon threads: a receiver that never answers (or a host name that never resolves) must not
        # hold the process at exit; what was cut short is still pending in the outbox.
        self._threads = [threading.Thread(target=self._send_due, name="fraudstream-webhooks", daemon=True)]
        self._threads += [
            threading.Thread(target=self._send_tasks, name=f"fraudstream-webhook-{n}", daemon=True)
            for n in range(PARALLEL_RECEIVERS)
        ]
        for thread in self._threads:
            thread.start()

    def _send_due(self) -> None:
        """Hand due deliveries to the pool, a task per receiver, until stopped."""
        backoff = FIRST_RETRY_S
        while not self._stopping.is_set():
            try:
                handed = self._hand_out()
                self._outbox_error = None
                backoff = FIRST_RETRY_S
            except Exception as exc:  # the database: reported in /readyz, tried again
                if self._outbox_error is None:
                    log.error("webhook outbox unreadable; retrying", error=str(exc))
                self._outbox_error = f"{type(exc).__name__}: {exc}"[:300]
                self._stopping.wait(backoff)
                backoff = min(30.0, backoff * 2)
                continue
            if not handed:
                self._wake.wait(IDLE_WAIT_S)
                self._wake.clear()

    def _hand_out(self) -> bool:
        """One look at the outbox; True when it handed deliveries out."""
        with self._lock:
            busy = set(self._busy)
        now_ms = int(time.time() * 1000)
        due = self.store.due_deliveries(now_ms, FETCH, skip=busy)
        if not due:
            return False
        groups: dict[str, list[dict[str, Any]]] = {}
        gone = []
        for delivery in due:
            if delivery["deleted_at_ms"] is not None:  # queued just as its webhook was deleted
                gone.append(self._outcome(delivery, "cancelled", None, "the webhook was deleted", now_ms))
            else:
                groups.setdefault(delivery["webhook_id"], []).append(delivery)
        self.store.record_attempts(gone)
        for webhook_id, group in groups.items():
            with self._lock:
                self._busy.add(webhook_id)
            self._tasks.put((webhook_id, group[:PER_TASK]))
        return True

    def _send_tasks(self) -> None:
        while not self._stopping.is_set():
            try:
                webhook_id, group = self._tasks.get(timeout=IDLE_WAIT_S)
            except queue.Empty:
                continue
            self._send_group(webhook_id, group)

    def _send_group(self, webhook_id: str, group: list[dict[str, Any]]) -> None:
        """Send one receiver's due deliveries in turn and store what came of them. When the receiver
        cannot be reached, the rest of them are not sent this time; each counts an attempt with the
        same error (sending it would have failed alike, after as long a wait)."""
        outcomes: list[dict[str, Any]] = []
        trouble: str | None = None
        try:
            for number, delivery in enumerate(group):
                if self._stopping.is_set() or webhook_id not in self._live:
                    break
                outcome, reachable = self._attempt(delivery)
                outcomes.append(outcome)
                trouble = outcome["last_error"]
                if not reachable:
                    error = f"not sent: the receiver could not be reached just before ({trouble})"
                    now_ms = int(time.time() * 1000)
                    outcomes += [self._failed(d, None, error, now_ms) for d in group[number + 1 :]]
                    break
            self.store.record_attempts(outcomes)
            self._note(webhook_id, outcomes, trouble)
        except Exception as exc:  # the database or a bug: logged and reported, the deliveries stay due
            log.error("webhook deliveries not recorded; they will be sent again", webhook=webhook_id,
                      error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            with self._lock:
                self._failing[webhook_id] = f"outcomes not recorded: {type(exc).__name__}"
        finally:
            with self._lock:
                self._busy.discard(webhook_id)
            self._wake.set()

    def _attempt(self, delivery: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """POST one delivery, signed; its outcome, and whether the receiver could be reached at all."""
        body = delivery["payload"].encode()
        headers = {
            "X-Fraudstream-Signature": signature(delivery["secret"], int(time.time()), body),
            "X-Fraudstream-Delivery": delivery["id"],
            "X-Fraudstream-Event": delivery["event"],
        }
        try:
            response = self._client.post(delivery["url"], content=body, headers=headers)
        except httpx.TimeoutException:
            error = f"no answer within {self._client.timeout.read} s"
            return self._failed(delivery, None, error, int(time.time() * 1000)), False
        except httpx.TransportError as exc:
            return self._failed(delivery, None, _described(exc), int(time.time() * 1000)), False
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return self._failed(delivery, None, _described(exc), int(time.time() * 1000)), True
        now_ms = int(time.time() * 1000)
        if response.is_success:
            return self._outcome(delivery, "delivered", response.status_code, None, now_ms), True
        error = f"HTTP {response.status_code}: {response.text[:200]}".strip()
        return self._failed(delivery, response.status_code, error, now_ms), True

    def _failed(
        self, delivery: Mapping[str, Any], status_code: int | None, error: str, now_ms: int
    ) -> dict[str, Any]:
        """A failed attempt: retried after a backoff, or given up after the last attempt."""
        attempts = int(delivery["attempts"]) + 1
        if attempts >= self.max_attempts:
            return self._outcome(delivery, "failed", status_code, error, now_ms)
        outcome = self._outcome(delivery, "pending", status_code, error, now_ms)
        outcome["next_attempt_ms"] = now_ms + int(1000 * retry_delay_s(attempts, random.uniform(0.8, 1.2)))
        return outcome

    @staticmethod
    def _outcome(
        delivery: Mapping[str, Any], status: str, status_code: int | None, error: str | None, now_ms: int
    ) -> dict[str, Any]:
        return {
            "id": delivery["id"],
            "webhook_id": delivery["webhook_id"],
            "status": status,
            "attempts": int(delivery["attempts"]) + (status != "cancelled"),
            "next_attempt_ms": delivery["next_attempt_ms"],
            "last_status_code": status_code,
            "last_error": error,
            "delivered_at_ms": now_ms if status == "delivered" else None,
        }

    def _note(self, webhook_id: str, outcomes: Sequence[Mapping[str, Any]], trouble: str | None) -> None:
        """Remember how the receiver did (for ``problem``): failing while its last attempt failed, with
        that attempt's error (``trouble``). When it takes a delivery after failing (or for the first
        time since this process started), what waits for it is made due at once."""
        if not outcomes:
            return
        took = any(o["status"] == "delivered" for o in outcomes)
        with self._lock:
            recovered = took and (webhook_id in self._failing or webhook_id not in self._answered)
            if trouble is None:
                self._failing.pop(webhook_id, None)
            else:
                self._failing[webhook_id] = trouble[:200]
            if took:
                self._answered.add(webhook_id)
        if recovered:
            moved = self.store.deliveries_due_now(webhook_id, int(time.time() * 1000))
            if moved:
                log.info("webhook receiver answers again; its waiting deliveries are due now",
                         webhook=webhook_id, deliveries=moved)  # fmt: skip


def _described(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
