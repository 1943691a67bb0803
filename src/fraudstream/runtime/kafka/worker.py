"""`fraudstream worker`: a consumer-group member that scores micro-batches per partition.

Each assigned partition has its own engine. Its state is checkpointed together with the next input
offset; on assignment the checkpoint is restored and the consumer seeks to that offset, so after a
crash or a rebalance the events since the checkpoint are replayed through the restored state and give
the same decisions again. Offsets are committed only up to a checkpoint, after its outputs are
flushed. Outputs are keyed by transaction id: a replay may repeat a message with the identical
payload, which sinks upsert (see docs/kafka.md). Producing them, and committing them with the offsets
in a transactional worker, is `fraudstream.runtime.kafka.outputs`.

Labels (confirmed fraud, chargebacks) come from the labels topic through a second consumer that reads
every labels partition. Each transactions partition records in its checkpoint how far it has read
them and which are still waiting for their label time (`fraudstream.runtime.kafka.labels`), so a
restored partition reads again exactly the labels it had not yet taken in.
"""

from __future__ import annotations

import gc
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import orjson
import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from fraudstream import config as defaults
from fraudstream.core.engine import DecisionBatch, Engine, EngineConfig
from fraudstream.core.rules import RuleSet
from fraudstream.errors import FraudstreamError
from fraudstream.runtime.decider import Decider
from fraudstream.runtime.kafka.checkpoints import checkpoint_store
from fraudstream.runtime.kafka.clientlog import client_logger
from fraudstream.runtime.kafka.clients import client_settings
from fraudstream.runtime.kafka.control import ControlReader
from fraudstream.runtime.kafka.decode import decode_block
from fraudstream.runtime.kafka.labels import (
    PartitionLabels,
    decode_partition_state,
    encode_partition_state,
)
from fraudstream.runtime.kafka.outputs import Outputs
from fraudstream.runtime.kafka.payloads import SCHEMA_VERSION, decision_payloads
from fraudstream.runtime.metrics import DecisionMetrics

__all__ = ["SCHEMA_VERSION", "Worker", "WorkerConfig", "producer_settings"]

log = structlog.get_logger("fraudstream.kafka")


def _partition_of(message: Message) -> int:
    """A consumed message's partition (the stubs allow None, which a consumed message never has)."""
    return cast(int, message.partition())


def _offset_of(message: Message) -> int:
    """A consumed message's offset (the stubs allow None, which a consumed message never has)."""
    return cast(int, message.offset())


