"""Signed webhooks: each decision a webhook asks for is queued in the deliveries table (the persistent
outbox), then POSTed to its receiver by a sender process and retried with exponential backoff.

Reading the log and sending are apart on purpose. ``deliver`` (in the server, behind the log) only
turns log rows into delivery rows, whose ids are derived from (webhook, transaction, event): reading
the same rows again after a crash queues nothing twice, and the log cursor moves on as soon as they
are stored. A :class:`WebhookSender` takes due deliveries from the table, one receiver per sending
thread, so a receiver that is down or slow holds up only its own deliveries, and a restart picks up
every pending one.

The sender runs in a process of its own (``python -m fraudstream.sinks.webhooks``, started by the
server when the first webhook exists, stopped with it): an HTTP request costs 100-200 microseconds of
Python, and sent from threads of the scoring process, a thousand deliveries a second took 40-50 % of
its throughput through the interpreter lock. Apart, they cost only the CPU they use.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import queue
import random
import secrets
import signal as signals
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import orjson
import structlog

from fraudstream.logs import configure_logging
from fraudstream.sinks.base import LogBatch
from fraudstream.storage import Store
from fraudstream.storage.rows import decision_record, transaction_record

if TYPE_CHECKING:
    from fraudstream.config import Settings

__all__ = [
    "DECISIONS",
    "EVENTS",
    "FORMATS",
    "WebhookSender",
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
#: Most deliveries one task sends to one receiver before their outcomes are stored.
PER_TASK = 100
#: Receivers sent to at the same time.
PARALLEL_RECEIVERS = 8
#: Longest pause between two looks at the outbox when nothing says it changed.
IDLE_WAIT_S = 0.5
#: A sender process that exited is started again after at least this long.
RESTART_AFTER_S = 5.0
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 3600.0


def _user_agent() -> str:
    try:
        return f"fraudstream/{version('fraudstream')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "fraudstream"


_USER_AGENT = _user_agent()


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
    if any(c.isspace() or ord(c) < 32 or ord(c) >= 127 for c in url):
        return "must be ASCII without spaces or control characters (percent-encode the others)"
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
    url: str
    secret: str = field(repr=False)


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
    """The ``webhooks`` sink: queues the decisions webhooks ask for as deliveries, which its sender
    process sends, signed.

    Always configured; ``active`` only while a webhook exists, so a server without webhooks reads
    nothing for them and starts no sender. Problems of the receivers (refused connections, timeouts,
    non-2xx answers) do not reach the runner, which only sees ``deliver``; ``problem`` reports them
    for /readyz, as the sender process reports them."""

    name = "webhooks"
    #: After a crash the last second of the log is read again: its deliveries exist, none is queued twice.
    save_every_s = 1.0

    def __init__(
        self, store: Store, *, timeout_s: float, max_attempts: int, log_format: str = "json"
    ) -> None:
        self.store = store
        #: True while every webhook asks for alerts only: the runner then reads only the alerts.
        self.alerts_only = False
        self._targets: dict[str, _Target] = {}
        self._loaded_at = -REFRESH_S
        self._timeout_s = timeout_s
        settings = {"database_url": store.url, "timeout_s": timeout_s, "max_attempts": max_attempts}
        self._sender = _SenderProcess({**settings, "log_format": log_format})

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> WebhookSink:
        return cls(
            store,
            timeout_s=settings.webhook_timeout_s,
            max_attempts=settings.webhook_max_attempts,
            log_format=settings.log_format,
        )

    def reload(self) -> None:
        """Read the live webhooks now (the API calls this after creating or deleting one), and tell
        the sender."""
        self._targets = _targets(self.store)
        self.alerts_only = bool(self._targets) and all(t.events == {"alert"} for t in self._targets.values())
        self._loaded_at = time.monotonic()
        self._sender.tell("changed")

    def _current(self) -> dict[str, _Target]:
        if time.monotonic() - self._loaded_at >= REFRESH_S:
            self.reload()
        return self._targets

    def active(self) -> bool:
        if not self._current():
            return False
        self._sender.ensure_running()
        return True

    def deliver(self, batch: LogBatch) -> int | None:
        if len(batch):
            now_ms = int(time.time() * 1000)
            self.store.add_deliveries(self.deliveries(batch, self._current().values(), now_ms))
            self._sender.tell("wake")
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
        why the outbox cannot be read, or that the sender process stopped; None when every live
        receiver took its last delivery."""
        return self._sender.problem(self._targets)

    def close(self) -> None:
        # Attempts in flight get their timeout to end and be recorded.
        self._sender.stop(self._timeout_s + 2)


