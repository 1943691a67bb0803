"""The decide path every runtime shares: rule set, champion, challengers, warm-up, validation, scoring.

A runtime builds one `Decider` and asks it for engines (one for the embedded server, one per
partition for a Kafka worker); the decider keeps each engine it scores with on the rule set and
models in force, so both runtimes decide alike, challengers in shadow included. What stays in the
runtimes is how events arrive and where decisions go: group commit, snapshots and replay in the
embedded server; offsets, checkpoints and output messages in a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import structlog

from fraudstream.core.batch import TransactionBatch
from fraudstream.core.engine import DecisionBatch, Engine, EngineConfig, default_names, default_ruleset
from fraudstream.core.models import Model
from fraudstream.core.rules import ListStore, RuleSet, load_ruleset
from fraudstream.core.schema import RowError, ValidationResult, Validator
from fraudstream.ml.registry import Registry, champion_model
from fraudstream.reference import load_reference

__all__ = ["Decider", "Outcome"]

log = structlog.get_logger("fraudstream.decider")


@dataclass
class Outcome:
    """What happened to one submitted transaction."""

    status: str  # "scored" | "duplicate" | "conflict" | "invalid" | "accepted" (Kafka mode)
    transaction_id: str | None
    decision: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


class Decider:
    """What decides, for every engine of a runtime: the rule set, the champion, the challengers that
    score in shadow, and the validator that turns input into batches.

    Models come from ``model_path`` (one pinned artifact, no challengers) or else the registry in
    ``models_dir`` (a folder or an ``s3://`` URL, at ``s3_endpoint_url`` if given): its champion, and
    its challengers in shadow. Neither: the rules alone decide.

    >>> from fraudstream.core.engine import EngineConfig
    >>> decider = Decider(EngineConfig(), b"card-key")
    >>> result = decider.validate([{"transaction_id": "t1", "user_id": "u1", "amount": 50}], received_at_ms=0)
    >>> decider.decide(decider.engine(), result.batch).decisions
    ['approve']
    """

    def __init__(
        self,
        config: EngineConfig,
        card_key: bytes,
        *,
        rules: RuleSet | None = None,
        model_path: Path | None = None,
        models_dir: Path | str | None = None,
        s3_endpoint_url: str | None = None,
    ) -> None:
        self.config = config
        self.names = default_names(config.features)
        self.validator = Validator(load_reference(), card_key)
        self.rules = rules if rules is not None else default_ruleset(config.features)
        self.model_path = model_path
        self.models_dir = models_dir
        self.s3_endpoint_url = s3_endpoint_url
        self.champion: Model | None = None
        self.challengers: tuple[Model, ...] = ()
        # Validated once: the gazetteer's index and the card kernels load here, not in the first batch.
        self._sample = self.validator.warm_up()

    # --- rules -------------------------------------------------------------------------------

    def parse_rules(self, text: str) -> RuleSet:
        """A rule set from YAML over this decider's features and lists; RuleError if it does not load."""
        return load_ruleset(text, self.names)

    def set_rules(self, rules: RuleSet) -> None:
        """Decide with ``rules`` from the next batch of every engine on."""
        self.rules = rules

    # --- models ------------------------------------------------------------------------------

    @property
    def champion_version(self) -> str | None:
        """The version of the model deciding, or None when the rules alone decide."""
        return self.champion.metadata.version if self.champion is not None else None

    @property
    def challenger_versions(self) -> list[str]:
        return [c.metadata.version for c in self.challengers]

    def load_models(self) -> None:
        """The champion (``model_path``, else the registry's) and the registry's challengers, each
        compiled (`warm`) before it decides: at start, where a model that does not load stops it."""
        champion = champion_model(
            self.model_path,
            self.models_dir,
            self.config.features.feature_names,
            endpoint_url=self.s3_endpoint_url,
        )
        self.warm(champion)
        self.champion = champion
        self.refresh_models()

    def refresh_models(self) -> bool:
        """Pick up a newly promoted champion and the registry's current challengers; True if either
        changed. A model is loaded and compiled before it replaces the one in force, so one that
        does not load (ModelError, OSError) leaves the models in hand deciding."""
        if self.model_path is not None or self.models_dir is None:
            return False
        registry = Registry(self.models_dir, self.s3_endpoint_url)
        roles = registry.roles()
        features = self.config.features.feature_names
        champion = roles.get("champion")
        changed = False
        if champion is not None and champion != self.champion_version:
            model = registry.load(champion, features)
            self.warm(model)  # compiled here, not in the first batch that decides with it
            self.champion = model
            changed = True
            log.info("champion model loaded", version=champion)
        wanted = [v for v in roles.get("challengers", []) if v != champion]
        if wanted != self.challenger_versions:
            challengers = [registry.load(v, features) for v in wanted]
            self.warm(self.champion, challengers)
            self.challengers = tuple(challengers)
            changed = True
            log.info("challengers scoring in shadow", versions=wanted)
        return changed

    def warm(self, champion: Model | None, challengers: Sequence[Model] = ()) -> DecisionBatch:
        """Compile what a decision runs (the numba kernels of the features, the rules, the models and
        the champion's reasons) on a throwaway engine, so that no batch waits seconds for it: on a
        first start the compiled code is not cached yet, and the first requests of a demo waited
        ~3.5 s. A model the engine refuses (its features, its label delay) raises ModelError here,
        before it decides anything. Returns the throwaway decision, for a runtime to warm its own
        output path with."""
        engine = Engine(self.config, rules=self.rules, model=champion, challengers=challengers)
        decisions = engine.score(self._sample)
        decisions.to_records()
        if champion is not None:
            champion.contributions(decisions.features.select(champion.feature_names))
        return decisions

    # --- engines -----------------------------------------------------------------------------

    def engine(self, lists: ListStore | None = None) -> Engine:
        """A new engine with an empty state, deciding with the rule set and models in force;
        ``lists``: the allow/block lists to keep (a rebuilt engine's), else the rule set's own."""
        return Engine(
            self.config, rules=self.rules, model=self.champion, challengers=self.challengers, lists=lists
        )

    def keep_current(self, engine: Engine) -> None:
        """Bring ``engine`` onto the rule set and models in force (a no-op when it is)."""
        if engine.rules is not self.rules:
            engine.set_rules(self.rules)
        if engine.model is not self.champion:
            engine.set_model(self.champion)
        mine, theirs = self.challengers, engine.challengers
        if len(mine) != len(theirs) or any(a is not b for a, b in zip(mine, theirs)):
            engine.set_challengers(mine)

    # --- validation and scoring --------------------------------------------------------------

    def validate(self, records: Sequence[Any], *, received_at_ms: int) -> ValidationResult:
        """Transactions as JSON-like records → a batch to decide, and the rows refused, with why."""
        return self.validator.records(records, received_at_ms=received_at_ms)

    def validate_table(self, table: pa.Table, *, received_at_ms: int) -> ValidationResult:
        """`validate` for a columnar table (a block of decoded messages)."""
        return self.validator.table(table, received_at_ms=received_at_ms)

    def validate_labels(
        self, records: Sequence[Any], *, received_at_ms: int
    ) -> tuple[list[dict[str, Any]], list[RowError]]:
        """Fraud labels ``{transaction_id, is_fraud, label_time?}``: the valid rows, the refused ones."""
        return self.validator.labels(records, received_at_ms=received_at_ms)

    def decide(
        self, engine: Engine, batch: TransactionBatch, seen_ms: Sequence[int] | None = None
    ) -> DecisionBatch:
        """Decide a batch with ``engine``'s state and the rule set and models in force (challengers
        in shadow: ``DecisionBatch.shadow_probability``); the state then includes the batch.
        ``seen_ms``: when each transaction reached the runtime (see `Engine.score`)."""
        self.keep_current(engine)
        return engine.score(batch, seen_ms)

    def preview(self, engine: Engine, batch: TransactionBatch) -> DecisionBatch:
        """What `decide` would give, without ``engine`` remembering the batch (a what-if check)."""
        self.keep_current(engine)
        return engine.preview(batch)