@dataclass(frozen=True)
class WorkerConfig:
    brokers: str
    group: str = defaults.GROUP
    topic: str = defaults.TRANSACTIONS_TOPIC
    decisions_topic: str = defaults.DECISIONS_TOPIC
    alerts_topic: str = defaults.ALERTS_TOPIC
    dlq_topic: str = defaults.DLQ_TOPIC
    #: Fraud labels to learn from ({transaction_id, is_fraud, label_time?} or a list); None: none.
    labels_topic: str | None = defaults.LABELS_TOPIC
    #: Recent transactions per partition a label can still be matched to.
    label_index_size: int = 100_000
    #: Labels per partition waiting for their label time, at most.
    max_pending_labels: int = 100_000
    checkpoint_dir: Path = Path(defaults.CHECKPOINT_DIR)
    #: Where checkpoints go, by URL (a path, file://, postgresql://, s3://); None: ``checkpoint_dir``.
    checkpoint_url: str | None = None
    #: Endpoint of an S3-compatible store (MinIO, ...) for s3:// checkpoint URLs and registries.
    s3_endpoint_url: str | None = None
    #: Most messages scored together (see `defaults.BATCH_SIZE` for the default's reasons).
    batch_size: int = defaults.BATCH_SIZE
    max_wait_s: float = defaults.MAX_WAIT_S
    #: Checkpoint each partition this often at most; longer when checkpoints are slow (a large
    #: state): the interval stretches to 10x the last checkpoint's duration, so writing them takes
    #: at most ~10% of the worker's time.
    checkpoint_interval_s: float = defaults.CHECKPOINT_INTERVAL_S
    max_message_bytes: int = 64 * 1024
    card_key: bytes = b""
    session_timeout_ms: int = 10_000
    #: Output messages the producer may hold before `produce` pushes back (librdkafka's
    #: queue.buffering.max.messages): when the broker is slower than scoring, the worker waits.
    producer_queue_messages: int = 100_000
    #: Produce outputs in Kafka transactions under this id (keep it stable per worker: a restarted
    #: worker then aborts what its previous run left open). Readers with isolation.level
    #: read_committed see each decision once, replays included. None: no transactions.
    transactional_id: str | None = None
    #: The model to decide with: an artifact directory. None: the champion of ``models_dir``.
    model_path: Path | None = None
    #: A model registry (the API's ``{data_dir}/models``, on storage the workers share): its champion
    #: decides, and a newly promoted one is picked up within ``model_check_interval_s``. None, or a
    #: registry without a champion: the rules alone decide. A folder, or an ``s3://bucket/prefix`` URL.
    models_dir: Path | str | None = None
    model_check_interval_s: float = 30.0
    #: The rule set to decide with (YAML, as `fraudstream rules validate` reads it); None: the
    #: packaged default set.
    rules_path: Path | None = None
    #: Where the API announces rule sets and lists changed through it (control.py); they replace
    #: ``rules_path``'s from the next batch on. None: only ``rules_path``.
    control_topic: str | None = defaults.CONTROL_TOPIC
    #: librdkafka properties every client of the worker gets (SASL, TLS, client.id, ...): clients.py.
    client_properties: dict[str, str] = field(default_factory=dict)

    @classmethod
    def named_after(cls, brokers: str, topic: str, **settings: Any) -> WorkerConfig:
        """A worker whose input is ``topic``, its group ``g-{topic}``, and its outputs and labels topics
        named after it (``{topic}.decisions``, ``.alerts``, ``.dlq``, ``.labels``): independent
        pipelines side by side on one cluster, as the tests and benchmarks run them."""
        names = {
            "group": f"g-{topic}",
            "decisions_topic": f"{topic}.decisions",
            "alerts_topic": f"{topic}.alerts",
            "dlq_topic": f"{topic}.dlq",
            "labels_topic": f"{topic}.labels",
            "control_topic": f"{topic}.control",
        }
        return cls(brokers=brokers, topic=topic, **{**names, **settings})


@dataclass
class _Partition:
    engine: Engine
    next_offset: int
    labels: PartitionLabels
    dirty: bool = False
    last_checkpoint: float = field(default_factory=time.monotonic)
    #: In a transactional worker, offsets below this were already answered in a committed
    #: transaction: they are scored again to rebuild the state, but produce nothing.
    quiet_until: int = 0


def producer_settings(config: WorkerConfig) -> dict[str, Any]:
    """librdkafka settings of a worker's producer, but for its logger and delivery callback."""
    return client_settings(
        config.brokers,
        config.client_properties,
        **{
            "linger.ms": 5,
            "acks": "all",
            "queue.buffering.max.messages": config.producer_queue_messages,
            # Only failed deliveries call back: a message librdkafka gave up on must not be
            # checkpointed past (see Worker._checkpoint).
            "delivery.report.only.error": True,
            **({"transactional.id": config.transactional_id} if config.transactional_id else {}),
        },
    )