def _targets(store: Store) -> dict[str, _Target]:
    return {
        r["id"]: _Target(
            r["id"], frozenset(r["events"]), float(r["min_score"] or 0), r["format"], r["url"], r["secret"]
        )
        for r in store.webhook_targets()
    }  # fmt: skip


class _SenderProcess:
    """The server's handle on its webhook sender process: started when needed (and again, at most
    every ``RESTART_AFTER_S``, should it exit), told "wake" after deliveries are queued and "changed"
    after webhooks change, one line each on its stdin; its reports (receivers failing) come back as
    JSON lines on its stdout. Closing its stdin stops it, so it also ends with a server that is
    killed."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = -RESTART_AFTER_S
        self._stopped = False
        #: The sender's last report: webhook id -> error of its receiver's last attempt, and the outbox.
        self._report: dict[str, Any] = {"failing": {}, "outbox_error": None}

    def ensure_running(self) -> None:
        with self._lock:
            if self._stopped or (self._process is not None and self._process.poll() is None):
                return
            if time.monotonic() - self._started_at < RESTART_AFTER_S:
                return
            if self._process is not None:
                log.error("webhook sender exited; starting it again", code=self._process.returncode)
            self._started_at = time.monotonic()
            # stderr is the server's: the sender logs where the server does.
            process = subprocess.Popen(
                [sys.executable, "-m", "fraudstream.sinks.webhooks"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert process.stdin is not None
            # Its settings go through the pipe, not the command line: the database URL may hold a password.
            process.stdin.write(orjson.dumps(self._settings) + b"\n")
            process.stdin.flush()
            self._process = process
        threading.Thread(target=self._read_reports, args=(process,), name="fraudstream-webhooks-reports",
                         daemon=True).start()  # fmt: skip

    def _read_reports(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._report = orjson.loads(line)
        self._report = {"failing": {}, "outbox_error": None}

    def tell(self, word: str) -> None:
        """Say ``word`` ("wake", "changed") to a running sender; nothing when there is none."""
        with self._lock:
            process = self._process
            if process is None or process.stdin is None or process.poll() is not None:
                return
            try:
                process.stdin.write(word.encode() + b"\n")
                process.stdin.flush()
            except (BrokenPipeError, ValueError):  # it has just exited: ``ensure_running`` restarts it
                return

    def problem(self, live: Mapping[str, _Target]) -> str | None:
        process = self._process
        if process is not None and process.poll() is not None and not self._stopped:
            return f"the webhook sender exited (code {process.returncode}); it is started again"
        report = self._report
        if report["outbox_error"] is not None:
            return f"the webhook outbox cannot be read: {report['outbox_error']}"
        failing = sorted((w, e) for w, e in report["failing"].items() if w in live)
        if not failing:
            return None
        shown = "; ".join(f"{w}: {e}" for w, e in failing[:3])
        return f"{len(failing)} of {len(live)} webhook receivers failing ({shown})"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close its stdin and wait for it to end (attempts in flight finish and are recorded); kill
        it after ``timeout_s``. What is pending stays in the outbox for the next start."""
        with self._lock:
            self._stopped = True
            process = self._process
            if process is None:
                return
            if process.stdin is not None:
                with contextlib.suppress(BrokenPipeError):  # it has exited already
                    process.stdin.close()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("webhook sender did not stop in time; killed (what it was sending is sent again)")
            process.kill()
            process.wait(5)


