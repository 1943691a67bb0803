"""The embedded runtime: group-committed scoring, durable decisions, snapshots and replay on restart.

Concurrent requests are gathered for at most ``batch_wait_ms`` into one group, validated together,
scored with one engine call and written in one database transaction; only then does any request of
the group get its answer. The engine is snapshotted every ``snapshot_interval_s`` and on shutdown; at
start the newest snapshot is restored and the transactions stored after it are replayed from the
database, so features survive a restart, including kill -9.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from sqlalchemy import exc as sa_exc

from fraudstream.config import Settings
from fraudstream.core.batch import TransactionBatch
from fraudstream.core.engine import DecisionBatch, Engine
from fraudstream.core.models import Model
from fraudstream.core.rules import ListStore, RuleSet
from fraudstream.core.schema import label_batch
from fraudstream.errors import ConfigError, FraudstreamError, OverloadError, SinkError, ValidationError
from fraudstream.ml.registry import Registry, champion_model
from fraudstream.runtime.decider import Decider, Outcome
from fraudstream.runtime.embedded.alerts import AlertHub
from fraudstream.runtime.embedded.casework import CaseWork
from fraudstream.runtime.embedded.drift import DriftMonitor
from fraudstream.runtime.embedded.jobs import Jobs
from fraudstream.runtime.embedded.metrics import Metrics
from fraudstream.runtime.embedded.reads import Reads
from fraudstream.runtime.embedded.snoozing import SnoozeWork
from fraudstream.sinks import Sink, Sinks, configured_sinks
from fraudstream.sinks.webhooks import WebhookSink, new_webhook
from fraudstream.storage import Store
from fraudstream.storage.cases import CasePolicy
from fraudstream.storage.rows import (
    alert_event,
    alert_row,
    answer_of,
    batch_from_rows,
    decision_row,
    shadow_rows,
    transaction_rows_of,
)

if TYPE_CHECKING:
    from fraudstream.runtime.kafka.bridge import KafkaBridge

__all__ = ["ScoringService", "check_storage", "load_champion"]

log = structlog.get_logger("fraudstream.embedded")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Request:
    records: list[Any]
    received_at_ms: int
    started: float
    future: asyncio.Future[list[Outcome]]


def body_hash(record: Any) -> str:
    """Same JSON object (whatever the key order) → same hash: tells a retry from a conflict."""
    return hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()


def check_storage(settings: Settings, store: Store | None = None) -> None:
    """Raise ConfigError, in one line saying what to do, unless the data directory and the database
    take writes: a server that cannot store decisions must not start and call itself ready.

    The database is migrated to the newest schema on the way, through ``store`` (a service's own) or a
    store opened for the check alone."""
    for directory in (settings.data_dir, settings.snapshots_dir):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe = directory / f".write-check-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"cannot write to {directory}: {exc.strerror or exc}; fraudstream keeps its snapshots "
                "(and by default its SQLite database) there: give the server write access to it, or "
                "set FRAUDSTREAM_DATA_DIR to a writable directory"
            ) from None
    checked = store if store is not None else Store(settings.effective_database_url)
    try:
        checked.upgrade()
        checked.check_writable()
    except (SinkError, sa_exc.SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise ConfigError(
            f"cannot use the database {checked.engine.url.render_as_string(hide_password=True)}: {reason}; "
            "check FRAUDSTREAM_DATABASE_URL and that the server may write to it"
        ) from None
    finally:
        if store is None:
            checked.close()


def load_champion(settings: Settings) -> Model | None:
    """The model in ``model_path`` if set, else the registry's champion, if there is one."""
    return champion_model(
        settings.model_path,
        settings.models_dir,
        settings.engine_config().features.feature_names,
        endpoint_url=settings.s3_endpoint_url,
    )


class ScoringService:
    """Everything the API and the CLI need from the running engine and its database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.effective_database_url, case_policy=CasePolicy.of(settings))
        self.config = settings.engine_config()
        #: Rules, champion, challengers and validation: the decide path the Kafka workers share.
        self.decider = Decider(
            self.config,
            settings.card_key_bytes,
            model_path=settings.model_path,
            models_dir=settings.models_dir,
            s3_endpoint_url=settings.s3_endpoint_url,
        )
        self.names = self.decider.names
        self.engine = self.decider.engine()
        self.alerts = AlertHub()
        self.metrics = Metrics()
        self.metrics.exposition.describe_build(
            lambda: {
                "model": self.decider.champion_version or "",
                "rules_version": str(self.engine.rules.version),
            }
        )
        #: What the API and the dashboard read: stored transactions, alerts, rules, models, keys, stats.
        self.reads = Reads(self.store, settings, self.metrics, self.decider, lambda: self.engine)
        #: Scheduled and asked-for jobs: retrain, re-score history, the backtest report.
        self.jobs = Jobs(self.store, settings, lambda: self.engine.rules, self.refresh_model)
        #: Live counts of the champion's features against its training data, and their PSI.
        self.drift = DriftMonitor(self.store, settings, lambda: self.engine.model)
        self.metrics.exposition.add_families(self.drift.families)
        # One thread at a time touches the engine and writes: the order of the log is the order of
        # the engine, which is what makes replay after a crash exact.
        self._lock = threading.Lock()
        #: Requests for the batcher; ``None`` tells it to finish what it holds and stop.
        self._queue: asyncio.Queue[_Request | None] | None = None
        #: Transactions admitted and not yet answered (queued, or in the group being scored).
        self._pending = 0
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = False
        #: Kafka mode: transactions go to a topic, decisions come back from workers (docs/kafka.md).
        self.kafka: KafkaBridge | None = None
        #: The outputs behind the database (lake, Redis, webhooks), fed from the stored log.
        self.sinks = Sinks([], self.store)
        #: Snoozes: a rule, or every review, silenced for one entity until a time.
        self.snoozes = SnoozeWork(
            self.store, self._lock, lambda: self.engine, lambda: self.kafka, settings.card_key_bytes
        )
        #: Cases: alerts grouped by entity, assigned, commented and closed with one verdict.
        self.cases = CaseWork(self.store, self._lock, lambda: self.engine, lambda: self.kafka)

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        # The event loop (HTTP) and the scoring thread share the GIL; a 1 ms switch interval (default
        # 5 ms) keeps either from holding up the other's requests for long.
        sys.setswitchinterval(0.001)
        await asyncio.to_thread(check_storage, self.settings, self.store)  # migrates the database too
        await asyncio.to_thread(self._prepare)
        self.sinks = Sinks(configured_sinks(self.settings, self.store) + self._kafka_outputs(), self.store)
        await asyncio.to_thread(self.sinks.start)
        self.metrics.exposition.add_families(self.sinks.families)
        loop = asyncio.get_running_loop()
        self.alerts.bind(loop)
        self._queue = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._batcher(), name="fraudstream-batcher"),
            asyncio.create_task(self._snapshotter(), name="fraudstream-snapshots"),
        ]
        if self.settings.kafka_brokers:
            from fraudstream.runtime.kafka.bridge import KafkaBridge

            alerts = self.alerts
            self.kafka = KafkaBridge(
                self.settings,
                self.store,
                on_alerts=lambda rows: alerts.publish_threadsafe([alert_event(r) for r in rows]),
            )
            self.kafka.start()
            # Workers decide with the rule set and lists in force here, even if they started earlier.
            await asyncio.to_thread(self.kafka.announce, self._control_messages())
        await self.jobs.start()
        # What start-up built (libraries, compiled kernels, models, reference data: objects that live
        # as long as the process) leaves the cyclic collector's view, so that a full collection,
        # which took 140-200 ms at start-up here, does not walk them again while requests wait.
        gc.freeze()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await self.jobs.stop()
        if self.kafka is not None:
            await asyncio.to_thread(self.kafka.stop)
        # Queued requests and the group being scored finish before the final snapshot: a group
        # still scoring in its thread would otherwise store transactions that the snapshot does not
        # hold. New requests are refused from here on. Bounded: a stuck batcher must not hang the
        # shutdown.
        self._closing = True
        if self._queue is not None and self._tasks:
            self._queue.put_nowait(None)
            _, pending = await asyncio.wait({self._tasks[0]}, timeout=10)
            if pending:
                log.error("the scoring batcher did not finish within 10 s; stopping it")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.snapshot)
        # The sinks hand over what is stored (the lake writes its last files) before the database closes.
        await asyncio.to_thread(self.sinks.stop)
        self.store.close()

    def _kafka_outputs(self) -> list[Sink]:
        """The decisions and alerts topics as a sink, when ``kafka_outputs`` names a broker."""
        brokers = self.settings.kafka_outputs
        if not brokers:
            return []
        if self.settings.kafka_brokers:
            raise ConfigError(
                "kafka_outputs is for the embedded server; in Kafka mode (kafka_brokers) the workers "
                "write the decisions and alerts topics: unset FRAUDSTREAM_KAFKA_OUTPUTS"
            )
        from fraudstream.runtime.kafka.clients import user_properties
        from fraudstream.runtime.kafka.topics_sink import KafkaTopics

        return [
            KafkaTopics(
                brokers,
                user_properties(self.settings),
                decisions_topic=self.settings.kafka_decisions_topic,
                alerts_topic=self.settings.kafka_alerts_topic,
            )
        ]

    def _control_messages(self, list_names: Sequence[str] | None = None) -> list[tuple[bytes, bytes]]:
        """The rule set in force, the snoozes and the lists ``list_names`` (all by default), as control
        messages."""
        from fraudstream.runtime.kafka.control import list_message, rules_message

        kinds = self.engine.lists.names()
        names = list(kinds) if list_names is None else list(list_names)
        messages = []
        if list_names is None:
            messages = [rules_message(self.engine.rules.to_yaml()), self.snoozes.control_message()]
        for name in names:
            values = self.engine.lists.get(name).to_pylist()
            messages.append(list_message(name, kinds[name], values, self.engine.lists.expiries(name)))
        return messages

    def _prepare(self) -> None:
        self.decider.set_rules(self._initial_rules())
        self.decider.keep_current(self.engine)
        for name, (kind, items, expiries) in self.store.saved_lists().items():
            self.engine.lists.declare(name, kind)
            self.engine.update_list(name, items, expiries)
        self.snoozes.load()
        self.decider.load_models()
        self.decider.keep_current(self.engine)
        self._restore_and_replay()
        if self.settings.admin_key is not None:
            self.store.create_api_key("admin", "admin", now_ms(), self.settings.admin_key.get_secret_value())
        log.info(
            "engine ready",
            rules_version=self.engine.rules.version,
            model=self.decider.champion_version,
            challengers=self.decider.challenger_versions,
            entities=self.engine.state.entity_counts(),
        )

    def _initial_rules(self) -> RuleSet:
        active = self.store.active_ruleset()
        if active is not None:
            version, text = active
            return dataclasses.replace(self.decider.parse_rules(text), version=version)
        if self.settings.rules_path is not None:
            rules = self.decider.parse_rules(self.settings.rules_path.read_text(encoding="utf-8"))
        else:
            rules = self.decider.rules  # the built-in set
        self.store.save_ruleset(rules.version, rules.to_yaml(), "system", now_ms())
        return rules

    def _restore_and_replay(self) -> None:
        seq, label_id = 0, 0
        snapshot = self.store.last_snapshot()
        # Snapshots are recorded by file name and looked for in this server's own snapshot folder
        # (older versions recorded absolute paths): a copied data directory must never read the
        # state of the instance it was copied from.
        path = None if snapshot is None else self.settings.snapshots_dir / Path(snapshot["path"]).name
        if snapshot is not None and path is not None and path.is_file():
            try:
                self.engine.restore(path.read_bytes())
                seq, label_id = int(snapshot["last_seq"]), int(snapshot["last_label_id"])
            except FraudstreamError as exc:
                log.warning("snapshot unusable, replaying the whole log", error=str(exc))
                self.engine = self._fresh_engine()
        replayed = 0
        counted = self.drift.stored_through()  # what stored drift counts hold; the rest is counted here
        while True:
            rows = self.store.events_after(seq, 20_000)
            if not rows:
                break
            decisions = self.decider.decide(
                self.engine, batch_from_rows(rows), [row["received_at_ms"] for row in rows]
            )
            self.drift.observe_replayed(decisions, rows, counted)
            seq = int(rows[-1]["seq"])
            replayed += len(rows)
        labels = self.store.labels_after(label_id)
        if labels:
            self.engine.apply_labels(label_batch(labels))
        log.info("state restored", snapshot=str(path) if path else None, replayed=replayed)

    def snapshot(self) -> Path:
        """Write the engine state to a file and record from which log position it holds."""
        with self._lock:
            data = self.engine.snapshot()
            seq, label_id = self.store.last_seq(), self.store.last_label_id()
            drift = self.drift.take()
        # Stored before the state, with the log position they hold: see _restore_and_replay.
        self.drift.store(drift, seq)
        path = self.settings.snapshots_dir / f"state-{seq:012d}.bin"
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        self.store.record_snapshot(path.name, seq, label_id, now_ms())
        for old in sorted(self.settings.snapshots_dir.glob("state-*.bin"))[:-2]:
            old.unlink(missing_ok=True)
        return path

    def expire_idle(self) -> int:
        """Forget entities idle for longer than ``idle_expiry``, between two scoring groups."""
        with self._lock:
            return self.engine.expire(now_ms())

    async def _snapshotter(self) -> None:
        while True:
            await asyncio.sleep(self.settings.snapshot_interval_s)
            try:
                await asyncio.to_thread(self.snapshot)
                await asyncio.to_thread(self.expire_idle)
                await asyncio.to_thread(self.refresh_model)
                await asyncio.to_thread(self.drift.refresh)
            except (OSError, FraudstreamError) as exc:
                log.error("periodic maintenance failed", error=str(exc))

    def refresh_model(self) -> None:
        """Pick up a newly promoted champion and the registry's challengers without a restart."""
        if self.decider.refresh_models():
            with self._lock:
                self.decider.keep_current(self.engine)

    # --- scoring -----------------------------------------------------------------------------

    async def score(self, records: Sequence[Any]) -> list[Outcome]:
        """Score transactions; returns once they and their decisions are committed.

        In Kafka mode, valid transactions are produced to the topic instead (status "accepted",
        once the broker has them); workers score them and their decisions come back.
        """
        if not records:
            return []
        if self.kafka is not None:
            kafka = self.kafka
            return await asyncio.to_thread(lambda: kafka.accept(self.decider, records))
        if self._queue is None:
            raise SinkError("the scoring service is not started")
        if self._closing:
            raise SinkError("the scoring service is shutting down")
        self._admit(len(records))
        try:
            future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
            await self._queue.put(_Request(list(records), now_ms(), time.perf_counter(), future))
            return await future
        finally:
            self._pending -= len(records)

    def overloaded(self) -> OverloadError | None:
        """Why a new request would be refused now (``max_pending`` transactions wait), else None: lets
        the HTTP edge refuse before it reads and parses a body it would throw away."""
        if self.kafka is None and self._pending >= self.settings.max_pending:
            return OverloadError(
                f"{self._pending} transactions are waiting to be scored (at most "
                f"{self.settings.max_pending}); nothing of this request was taken: send it again shortly"
            )
        return None

    def _admit(self, count: int) -> None:
        """Take ``count`` more transactions, or refuse them when ``max_pending`` are already waiting:
        a queue without a bound turns overload into everyone's latency (seconds) and memory."""
        if self._pending and self._pending + count > self.settings.max_pending:
            self.metrics.record_refused()
            raise self.overloaded() or OverloadError(
                f"{self._pending} transactions are waiting to be scored and {count} more would pass the "
                f"limit of {self.settings.max_pending}; nothing of this request was taken: send it again "
                "shortly, or in smaller lists"
            )
        self._pending += count

    async def _batcher(self) -> None:
        assert self._queue is not None
        queue = self._queue
        wait = self.settings.batch_wait_ms / 1000.0
        lone = False
        closing = False
        while not closing:
            first = await queue.get()
            if first is None:
                return
            group = [first]
            size = len(first.records)
            # Under concurrent load a group gathers for up to ``wait``; a lone client (the last
            # group held a single request) has nobody to wait for and goes at once.
            deadline = time.perf_counter() + (0.0 if lone and queue.empty() else wait)
            while size < self.settings.max_batch:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 and queue.empty():
                    break
                try:
                    request = (
                        queue.get_nowait()
                        if remaining <= 0
                        else await asyncio.wait_for(queue.get(), remaining)
                    )
                except (TimeoutError, asyncio.QueueEmpty):
                    break
                if request is None:
                    closing = True
                    break
                group.append(request)
                size += len(request.records)
            lone = len(group) == 1
            await self._decide(group)

    async def _decide(self, group: list[_Request]) -> None:
        """Score and store a group, answering each request. When the group fails, each of its requests
        is tried again alone: one request that cannot be processed fails only itself."""
        try:
            results = await asyncio.to_thread(self._process, group)
        except Exception as exc:
            if len(group) > 1 and not isinstance(exc, SinkError):
                log.warning("scoring group failed; trying its requests one by one", error=str(exc))
                for request in group:
                    await self._decide([request])
                return
            # Every waiting request must hear about the failure (a database that is down fails all).
            log.error("scoring group failed", error=str(exc), requests=len(group))
            for request in group:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        for request, outcomes in zip(group, results):
            if not request.future.done():
                request.future.set_result(outcomes)

    def _process(self, group: list[_Request]) -> list[list[Outcome]]:
        records = [r for request in group for r in request.records]
        owners = [i for i, request in enumerate(group) for _ in request.records]
        received = [group[i].received_at_ms for i in owners]
        outcomes: list[Outcome | None] = [None] * len(records)
        result = self.decider.validate(records, received_at_ms=min(received))
        # Only rows that passed validation are hashed: their fields are checked and their extra
        # fields bounded, so serialising them cannot fail (a refused row may nest 1,000 levels).
        refused = {error.index for error in result.errors}
        hashes = ["" if i in refused else body_hash(r) for i, r in enumerate(records)]
        for error in result.errors:
            outcomes[error.index] = Outcome(
                "invalid", error.transaction_id, errors=[e.as_dict() for e in error.errors]
            )
        with self._lock:
            ids = result.batch.transaction_id.to_pylist()
            stored = self.store.existing(ids)
            first_seen: dict[str, int] = {}
            fresh: list[int] = []
            repeats: list[tuple[int, int, str]] = []
            for position, (row, transaction_id) in enumerate(zip(result.rows.tolist(), ids)):
                if transaction_id in stored or transaction_id in first_seen:
                    repeats.append((row, position, transaction_id))
                else:
                    first_seen[transaction_id] = row
                    fresh.append(position)
            written = self._score_and_write(result.batch.take(fresh), [int(result.rows[p]) for p in fresh],
                                            hashes, received, group, owners) if fresh else {}  # fmt: skip
        for row, _, transaction_id in repeats:
            previous_hash, decision = stored.get(transaction_id) or (
                hashes[first_seen[transaction_id]],
                written[transaction_id],
            )
            same = previous_hash == hashes[row]
            outcomes[row] = Outcome(
                "duplicate" if same else "conflict", transaction_id, decision if same else None
            )
        for transaction_id, row in first_seen.items():
            outcomes[row] = Outcome("scored", transaction_id, written[transaction_id])
        self.metrics.record_invalid(len(result.errors))
        self.metrics.record_repeat(
            sum(1 for o in outcomes if o and o.status == "duplicate"),
            sum(1 for o in outcomes if o and o.status == "conflict"),
        )
        grouped: list[list[Outcome]] = [[] for _ in group]
        for owner, outcome in zip(owners, outcomes):
            assert outcome is not None
            grouped[owner].append(outcome)
        return grouped

    def _score_and_write(
        self,
        batch: TransactionBatch,
        rows: list[int],
        hashes: list[str],
        received: list[int],
        group: list[_Request],
        owners: list[int],
    ) -> dict[str, dict[str, Any]]:
        started = time.perf_counter()
        decisions = self.decider.decide(self.engine, batch, [received[r] for r in rows])
        try:
            results = self._write(decisions, batch, rows, hashes, received, [group[owners[r]] for r in rows])
            self.metrics.exposition.record_group_commit(time.perf_counter() - started)
            return results
        except BaseException:
            # The engine has seen events that are not stored: rebuild it from the stored log.
            self._rebuild()
            raise

    def _write(
        self,
        decisions: DecisionBatch,
        batch: TransactionBatch,
        rows: list[int],
        hashes: list[str],
        received: list[int],
        requests: list[_Request],
    ) -> dict[str, dict[str, Any]]:
        """Store a scored batch and its decisions in one database transaction; the answers, by id."""
        decided_at = now_ms()
        records: list[dict[str, Any]] = decisions.to_records()
        transaction_rows = transaction_rows_of(batch, [hashes[r] for r in rows], [received[r] for r in rows])
        decision_rows: list[dict[str, Any]] = []
        alert_rows: list[dict[str, Any]] = []
        results: dict[str, dict[str, Any]] = {}
        elapsed = [(time.perf_counter() - request.started) * 1000 for request in requests]
        features = decisions.key_feature_rows()
        for i, record in enumerate(records):
            row = decision_row(record, features[i], elapsed[i], decided_at)
            decision_rows.append(row)
            results[record["transaction_id"]] = answer_of(record, features[i], row)
            if record["is_alert"]:
                alert_rows.append(alert_row(record, transaction_rows[i], decided_at))
        shadow = shadow_rows(
            [record["transaction_id"] for record in records],
            {version: p.tolist() for version, p in decisions.shadow_probability.items()},
        )
        written = self.store.write_scored(
            transaction_rows, decision_rows, alert_rows, shadow, positions=self.sinks.taking_rows
        )
        self.sinks.stored(written, transaction_rows, decision_rows)
        self.drift.observe(decisions, [received[r] for r in rows])
        self.metrics.record_batch(
            decisions.decisions, elapsed, decisions.rule_hits.counts(), decisions.score, len(alert_rows)
        )
        if not self.metrics.timing:
            # The first group pays for first calls the warm-up cannot make (the database's first
            # writes, the restored state): its latencies stay out of the figures (`Metrics.warmed_up`).
            self.metrics.warmed_up()
        self.alerts.publish_threadsafe([alert_event(a) for a in alert_rows])
        return results

    def _rebuild(self) -> None:
        """A fresh engine with the same rules, models and lists, its state restored from the newest
        snapshot and the stored log: what it holds is again exactly what is stored."""
        self.engine = self._fresh_engine()
        self.drift.discard()  # the replay counts them again
        self._restore_and_replay()

    def _fresh_engine(self) -> Engine:
        """An engine with the rules, models and lists of the current one, and an empty state."""
        engine = self.decider.engine(lists=self.engine.lists)
        engine.set_snoozes(self.engine.snoozes)
        return engine

    async def preview(self, record: Any) -> dict[str, Any]:
        """Verdict and reasons for a what-if transaction; nothing is stored, the state is untouched."""
        result = self.decider.validate([record], received_at_ms=now_ms())
        if result.errors:
            raise ValidationError(list(result.errors[0].errors))

        def run() -> DecisionBatch:
            with self._lock:
                return self.decider.preview(self.engine, result.batch)

        decisions = await asyncio.to_thread(run)
        decision = decisions.to_records()[0]
        decision["features"] = decisions.key_features(0)
        user = result.batch.user_id[0].as_py()
        history = await asyncio.to_thread(self.store.user_history, user, 10)
        return {**decision, "user_history": history}

    # --- analysts ----------------------------------------------------------------------------

    async def review(
        self, transaction_id: str, verdict: str | None, note: str | None, actor: str, status: str = "closed"
    ) -> dict[str, Any] | None:
        """Close (or update) an alert; a verdict becomes a label the engine learns from at once."""

        def run() -> dict[str, Any] | None:
            with self._lock:
                label = self.store.review_alert(
                    transaction_id, verdict=verdict, note=note, actor=actor, status=status, now_ms=now_ms()
                )
                if label is not None:
                    self.engine.apply_labels(label_batch([label]))
                return label

        label = await asyncio.to_thread(run)
        if label is not None and self.kafka is not None:
            await asyncio.to_thread(self.kafka.publish_labels, [label])
        return label

    async def assign(self, transaction_id: str, assignee: str, actor: str) -> None:
        """Give an alert to the analyst ``assignee`` (status in_review); ``actor`` is audited."""
        await asyncio.to_thread(self.store.assign_alert, transaction_id, assignee, actor, now_ms())

    async def add_labels(self, records: Sequence[Any], actor: str) -> dict[str, Any]:
        """Bulk chargebacks and confirmed frauds: stored, then fed to the engine."""
        good, bad = self.decider.validate_labels(records, received_at_ms=now_ms())

        def run() -> tuple[list[dict[str, Any]], list[str]]:
            with self._lock:
                enriched, unknown = self.store.add_labels(
                    good, source="chargeback", actor=actor, now_ms=now_ms()
                )
                if enriched:
                    self.engine.apply_labels(label_batch(enriched))
                return enriched, unknown

        enriched, unknown = await asyncio.to_thread(run)
        if enriched and self.kafka is not None:
            await asyncio.to_thread(self.kafka.publish_labels, enriched)
        return {
            "accepted": len(enriched),
            "unknown_transactions": unknown,
            "invalid": [e.as_dict() for e in bad],
        }

    async def set_rules(
        self, text: str, actor: str, *, action: str = "save_rules", details: Mapping[str, Any] | None = None
    ) -> RuleSet:
        """Validate, store as the next version and hot-swap; a RuleError leaves everything as it was.
        Audited as ``action`` with ``details``."""
        parsed = self.decider.parse_rules(text)

        def run() -> RuleSet:
            with self._lock:
                version = max(parsed.version, self.engine.rules.version + 1)
                rules = dataclasses.replace(parsed, version=version)
                self.store.save_ruleset(
                    version, rules.to_yaml(), actor, now_ms(), action=action, details=details
                )
                self.decider.set_rules(rules)
                self.decider.keep_current(self.engine)
                return rules

        rules = await asyncio.to_thread(run)
        if self.kafka is not None:
            await asyncio.to_thread(self.kafka.announce, self._control_messages())
        return rules

    def parse_rules(self, text: str) -> RuleSet:
        """A rule set from YAML, checked against the features this server computes; nothing is put in
        force. Raises RuleError with the rule, the position and the reason."""
        return self.decider.parse_rules(text)

    async def set_rule_flags(
        self, code: str, actor: str, *, enabled: bool | None, shadow: bool | None
    ) -> RuleSet:
        """Enable, disable or shadow one rule (None leaves a flag as it is): the next rule set version.
        Raises KeyError, saying so, when no rule in force has ``code``."""
        rules = self.engine.rules
        if code not in {r.code for r in rules.rules}:
            raise KeyError(f"no rule {code!r} in the running rule set")
        changed = rules.with_flags(code, self.names, enabled=enabled, shadow=shadow)
        return await self.set_rules(changed.to_yaml(), actor)

    def _known_list(self, name: str) -> None:
        if name not in self.engine.lists.names():
            raise KeyError(f"no list {name!r}; declared lists: {sorted(self.engine.lists.names())}")

    async def update_list(
        self, name: str, items: list[str], actor: str, expiries: Mapping[str, int] | None = None
    ) -> None:
        """Replace a declared list's contents (``expiries``: item -> ms, of the items that expire).
        Raises KeyError, naming the declared lists, for another name."""
        self._known_list(name)
        await self._change_list(name, actor, lambda lists: lists.replace(name, items, expiries), {})

    async def add_list_items(self, name: str, expiries: Mapping[str, int | None], actor: str) -> None:
        """Add items to a declared list, each with its expiry (ms) or None (never); an item already
        there takes the expiry given. KeyError for an undeclared list."""
        self._known_list(name)
        timed = {item: ms for item, ms in expiries.items() if ms is not None}
        details = {"added": sorted(expiries)[:20]}
        await self._change_list(name, actor, lambda lists: lists.add(name, list(expiries), timed), details)

    async def remove_list_item(self, name: str, item: str, actor: str) -> bool:
        """Remove one item from a declared list; False when it is not in it. KeyError for an
        undeclared list."""
        self._known_list(name)
        if item not in self.engine.lists.get(name).to_pylist():
            return False
        await self._change_list(name, actor, lambda lists: lists.remove(name, [item]), {"removed": item})
        return True

    async def _change_list(
        self, name: str, actor: str, change: Callable[[ListStore], None], details: Mapping[str, Any]
    ) -> None:
        """Change a list in the engine and store it, audited. Items that have expired by now are
        dropped then (lazily: an expired item matches nothing, so it only waits for the next change
        of its list to go)."""

        def run() -> None:
            with self._lock:
                lists = self.engine.lists
                change(lists)
                purged = lists.purge(name, now_ms())
                kind = lists.names()[name]
                audited = {**details, "purged": purged[:20]} if purged else details
                values = lists.get(name).to_pylist()
                self.store.save_list(name, kind, values, actor, now_ms(), lists.expiries(name), audited)

        await asyncio.to_thread(run)
        if self.kafka is not None:
            await asyncio.to_thread(self.kafka.announce, self._control_messages([name]))

    def list_contents(self, name: str) -> dict[str, Any]:
        """A declared list's kind and items, each with its expiry (ms, None: never). KeyError for an
        undeclared list."""
        self._known_list(name)
        lists = self.engine.lists
        expiries = lists.expiries(name)
        items = [{"value": v, "expires_at_ms": expiries.get(v)} for v in lists.get(name).to_pylist()]
        return {"name": name, "kind": lists.names()[name], "size": len(items), "items": items}

    async def activate_ruleset(self, version: int, actor: str) -> RuleSet:
        """Roll back to a stored rule set version: its YAML becomes the next version (versions only
        grow, so every decision's ``ruleset_version`` names one text), audited as ``rollback_rules``.
        Raises KeyError for an unknown version."""
        text = await asyncio.to_thread(self.store.ruleset_yaml, version)
        if text is None:
            raise KeyError(f"no stored rule set version {version}")
        return await self.set_rules(text, actor, action="rollback_rules", details={"restored": version})

    # --- administration ----------------------------------------------------------------------

    async def promote_model(self, version: str, actor: str) -> str:
        """Make a registered model the champion; the engine scores with it at once. Raises ModelError
        when the registry has no such version."""
        return await asyncio.to_thread(
            self._change_model_role, Registry.promote, version, "model_champion", actor
        )

    async def shadow_model(self, version: str, actor: str) -> str:
        """Make a registered model a challenger, scored in shadow from now on. Raises ModelError when
        the registry has no such version."""
        return await asyncio.to_thread(
            self._change_model_role, Registry.shadow, version, "model_challenger", actor
        )

    def _change_model_role(
        self, change: Callable[[Registry, str], str], version: str, action: str, actor: str
    ) -> str:
        found = change(Registry(self.settings.models_dir, self.settings.s3_endpoint_url), version)
        self.refresh_model()  # the running engine follows at once, not at the next maintenance tick
        self.store.audit(actor, action, found, {"version": found}, now_ms())
        return found

    async def record_export(self, actor: str, export: str, filters: Mapping[str, Any]) -> None:
        """Audit a download of stored data (``export``: e.g. ``transactions.csv``) with its filters:
        who took customer data out, and which, is part of the trail."""
        chosen = {name: value for name, value in filters.items() if value is not None}
        await asyncio.to_thread(self.store.audit, actor, "export", export, chosen, now_ms())

    async def revoke_keys(self, name: str, actor: str) -> int:
        """Revoke every valid API key of ``name`` (audited); how many (0: it held none)."""

        def run() -> int:
            revoked = self.store.revoke_api_keys(name)
            if revoked:
                self.store.audit(actor, "revoke_keys", name, {"revoked": revoked}, now_ms())
            return revoked

        return await asyncio.to_thread(run)

    async def create_webhook(
        self, url: str, events: Sequence[str], min_score: float | None, body_format: str, actor: str
    ) -> dict[str, Any]:
        """Register a webhook (audited): its row, secret included (shown to the caller once). The
        webhook sink knows it before this returns, so no decision from now on is missed."""

        def run() -> dict[str, Any]:
            row = new_webhook(url, events, min_score, body_format, actor, now_ms())
            self.store.create_webhook(row)
            details = {"events": row["events"], "min_score": min_score, "format": body_format}
            self.store.audit(actor, "create_webhook", row["id"], details, now_ms())
            self._webhooks_changed()
            return row

        return await asyncio.to_thread(run)

    async def delete_webhook(self, webhook_id: str, actor: str) -> int | None:
        """Delete a webhook (audited) and cancel its pending deliveries; how many were cancelled, or
        None when there is no such webhook."""

        def run() -> int | None:
            cancelled = self.store.delete_webhook(webhook_id, now_ms())
            if cancelled is not None:
                self.store.audit(actor, "delete_webhook", webhook_id, {"cancelled": cancelled}, now_ms())
                self._webhooks_changed()
            return cancelled

        return await asyncio.to_thread(run)

    def _webhooks_changed(self) -> None:
        sink = self.sinks.sink("webhooks")
        if isinstance(sink, WebhookSink):
            sink.reload()

    # --- the running server ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        # Decisions scored here before warm-up ended stay out of the latency figures; in Kafka mode
        # (workers decide, with warm-ups of their own) this server never warms up and takes them all.
        stats = self.store.stats(now_ms(), latency_since_ms=self.metrics.warm_since_ms)
        stats["decisions_per_second"] = self.metrics.rate()
        stats["live_latency_ms"] = self.metrics.latency()
        stats["top_rules"] = [{"rule": r, "hits": n} for r, n in self.metrics.rule_hits.most_common(10)]
        stats["uptime_s"] = round(time.time() - self.metrics.started, 1)
        return stats

    def health(self) -> dict[str, Any]:
        try:
            # A write, not a read: a database that answers reads but refuses writes stores nothing.
            self.store.check_writable()
            database = "connected"
        except SinkError as exc:
            database = str(exc)
        except Exception as exc:  # any database failure means "not healthy", reported, never raised
            database = f"down: {type(exc).__name__}"
        healthy = database == "connected" and self.ready
        health: dict[str, Any] = {
            "status": "healthy",
            "database": database,
            "engine": "ready" if self.ready else "starting",
            "model": self.engine.model.metadata.version if self.engine.model else None,
            "rules_version": self.engine.rules.version,
            "alert_subscribers": self.alerts.subscribers,
            "sinks": self.sinks.health(),
        }
        if self.kafka is not None:  # Kafka mode: transactions go to the broker, so it must answer
            reachable = self.kafka.reachable()
            health["kafka"] = "connected" if reachable else "unreachable: no broker answered within 2 s"
            healthy = healthy and reachable
        # A failing sink (lake, Redis, a webhook receiver) degrades the server but does not stop it
        # deciding: what the sink misses waits in the log and is handed over when it works again.
        if not healthy:
            health["status"] = "unavailable"
        elif self.sinks.failing:
            health["status"] = "degraded"
        return health