class Worker:
    """Consume → validate → score → produce, per partition, with checkpoints and safe commits."""

    def __init__(self, config: WorkerConfig, engine_config: EngineConfig | None = None) -> None:
        self.config = config
        self.engine_config = engine_config or EngineConfig()
        # Every partition's engine decides with the same rules, champion and challengers (in shadow)
        # as the API's engine would: the decide path is the embedded server's own.
        self.decider = Decider(
            self.engine_config,
            config.card_key,
            model_path=config.model_path,
            models_dir=config.models_dir,
            s3_endpoint_url=config.s3_endpoint_url,
        )
        if config.rules_path is not None:
            self.decider.set_rules(self.decider.parse_rules(config.rules_path.read_text(encoding="utf-8")))
        self.decider.load_models()
        self.control = (
            ControlReader(
                config.brokers,
                config.control_topic,
                config.group,
                self.decider.names,
                properties=config.client_properties,
            )
            if config.control_topic
            else None
        )
        self.model_checked_at = time.monotonic()
        # First-call work now rather than inside the first batch: the block decoder's and the output
        # messages' compiled kernels (~0.4 s), with one throwaway decision built into a message.
        decode_block([orjson.dumps({"transaction_id": "warm-up", "amount": 1.5})])
        decision_payloads(self.decider.warm(self.decider.champion, self.decider.challengers), [0], [0])
        log.info(
            "deciding with",
            rules_version=self.rules.version,
            model=self.model_version,
            challengers=self.decider.challenger_versions,
        )
        self.checkpoints = checkpoint_store(
            config.checkpoint_url or config.checkpoint_dir, s3_endpoint_url=config.s3_endpoint_url
        )
        self.partitions: dict[int, _Partition] = {}
        self.running = True
        self.consumer = Consumer(
            client_settings(
                config.brokers,
                config.client_properties,
                **{
                    "logger": client_logger(),
                    "group.id": config.group,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "session.timeout.ms": config.session_timeout_ms,
                    "heartbeat.interval.ms": max(500, config.session_timeout_ms // 6),
                    "max.poll.interval.ms": max(60_000, config.session_timeout_ms),
                },
            )
        )
        self.counts: dict[str, int] = defaultdict(int)
        self.outputs = Outputs(
            producer_settings(config),
            decisions_topic=config.decisions_topic,
            alerts_topic=config.alerts_topic,
            dlq_topic=config.dlq_topic,
            transactional=bool(config.transactional_id),
            counts=self.counts,
        )
        #: Set when a batch failed part-way: its partitions' engines may hold events whose outputs
        #: were not produced and whose offsets did not move, so nothing is checkpointed after it.
        self._failed = False
        self.last_batch_at = 0.0
        #: The Prometheus metrics the server has too; ops.py adds the worker's own (lag, checkpoints).
        self.metrics = DecisionMetrics()
        self.metrics.describe_build(
            lambda: {"model": self.model_version or "", "rules_version": str(self.rules.version)}
        )
        self._batch_started = 0.0
        #: Messages behind the partition's high watermark, per partition, after the last batch.
        self.lag: dict[int, int] = {}
        self.last_error_at: float | None = None
        #: How long the last round of checkpoints took (it stretches the interval between them).
        self.checkpoint_seconds = 0.0
        self.label_consumer: Consumer | None = None
        if config.labels_topic:
            # Assigned every labels partition by hand and commits nothing: the position that counts is
            # the one in each transactions partition's checkpoint. The group id is only a name.
            self.label_consumer = Consumer(
                client_settings(
                    config.brokers,
                    config.client_properties,
                    **{
                        "logger": client_logger(),
                        "group.id": f"{config.group}-labels",
                        "enable.auto.commit": False,
                        "auto.offset.reset": "earliest",
                    },
                )
            )
        #: Next offset the labels consumer delivers, per labels partition (empty until assigned).
        self.label_positions: dict[int, int] = {}
        #: Per labels partition, the offset below which this worker has dead-lettered bad labels.
        self._labels_dead_lettered: dict[int, int] = {}

    # --- partition ownership -----------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._restore(tp)
            log.info("partition assigned", partition=tp.partition, offset=tp.offset)
        consumer.assign(partitions)
        self._position_labels()

    def _restore(self, tp: TopicPartition) -> None:
        """The partition's engine and labels from its checkpoint (or fresh); ``tp.offset`` is set to
        where consuming resumes."""
        index, pending = self.config.label_index_size, self.config.max_pending_labels
        engine = self.decider.engine()
        labels = PartitionLabels(index_size=index, pending_size=pending)
        found = self.checkpoints.load(self.config.group, tp.topic, tp.partition)
        if found is not None:
            state, offset = found
            snapshot, labels = decode_partition_state(state, index_size=index, pending_size=pending)
            engine.restore(snapshot)
            tp.offset = offset
        else:
            offset = OFFSET_BEGINNING
            tp.offset = OFFSET_BEGINNING
        if self.control is not None:
            self.control.apply(engine)  # lists as announced since, not as checkpointed
        quiet_until = 0
        if self.config.transactional_id:
            # Committed with the outputs of a transaction, possibly after the last checkpoint.
            committed = self.consumer.committed([TopicPartition(tp.topic, tp.partition)], timeout=30)
            quiet_until = max(committed[0].offset, 0)
        self.partitions[tp.partition] = _Partition(engine, max(offset, 0), labels, quiet_until=quiet_until)

    def _position_labels(self) -> None:
        """Point the labels consumer at the earliest labels offset any held partition still needs;
        a partition restored from an older checkpoint moves it back."""
        if self.label_consumer is None or not self.partitions:
            return
        wanted = {
            p: min(state.labels.offsets.get(p, 0) for state in self.partitions.values())
            for p in self._label_partitions()
        }
        if self.label_positions and all(o >= self.label_positions.get(p, 0) for p, o in wanted.items()):
            return
        self.label_positions = {p: min(o, self.label_positions.get(p, o)) for p, o in wanted.items()}
        topic = self.config.labels_topic
        assert topic is not None
        self.label_consumer.assign(
            [
                TopicPartition(topic, p, o if o > 0 else OFFSET_BEGINNING)
                for p, o in self.label_positions.items()
            ]
        )
        log.info("labels positioned", topic=topic, offsets=self.label_positions)

    def _label_partitions(self) -> list[int]:
        assert self.label_consumer is not None
        assert self.config.labels_topic is not None
        topic = self.config.labels_topic
        metadata = self.label_consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            log.warning(
                "labels topic not found; labels are not applied until it exists and partitions are "
                "reassigned (create it with `fraudstream topics create`)",
                topic=topic,
            )
            return []
        return sorted(metadata.partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.outputs.flush()
        self._checkpoint([tp.partition for tp in partitions if tp.partition in self.partitions], force=True)
        for tp in partitions:
            self.partitions.pop(tp.partition, None)
        log.info("partitions revoked", partitions=[tp.partition for tp in partitions])

    # --- the loop ----------------------------------------------------------------------------

    def run(self, max_idle_s: float | None = None) -> None:
        """Consume until stopped (SIGTERM/SIGINT), or until idle for ``max_idle_s`` (tests)."""
        if self.config.transactional_id:
            self.outputs.init_transactions(lambda: self.running)
        if self.control is not None:
            self.control.catch_up()
            self._apply_control()
        self.consumer.subscribe([self.config.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        # What start-up built (libraries, compiled kernels, reference data, the gazetteer) lives as
        # long as the process: out of the cyclic collector's view, its collections stop walking it
        # (about a fifth of a batch's time in the worker's own work before).
        gc.freeze()
        idle_since = time.monotonic()
        seen_any = False
        try:
            while self.running:
                if self.control is not None and self.control.poll():
                    self._apply_control()
                self._read_labels()
                messages = self.consumer.consume(self.config.batch_size, self.config.max_wait_s)
                real = [m for m in messages if not self._is_error(m)]
                if real:
                    try:
                        self._process(real)
                    except BaseException:
                        self._failed = True
                        raise
                    idle_since = time.monotonic()
                    self.last_batch_at = time.perf_counter()
                    seen_any = True
                elif max_idle_s is not None:
                    # Joining the group takes a few seconds: before the first message, wait longer.
                    limit = max_idle_s if seen_any else max(max_idle_s, 30.0)
                    if time.monotonic() - idle_since > limit:
                        break
                self._checkpoint(list(self.partitions), force=False)
                self._refresh_model()
        finally:
            self.close()

    def _apply_control(self) -> None:
        """The rule set and lists announced by the API, for every engine from the next batch on."""
        assert self.control is not None
        if self.control.rules is not None:
            self.decider.set_rules(self.control.rules)
        for partition in self.partitions.values():
            self.control.apply(partition.engine)

    @property
    def rules(self) -> RuleSet:
        """The rule set deciding."""
        return self.decider.rules

    @property
    def model_version(self) -> str | None:
        """The version of the model deciding, or None when the rules alone decide."""
        return self.decider.champion_version

    def _refresh_model(self) -> None:
        """Decide with the registry's champion and challengers from the next batch on, once one is
        promoted or put in shadow.

        Events replayed after a restart are decided by the champion of that moment; each decision
        says which model made it (``model_version``) and carries its challengers' scores.
        """
        now = time.monotonic()
        if now - self.model_checked_at < self.config.model_check_interval_s:
            return
        self.model_checked_at = now
        try:
            self.decider.refresh_models()
        except (OSError, FraudstreamError) as exc:  # keep deciding with the models in hand
            log.error("new models not loaded", error=str(exc))

    def stop(self) -> None:
        self.running = False

    def close(self) -> None:
        """Finish: flush outputs, checkpoint every partition, commit, leave the group. After a batch
        failed part-way, only flush and leave (see `_checkpoint`)."""
        self.outputs.flush()
        self._checkpoint(list(self.partitions), force=True)
        self.consumer.close()
        if self.label_consumer is not None:
            self.label_consumer.close()
        if self.control is not None:
            self.control.close()

    def _is_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.code() != KafkaError._PARTITION_EOF:
            # Transient broker trouble: librdkafka retries with backoff; report unhealthy meanwhile.
            self.last_error_at = time.monotonic()
            log.warning("consumer error", error=str(error))
        return True

    def healthy(self) -> bool:
        """Unhealthy while the broker has reported errors in the last 30 seconds."""
        errors = [at for at in (self.last_error_at, self.outputs.last_error_at) if at is not None]
        return not errors or time.monotonic() - max(errors) > 30

    def _read_labels(self) -> None:
        """Queue the labels already fetched (no waiting) in every held partition that has not read them."""
        if self.label_consumer is None or not self.label_positions:
            return
        for message in self.label_consumer.consume(self.config.batch_size, 0):
            if not self._is_error(message):
                self._receive_label(message)

    def _receive_label(self, message: Message) -> None:
        partition, offset = message.partition(), message.offset()
        assert partition is not None
        assert offset is not None
        self.label_positions[partition] = offset + 1
        # The broker's timestamp stands in for a missing label_time: a replay reads the same one.
        _, received_at_ms = message.timestamp()
        rows = self._label_rows(message, received_at_ms if received_at_ms > 0 else int(time.time() * 1000))
        for state in self.partitions.values():
            if state.labels.receive(partition, offset, rows):
                state.dirty = True
        self.counts["labels"] += len(rows)

    def _label_rows(self, message: Message, received_at_ms: int) -> list[dict[str, Any]]:
        """The valid labels of a message; the message goes to the dead-letter topic if any is not."""
        value = message.value() or b""
        if len(value) > self.config.max_message_bytes:
            self._dead_letter_label(
                message, f"label message is {len(value)} bytes; at most {self.config.max_message_bytes}"
            )
            return []
        try:
            body = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            self._dead_letter_label(message, f"label is not JSON: {exc}")
            return []
        records = body if isinstance(body, list) else [body]
        good, bad = self.decider.validate_labels(records, received_at_ms=received_at_ms)
        if bad:
            errors = [{"index": row.index, **e.as_dict()} for row in bad for e in row.errors]
            self._dead_letter_label(message, "invalid label", errors)
        return good

    def _dead_letter_label(
        self, message: Message, reason: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        """Dead-letter a label message once per worker, though a repositioned consumer reads it again."""
        partition, offset = message.partition(), message.offset()
        assert partition is not None
        assert offset is not None
        if offset < self._labels_dead_lettered.get(partition, 0):
            return
        self._labels_dead_lettered[partition] = offset + 1
        self._dead_letter(message, reason, errors)

    def _process(self, messages: list[Message]) -> None:
        self._batch_started = time.perf_counter()
        partitions = self._score_messages(messages)
        self.metrics.record_group_commit(time.perf_counter() - self._batch_started)
        # The first batch a worker scores pays for first-call work its warm-up cannot reach (restored
        # state, the first partitions' engines): its latencies stay out of the histogram.
        self.metrics.warmed_up()
        for partition in partitions:
            try:
                _, high = self.consumer.get_watermark_offsets(
                    TopicPartition(self.config.topic, partition), timeout=1, cached=True
                )
                self.lag[partition] = max(0, high - self.partitions[partition].next_offset)
            except (KafkaException, KeyError):
                self.lag.pop(partition, None)

    def _score_messages(self, messages: list[Message]) -> list[int]:
        """Score each partition's messages with its engine; return the partitions seen."""
        by_partition: dict[int, list[Message]] = defaultdict(list)
        for message in messages:
            by_partition[_partition_of(message)].append(message)
        for partition, batch in by_partition.items():
            state = self.partitions.get(partition)
            if state is None:  # revoked while the batch was in flight
                continue
            self._score_partition(partition, state, batch)
            state.next_offset = _offset_of(batch[-1]) + 1
            state.dirty = True
        return list(by_partition)

    def _score_partition(self, partition: int, state: _Partition, batch: list[Message]) -> None:
        sources = batch
        values = [message.value() or b"" for message in batch]
        limit = self.config.max_message_bytes
        if max(map(len, values)) > limit:  # rare: only then a Python step per message
            sources, values, read = [], [], values
            for message, value in zip(batch, read):
                if len(value) > limit:
                    self._dead_letter(message, f"message is {len(value)} bytes; at most {limit}")
                    continue
                sources.append(message)
                values.append(value)
        received = int(time.time() * 1000)
        table = decode_block(values)
        if table is not None:
            self.counts["block_decoded"] += len(values)
            result = self.decider.validate_table(table, received_at_ms=received)
        else:
            records: list[Any] = []
            decoded: list[Message] = []
            for message, value in zip(sources, values):
                try:
                    records.append(orjson.loads(value))
                except orjson.JSONDecodeError as exc:
                    self._dead_letter(message, f"not JSON: {exc}")
                    continue
                decoded.append(message)
            sources = decoded
            if not records:
                return
            result = self.decider.validate(records, received_at_ms=received)
        for error in result.errors:
            self._dead_letter(
                sources[error.index], "invalid transaction", [e.as_dict() for e in error.errors]
            )
        self.metrics.invalid.inc(len(result.errors))
        if not len(result.batch):
            return
        # Labels due before the batch's earliest event: none of its scores sees a label from its future.
        due = state.labels.due(int(result.batch.timestamp_ms.min()))
        if due is not None:
            state.engine.apply_labels(due)
            self.counts["labels_applied"] += len(due)
        decisions = self.decider.decide(state.engine, result.batch)
        state.labels.remember(result.batch)
        self._produce(decisions, partition, [_offset_of(sources[i]) for i in result.rows.tolist()])
        latency = np.full(len(decisions.decisions), time.perf_counter() - self._batch_started)
        self.metrics.record(
            decisions.decisions,
            latency,
            decisions.score,
            decisions.rule_hits.counts(),
            int(decisions.is_alert.sum()),
        )

    def _produce(self, decisions: DecisionBatch, partition: int, offsets: list[int]) -> None:
        """Every decision (and alert) of one partition's batch; ``offsets`` are the input messages'."""
        self.outputs.produce(decisions, partition, offsets, self._quiet_until(partition))

    def _quiet_until(self, partition: int) -> int:
        state = self.partitions.get(partition)
        return state.quiet_until if state is not None else 0

    def _rewind(self) -> None:
        """Outputs were lost after librdkafka gave up on them: go back to every held partition's last
        checkpoint (state and offset) and consume from there again, so they are produced again
        (identical payloads; consumers upsert by transaction id)."""
        held = [TopicPartition(self.config.topic, p) for p in sorted(self.partitions)]
        for tp in held:
            self._restore(tp)
            self.consumer.seek(tp)
        self._position_labels()
        self.outputs.undelivered = 0
        self.counts["rewinds"] += 1
        log.warning("rewound to the last checkpoints after undelivered outputs", partitions=len(held))

    def _dead_letter(self, message: Message, reason: str, errors: list[dict[str, Any]] | None = None) -> None:
        if message.topic() == self.config.topic and (message.offset() or 0) < self._quiet_until(
            message.partition() or 0
        ):
            return  # dead-lettered in a committed transaction already
        self.outputs.dead_letter(message, reason, errors)

    def _checkpoint(self, partitions: list[int], *, force: bool) -> None:
        """Checkpoint (state + next offset) after outputs are flushed, then commit that offset.

        Never after a batch failed part-way (``_failed``): its partitions' engines may hold events
        whose offsets were not passed, and the last checkpoint must stay in force for the next owner
        to replay from; closing, and the revocation closing triggers, come here too."""
        if self._failed:
            return
        if self.config.transactional_id:
            self._commit_transaction(force=force)
            return
        now = time.monotonic()
        due = [
            p
            for p in partitions
            if self.partitions[p].dirty
            and (force or now - self.partitions[p].last_checkpoint >= self.checkpoint_interval_s)
        ]
        if not due:
            return
        remaining = self.outputs.flush(30)
        if remaining:
            raise KafkaException(f"{remaining} output messages not delivered; not checkpointing past them")
        if self.outputs.undelivered:
            self._rewind()
            return
        self._save_checkpoints(due, now)
        offsets = [TopicPartition(self.config.topic, p, self.partitions[p].next_offset) for p in due]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # the checkpoint is what counts; the commit only shows lag
            log.warning("offset commit failed", error=str(exc))

    def _commit_transaction(self, *, force: bool) -> None:
        """A transactional checkpoint: the outputs since the last one and the next offset of every
        partition scored since then are committed together in one Kafka transaction; then each of
        those partitions' state is checkpointed. A checkpoint therefore never runs ahead of the
        committed offset; when it lags behind it (a crash between the two), the events in between
        are scored again on restore without producing anything (``quiet_until``)."""
        now = time.monotonic()
        dirty = [p for p, state in self.partitions.items() if state.dirty]
        interval = self.checkpoint_interval_s
        if not (dirty or self.outputs.transaction_open):
            return
        if not force and all(now - self.partitions[p].last_checkpoint < interval for p in dirty):
            return
        offsets = [TopicPartition(self.config.topic, p, self.partitions[p].next_offset) for p in dirty]
        if not self.outputs.commit_transaction(offsets, self.consumer):
            self._rewind()
            return
        self._save_checkpoints(dirty, now)

    @property
    def checkpoint_interval_s(self) -> float:
        """The configured interval, or 10x the last checkpoint's duration when that is longer."""
        return max(self.config.checkpoint_interval_s, 10 * self.checkpoint_seconds)

    def _save_checkpoints(self, partitions: list[int], now: float) -> None:
        """Each partition's state with its next offset, to the checkpoint store."""
        started = time.perf_counter()
        for p in partitions:
            state = self.partitions[p]
            snapshot = encode_partition_state(state.engine.snapshot_parts(), state.labels)
            self.checkpoints.save(self.config.group, self.config.topic, p, snapshot, state.next_offset)
            state.dirty = False
            state.last_checkpoint = now
        self.checkpoint_seconds = time.perf_counter() - started