class WebhookSender:
    """Sends due deliveries to the receivers, signed: one look-out thread finds the receivers with
    due deliveries, and ``PARALLEL_RECEIVERS`` sending threads each serve one receiver at a time,
    in turn, until none of its deliveries is due. Runs in the sender process (see ``main``)."""

    def __init__(self, store: Store, *, timeout_s: float, max_attempts: int) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self._connections = _Receivers(timeout_s)
        self._targets: dict[str, _Target] = {}
        self._loaded_at = -REFRESH_S
        self._lock = threading.Lock()
        #: Webhooks a sending thread is working for: the next looks at the outbox leave them be.
        self._busy: set[str] = set()
        #: Webhook id -> why its last attempt failed, until one succeeds.
        self._failing: dict[str, str] = {}
        #: Webhooks whose receiver took a delivery since this process started.
        self._answered: set[str] = set()
        self._outbox_error: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        #: A receiver's first due deliveries per item, for the sending threads.
        self._tasks: queue.Queue[tuple[_Target, list[dict[str, Any]]]] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        # Daemon threads: a receiver that never answers (or a host name that never resolves) must not
        # hold the process at exit; what was cut short is still pending in the outbox.
        self._threads = [threading.Thread(target=self._look_out, name="look-out", daemon=True)]
        self._threads += [
            threading.Thread(target=self._send_tasks, name=f"sender-{n}", daemon=True)
            for n in range(PARALLEL_RECEIVERS)
        ]
        for thread in self._threads:
            thread.start()

    def reload(self) -> None:
        self._targets = _targets(self.store)
        self._loaded_at = time.monotonic()

    def wake(self) -> None:
        """Deliveries were queued: look at the outbox now."""
        self._wake.set()

    def report(self) -> dict[str, Any]:
        """The receivers whose last attempt failed (webhook id -> error), and the outbox's error."""
        with self._lock:
            return {"failing": dict(self._failing), "outbox_error": self._outbox_error}

    def close(self) -> None:
        """Stop: attempts in flight get the timeout to end and be recorded."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + self.timeout_s + 1
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            log.warning("webhook attempts still in flight at stop; they are sent again at the next start")
        self._connections.close()

    def _look_out(self) -> None:
        """Hand each receiver with due deliveries to a sending thread, until stopped."""
        backoff = FIRST_RETRY_S
        while not self._stopping.is_set():
            try:
                if time.monotonic() - self._loaded_at >= REFRESH_S:
                    self.reload()
                self._hand_out()
                with self._lock:
                    self._outbox_error = None
                backoff = FIRST_RETRY_S
            except Exception as exc:  # the database: reported in /readyz, tried again
                if self._outbox_error is None:
                    log.error("webhook outbox unreadable; retrying", error=str(exc))
                with self._lock:
                    self._outbox_error = f"{type(exc).__name__}: {exc}"[:300]
                self._stopping.wait(backoff)
                backoff = min(30.0, backoff * 2)
                continue
            self._wake.wait(IDLE_WAIT_S)
            self._wake.clear()

    def _hand_out(self) -> None:
        """One look at the outbox for each live receiver no thread is sending to (an indexed probe
        each: a receiver's backlog is never read for another)."""
        now_ms = int(time.time() * 1000)
        for target in list(self._targets.values()):
            with self._lock:
                if target.id in self._busy:
                    continue
            group = self.store.due_deliveries(target.id, now_ms, PER_TASK)
            if group:
                with self._lock:
                    self._busy.add(target.id)
                self._tasks.put((target, group))

    def _send_tasks(self) -> None:
        while not self._stopping.is_set():
            try:
                target, group = self._tasks.get(timeout=IDLE_WAIT_S)
            except queue.Empty:
                continue
            try:
                self._serve(target, group)
            except Exception as exc:  # the database or a bug: logged and reported, deliveries stay due
                log.error("webhook deliveries not recorded; they will be sent again", webhook=target.id,
                          error=f"{type(exc).__name__}: {exc}")  # fmt: skip
                with self._lock:
                    self._failing[target.id] = f"outcomes not recorded: {type(exc).__name__}"
            finally:
                with self._lock:
                    self._busy.discard(target.id)
                self._wake.set()

    def _serve(self, target: _Target, group: list[dict[str, Any]]) -> None:
        """Send a receiver its due deliveries, a group after another, until none is due, it cannot be
        reached, or the webhook is deleted."""
        while group and not self._stopping.is_set() and target.id in self._targets:
            if not self._send_group(target, group):
                return
            group = self.store.due_deliveries(target.id, int(time.time() * 1000), PER_TASK)

    def _send_group(self, target: _Target, group: list[dict[str, Any]]) -> bool:
        """Send one receiver due deliveries in turn and store what came of them; False when it could
        not be reached. Then the rest of them are not sent this time: each counts an attempt with the
        same error (sending it would have failed alike, after as long a wait)."""
        outcomes: list[dict[str, Any]] = []
        trouble: str | None = None
        reachable = True
        for number, delivery in enumerate(group):
            if self._stopping.is_set() or target.id not in self._targets:
                break
            outcome, reachable = self._attempt(target, delivery)
            outcomes.append(outcome)
            trouble = outcome["last_error"]
            if not reachable:
                error = f"not sent: the receiver could not be reached just before ({trouble})"
                now_ms = int(time.time() * 1000)
                outcomes += [self._failed(d, None, error, now_ms) for d in group[number + 1 :]]
                break
        self.store.record_attempts(outcomes)
        self._note(target.id, outcomes, trouble)
        return reachable

    def _attempt(self, target: _Target, delivery: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """POST one delivery, signed; its outcome, and whether the receiver could be reached at all."""
        body = delivery["payload"].encode()
        headers = {
            "User-Agent": _USER_AGENT,
            "Content-Type": "application/json",
            "X-Fraudstream-Signature": signature(target.secret, int(time.time()), body),
            "X-Fraudstream-Delivery": delivery["id"],
            "X-Fraudstream-Event": delivery["event"],
        }
        try:
            status, answer = self._connections.post(target.url, body, headers)
        except httpx.TimeoutException:
            error = f"no answer within {self.timeout_s:g} s"
            return self._failed(delivery, None, error, int(time.time() * 1000)), False
        except (httpx.HTTPError, OSError, ValueError) as exc:
            return self._failed(delivery, None, _described(exc), int(time.time() * 1000)), False
        now_ms = int(time.time() * 1000)
        if 200 <= status < 300:
            return self._outcome(delivery, "delivered", status, None, now_ms), True
        error = f"HTTP {status}: {answer[:200].decode(errors='replace')}".strip()
        return self._failed(delivery, status, error, now_ms), True

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
            "status": status,
            "attempts": int(delivery["attempts"]) + 1,
            "next_attempt_ms": delivery["next_attempt_ms"],
            "last_status_code": status_code,
            "last_error": error,
            "delivered_at_ms": now_ms if status == "delivered" else None,
        }

    def _note(self, webhook_id: str, outcomes: Sequence[Mapping[str, Any]], trouble: str | None) -> None:
        """Remember how the receiver did (for ``report``): failing while its last attempt failed, with
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


class _Receivers:
    """An httpx client kept open for every receiver (keep-alive connections, TLS, credentials in the
    URL as basic auth), reading at most ``ANSWER_BYTES`` of an answer: the status is what counts, and
    the start of the body is kept as the error of a failed attempt. Used from several sending
    threads at once, as httpx allows."""

    ANSWER_BYTES = 64 * 1024

    def __init__(self, timeout_s: float) -> None:
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``body`` to ``url``: the status and the start of the answer. Raises httpx's
        TimeoutException when the receiver does not answer in time, another httpx.HTTPError when it
        cannot be reached or does not speak HTTP."""
        with self._client.stream("POST", url, content=body, headers=headers) as response:
            answer = b""
            for chunk in response.iter_bytes():
                answer += chunk
                if len(answer) >= self.ANSWER_BYTES:
                    break
            return response.status_code, answer[: self.ANSWER_BYTES]

    def close(self) -> None:
        self._client.close()


def main() -> None:
    """The sender process a server starts (``python -m fraudstream.sinks.webhooks``; not a command
    for people). Its settings come as the first line on stdin, as JSON; each line after that wakes it
    ("wake") or says the webhooks changed ("changed"); the end of stdin stops it. It writes a report
    (receivers failing) as a JSON line on stdout whenever the report changes."""
    # The server stops it by closing its stdin; Ctrl-C in a terminal reaches both, and the sender
    # must finish recording what it sent rather than die mid-way.
    signals.signal(signals.SIGINT, signals.SIG_IGN)
    # Scoring first: on a busy machine the sender gives way, and what it has not sent waits in the
    # outbox until there is CPU to spare.
    os.nice(10)
    settings = orjson.loads(sys.stdin.buffer.readline())
    configure_logging(settings["log_format"])
    store = Store(settings["database_url"])
    sender = WebhookSender(store, timeout_s=settings["timeout_s"], max_attempts=settings["max_attempts"])
    sender.reload()
    sender.start()
    done = threading.Event()
    threading.Thread(target=_report_changes, args=(sender, done), name="reports", daemon=True).start()
    for line in sys.stdin.buffer:
        if line.strip() == b"changed":
            sender.reload()
        sender.wake()
    done.set()
    sender.close()
    store.close()
    log.info("webhook sender stopped", pid=os.getpid())


def _report_changes(sender: WebhookSender, done: threading.Event) -> None:
    """Write the sender's report on stdout whenever it changes (looked at five times a second)."""
    last: dict[str, Any] | None = None
    while not done.is_set():
        report = sender.report()
        if report != last:
            try:
                sys.stdout.buffer.write(orjson.dumps(report) + b"\n")
                sys.stdout.buffer.flush()
            except BrokenPipeError:  # the server is gone; stdin's end stops the process
                return
            last = report
        done.wait(0.2)


if __name__ == "__main__":
    main()
