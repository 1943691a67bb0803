"""The front door of the core: `Engine.score(batch) -> DecisionBatch`, the same in every runtime."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from fraudstream.core.batch import STRING_FIELDS, LabelBatch, TransactionBatch
from fraudstream.core.explain import describe_feature
from fraudstream.core.features import FeatureConfig, FeatureMatrix, FeatureState, parse_delay_ms
from fraudstream.core.models import Model
from fraudstream.core.policy import ACTION_DECISION, APPROVE, DECISIONS, PolicyConfig, decide
from fraudstream.core.rules import ACTIONS, Kind, ListStore, RuleHits, RuleSet, load_ruleset
from fraudstream.core.snoozes import SnoozeMatch, SnoozeTable
from fraudstream.errors import ModelError, StateError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["KEY_FEATURES", "RECORD_FIELDS", "DecisionBatch", "Engine", "EngineConfig", "Reason"]

#: Feature values stored with every decision, whatever the model uses.
KEY_FEATURES: Final = (
    "amount",
    "user.count_30s",
    "user.count_24h",
    "user.amount_ratio_30d",
    "geo.speed_kmh",
)

#: The fields of a decision record (``DecisionBatch.to_records``), the columns of ``to_pandas``.
RECORD_FIELDS: Final = (
    "transaction_id",
    "decision",
    "score",
    "probability",
    "is_alert",
    "reasons",
    "rules",
    "shadow_rules",
    "snoozes",
    "late",
    "model_version",
    "ruleset_version",
)

_SNAPSHOT_MAGIC: Final = b"FSENGINE"
_SNAPSHOT_VERSION: Final = 1
_HEADER = struct.Struct("<8sHI")

#: Per rule action index (``ACTIONS``), the decision code it asks for, or -1 for none.
_ACTION_CODES: Final = np.array(
    [-1 if ACTION_DECISION[a] is None else ACTION_DECISION[a] for a in ACTIONS],
    dtype=np.int8,
)


@dataclass(frozen=True)
class EngineConfig:
    """Everything that shapes a decision besides the rules and the model."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)


@dataclass(frozen=True)
class Reason:
    """Why a transaction got its score: a rule that hit or a feature the model leaned on.

    ``contribution`` is in score points (0-100): a rule's weight (the score it gives alone), or the
    points a feature added to the model's share of the score (``DecisionBatch.contributions``).
    """

    code: str
    text: str
    contribution: float
    kind: str  # "rule" or "model"

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "text": self.text,
            "contribution": round(self.contribution, 4),
            "kind": self.kind,
        }


def default_names(config: FeatureConfig) -> dict[str, Kind]:
    """The names the rule language knows for this feature configuration, with their kinds."""
    names: dict[str, Kind] = dict.fromkeys(config.feature_names, "number")
    names.update(dict.fromkeys(STRING_FIELDS, "string"))
    names.pop("attributes", None)
    return names


def default_ruleset(config: FeatureConfig | None = None) -> RuleSet:
    """The rule set shipped with fraudstream (package data ``core/rules/default.yaml``)."""
    text = resources.files("fraudstream.core.rules").joinpath("default.yaml").read_text(encoding="utf-8")
    return load_ruleset(text, default_names(config or FeatureConfig()))


class _Columns:
    """What the rule language reads: feature columns by name, ``attributes.NAME`` from the batch's
    extra fields (as the rule set types them), else the batch's string columns."""

    def __init__(self, batch: TransactionBatch, features: FeatureMatrix, attributes: dict[str, str]) -> None:
        self._batch = batch
        self._features = features
        self._index = features.index
        self._attributes = attributes

    def __len__(self) -> int:
        return len(self._batch)

    def column(self, name: str) -> npt.NDArray[np.float32] | pa.Array:
        position = self._index.get(name)
        if position is not None:
            return self._features.values[:, position]
        if name.startswith(_ATTRIBUTE_PREFIX):
            attribute = name[len(_ATTRIBUTE_PREFIX) :]
            kind = self._attributes[attribute]
            # Every attribute the rule set reads, in one scan of the batch (cached by the batch).
            read = self._batch.attribute_values(self._attributes.items())  # type: ignore[arg-type]
            found: npt.NDArray[np.float32] | pa.Array = read[attribute, kind]  # type: ignore[index]
            return found
        return self._batch.strings(name)


_ATTRIBUTE_PREFIX: Final = "attributes."


@dataclass
class DecisionBatch:
    """Decisions for a batch, as arrays; reasons and records are built only when asked for."""

    batch: TransactionBatch
    transaction_id: pa.StringArray
    score: npt.NDArray[np.int16]
    probability: npt.NDArray[np.float32]
    decision_code: npt.NDArray[np.uint8]
    is_alert: npt.NDArray[np.bool_]
    features: FeatureMatrix
    rule_hits: RuleHits
    rules: RuleSet
    model_version: str | None
    model_features: tuple[str, ...]
    #: Rows whose reasons include model contributions: the ones not approved.
    explained_rows: npt.NDArray[np.int64]
    #: The model and its input rows for ``explained_rows``; contributions are computed from them on
    #: first use, so a caller that needs only decisions (a backtest, a replay) never pays for them.
    model: Model | None
    explained_matrix: npt.NDArray[np.float32]
    #: Challenger model version → its probabilities for every row (scored in shadow, never acting).
    shadow_probability: dict[str, npt.NDArray[np.float32]]
    max_reasons: int = 5
    _contributions: npt.NDArray[np.float64] | None = None
    #: The snoozes that could apply to this batch's rows (None: none), and where each applied.
    snooze_match: SnoozeMatch | None = None
    snooze_applied: npt.NDArray[np.bool_] | None = None
    #: (rules, rows): hits silenced by a snooze of their rule (they act no more; recorded as shadow).
    snoozed: npt.NDArray[np.bool_] | None = None

    @property
    def contributions(self) -> npt.NDArray[np.float64]:
        """Per-feature contributions of the explained rows in score points (``Model.score_points``:
        on the score's 0-100 scale, like a rule's weight; a row's positive ones together at most
        100 x its probability), computed once. The model's own units (log-odds for LightGBM) are
        ``model.contributions(explained_matrix)``.

        For LightGBM they come from path attributions of the compiled forest (about a prediction's
        cost; exact TreeSHAP, ~270x a prediction, with ``explainer="shap"``); other models' own
        methods can cost far more, which is why only non-approved rows have them.
        """
        if self._contributions is None:
            if self.model is None or not len(self.explained_rows):
                self._contributions = np.zeros((len(self.explained_rows), len(self.model_features)))
            else:
                self._contributions = self.model.score_points(self.explained_matrix)
        return self._contributions

    def __len__(self) -> int:
        return int(self.score.shape[0])

    @property
    def decisions(self) -> list[str]:
        return [DECISIONS[c] for c in self.decision_code.tolist()]

    def rules_hit(self, row: int, *, shadow: bool = False) -> list[str]:
        """Codes of the rules that hit this row: acting ones, or with ``shadow=True`` the shadow ones."""
        h = self.rule_hits
        snoozed = self.snoozed[:, row] if self.snoozed is not None else False
        mask = h.hits[:, row] & ((h.shadow | snoozed) if shadow else ~(h.shadow | snoozed))
        return [h.codes[i] for i in np.flatnonzero(mask)]

    def snoozed_rows(self) -> npt.NDArray[np.int64]:
        """The rows where a snooze applied (their reasons and records say which)."""
        if self.snooze_applied is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.snooze_applied.any(axis=0))

    def snoozes_applied(self, row: int) -> list[str]:
        """The ids of the snoozes that applied to this row."""
        if self.snooze_applied is None or self.snooze_match is None:
            return []
        return [self.snooze_match.snoozes[k].id for k in np.flatnonzero(self.snooze_applied[:, row])]

    def reasons(self, row: int) -> list[Reason]:
        """The reasons of one row, most important first: acting rules by severity, then the model."""
        return self.reasons_rows([row])[0]

    def reasons_rows(self, rows: Sequence[int]) -> list[list[Reason]]:
        """``reasons`` of many rows, with the array work done once for all of them (a burst of
        flagged rows then costs little more per row than the sentences themselves)."""
        chosen = np.asarray(rows, dtype=np.int64)
        h = self.rule_hits
        # Acting rules by severity (an allow counts as the most severe), then weight: one order for
        # every row, each row keeping the rules it hit (a stable sort keeps ties in rule order).
        acting = np.flatnonzero(~h.shadow)
        severity = _ACTION_CODES[h.actions[acting]].astype(np.int16)
        severity = np.where(severity == APPROVE, 10, severity)
        order = acting[np.lexsort((-h.weights[acting], -severity))]
        hits = h.hits[:, chosen] if self.snoozed is None else h.hits[:, chosen] & ~self.snoozed[:, chosen]
        hits = hits[order]
        hit_any = hits.any(axis=1)  # rules no chosen row hit are left out
        order, hits = order[hit_any], hits[hit_any]
        codes = [h.codes[i] for i in order.tolist()]
        weights = h.weights[order].tolist()
        names = {code: self.rules.description_names(code) for code in codes}
        columns = self._columns(chosen, {n for wanted in names.values() for n in wanted})
        found: list[list[Reason]] = []
        for position, hit in enumerate(hits.T.tolist()):
            reasons = []
            for code, weight, on in zip(codes, weights, hit):
                if on:
                    filled = {name: columns[name][position] for name in names[code] if name in columns}
                    reasons.append(Reason(code, self.rules.describe(code, filled), weight, "rule"))
            found.append(reasons)
        positions, contributions, values, ranking = self._explained(chosen)
        for k, position in enumerate(positions):
            reasons = found[position]
            limit = max(self.max_reasons, len(reasons))
            for j in ranking[k].tolist():
                contribution = float(contributions[k, j])
                if contribution <= 0 or len(reasons) == limit:
                    break
                value = float(values[k, j])
                if value != value:
                    continue  # "this feature is unknown" helps nobody reading an alert
                name = self.model_features[j]
                reasons.append(Reason(f"model:{name}", describe_feature(name, value), contribution, "model"))
        if self.snooze_applied is not None and self.snooze_match is not None:
            applied = self.snooze_applied[:, chosen]
            for k, position in zip(*np.nonzero(applied)):
                snooze = self.snooze_match.snoozes[k]
                found[position].append(Reason(f"snooze:{snooze.id}", snooze.describe(), 0.0, "snooze"))
        return found

    def _columns(self, rows: npt.NDArray[np.int64], names: Iterable[str]) -> dict[str, list[object]]:
        """The values of ``names`` (features, numeric or string fields) in ``rows``, by name."""
        index = self.features.index
        columns: dict[str, list[object]] = {}
        for name in names:
            if name in index:
                columns[name] = self.features.values[rows, index[name]].astype(np.float64).tolist()
            elif name in STRING_FIELDS:
                columns[name] = self.batch.strings(name).take(pa.array(rows)).to_pylist()
        return columns

    def _explained(
        self, rows: npt.NDArray[np.int64]
    ) -> tuple[list[int], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Which of ``rows`` the model explains (their positions in ``rows``), with their model
        contributions and feature values (in the model's feature order) and, per row, the feature
        positions ranked by contribution, largest first."""
        explained = self.explained_rows  # in row order, as the engine picks them
        width = len(self.model_features)
        if not len(explained) or not width:
            empty = np.zeros((0, width))
            return [], empty, empty, np.zeros((0, width), dtype=np.int64)
        where = np.minimum(np.searchsorted(explained, rows), len(explained) - 1)
        mine = np.flatnonzero(explained[where] == rows)
        contributions = self.contributions[where[mine]]
        values = self.explained_matrix[where[mine]].astype(np.float64)
        return mine.tolist(), contributions, values, np.argsort(-contributions, axis=1)

    def key_features(self, row: int) -> dict[str, float | None]:
        """The feature values that mattered for this row: a few basics and the model's top features."""
        return self.key_feature_rows([row])[0]

    def key_feature_rows(self, rows: Sequence[int] | None = None) -> list[dict[str, float | None]]:
        """``key_features`` for many rows at once (all rows by default), without per-row array work."""
        index = self.features.index
        chosen = list(range(len(self))) if rows is None else list(rows)
        basics: list[str] = [n for n in KEY_FEATURES if n in index]
        picked = self.features.values[np.asarray(chosen, dtype=np.int64)][:, [index[n] for n in basics]]
        # Widened before rounding: 40.1763 rounded as a float32 would read 40.176300048828125.
        rounded = np.round(picked.astype(np.float64), 4)
        # Unknown values (NaN) become None for JSON, in one array operation rather than per value.
        cells = rounded.astype(object)
        cells[np.isnan(rounded)] = None
        result: list[dict[str, float | None]] = [dict(zip(basics, row)) for row in cells.tolist()]
        positions, _, values, ranking = self._explained(np.asarray(chosen, dtype=np.int64))
        for k, position in enumerate(positions):
            shown = 0
            for j in ranking[k].tolist():
                if shown == self.max_reasons:
                    break
                value = float(values[k, j])
                if value != value:
                    continue  # as in the reasons: "this feature is unknown" tells a reader nothing
                shown += 1
                result[position][self.model_features[j]] = round(value, 4)
        return result

    def to_records(self) -> list[dict[str, object]]:
        """One JSON-ready dict per row (the edge's output; builds Python objects per row).

        Most rows hit no rule and are not explained: they skip the per-row reason work.
        """
        ids = self.transaction_id.to_pylist()
        decisions = [DECISIONS[c] for c in self.decision_code.tolist()]
        scores = self.score.tolist()
        probabilities = np.round(self.probability.astype(np.float64), 6)
        alerts = self.is_alert.tolist()
        late = self.features.late.tolist()
        needs_reasons: npt.NDArray[np.bool_] = np.asarray(self.rule_hits.hits.any(axis=0), dtype=np.bool_)
        needs_reasons[self.explained_rows] = True
        needs_reasons[self.snoozed_rows()] = True
        busy_rows = np.flatnonzero(needs_reasons).tolist()
        reasons = dict(zip(busy_rows, self.reasons_rows(busy_rows)))
        records = []
        for row, transaction_id in enumerate(ids):
            probability = float(probabilities[row])
            busy = bool(needs_reasons[row])
            records.append(
                {
                    "transaction_id": transaction_id,
                    "decision": decisions[row],
                    "score": scores[row],
                    "probability": None if probability != probability else probability,
                    "is_alert": alerts[row],
                    "reasons": [r.as_dict() for r in reasons[row]] if busy else [],
                    "rules": self.rules_hit(row) if busy else [],
                    "shadow_rules": self.rules_hit(row, shadow=True) if busy else [],
                    "snoozes": self.snoozes_applied(row) if busy else [],
                    "late": late[row],
                    "model_version": self.model_version,
                    "ruleset_version": self.rules.version,
                }
            )
        return records

    def to_pandas(self) -> pd.DataFrame:
        """The records of ``to_records`` as a pandas DataFrame, one row per transaction in batch
        order: ``score`` as integers, ``probability`` as floats (NaN without a model), ``reasons``
        as lists of ``{code, text, contribution, kind}`` dicts.

        >>> batch = TransactionBatch.from_pydict({"transaction_id": ["t1", "t2"], "timestamp": [0, 60_000],
        ...     "user_id": ["u1", "u1"], "amount": [50.0, 5000.0], "currency": ["USD", "USD"]})
        >>> frame = Engine().score(batch).to_pandas()
        >>> frame[["transaction_id", "decision", "score"]]
          transaction_id decision  score
        0             t1  approve      0
        1             t2   review     60
        >>> frame.loc[1, "reasons"][0]["code"], bool(frame["probability"].isna().all())
        ('amount_spike', True)
        """
        import pandas as pd

        frame = pd.DataFrame(self.to_records(), columns=list(RECORD_FIELDS))
        # Built from records, an empty batch would have object columns, and probabilities that are
        # all None (rules alone) would stay None rather than NaN.
        return frame.astype({"score": "int64", "probability": "float64", "is_alert": "bool", "late": "bool"})


class Engine:
    """Scores batches of transactions with feature state, rules, a champion model and a policy.

    >>> engine = Engine()
    >>> batch = TransactionBatch.from_pydict({"transaction_id": ["t1", "t2"], "timestamp": [0, 60_000],
    ...     "user_id": ["u1", "u1"], "amount": [50.0, 5000.0], "currency": ["USD", "USD"]})
    >>> decisions = engine.score(batch)
    >>> decisions.decisions, "amount_spike" in decisions.rules_hit(1)
    (['approve', 'review'], True)
    """

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        rules: RuleSet | None = None,
        model: Model | None = None,
        challengers: Sequence[Model] = (),
        lists: ListStore | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.state = FeatureState(self.config.features)
        self.rules = rules if rules is not None else default_ruleset(self.config.features)
        self.lists = lists if lists is not None else ListStore.from_ruleset(self.rules)
        #: The snoozes in force (``set_snoozes``); they live with the runtime, not in snapshots.
        self.snoozes = SnoozeTable()
        self.model: Model | None = None
        self.challengers: tuple[Model, ...] = ()
        self.set_model(model)
        self.set_challengers(challengers)
        self._alert_codes = self.config.policy.alert_codes()

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.config.features.feature_names

    def _check_model(self, model: Model) -> None:
        missing = [n for n in model.feature_names if n not in self.feature_names]
        declared = model.metadata.params.get("declared_features")
        if missing and isinstance(declared, list) and set(missing) & {d.get("feature") for d in declared}:
            lacking = [d for d in declared if d.get("feature") in missing]
            raise ModelError(
                f"model {model.metadata.version} ({model.metadata.kind}) was trained with declared features "
                f"this engine's configuration lacks: {[d['feature'] for d in lacking]}; declare them "
                f"in the file FRAUDSTREAM_FEATURES_PATH names, as the model card lists them "
                f"({[{k: v for k, v in d.items() if k != 'feature'} for d in lacking]}), or retrain"
            )
        if missing:
            raise ModelError(
                f"model {model.metadata.version} ({model.metadata.kind}) needs features this engine does not "
                f"compute: {missing[:8]}{'...' if len(missing) > 8 else ''}; retrain it with this feature "
                "configuration or change the engine's feature configuration"
            )
        trained = model.metadata.params.get("label_delay")
        mine = self.config.features.label_delay
        if trained is not None and parse_delay_ms(str(trained)) != parse_delay_ms(mine):
            raise ModelError(
                f"model {model.metadata.version} was trained with label windows ending {trained} back "
                f"(label delay) but this engine's end {mine} back, so its fraud-rate features would mean "
                f"something else here: set FRAUDSTREAM_LABEL_DELAY={trained}, or retrain with "
                f"--label-delay {mine}"
            )

    def set_model(self, model: Model | None) -> None:
        """Make ``model`` the champion (``None``: rules only); checked against the feature list first."""
        if model is not None:
            self._check_model(model)
        self.model = model

    def set_challengers(self, models: Sequence[Model]) -> None:
        """Models scored in shadow next to the champion; their scores are recorded, never acted on."""
        for model in models:
            self._check_model(model)
        self.challengers = tuple(models)

    def set_rules(self, rules: RuleSet) -> None:
        """Swap the rule set at once; lists it declares that are new start with their YAML values."""
        self.lists.declare_from(rules)
        self.rules = rules

    def update_list(
        self, name: str, values: Iterable[str], expiries: Mapping[str, int] | None = None
    ) -> None:
        """Replace the contents of a named allow/block list (``expiries``: item → ms, for items that
        expire); rules see it from the next batch on."""
        self.lists.replace(name, list(values), expiries)

    def set_snoozes(self, snoozes: SnoozeTable) -> None:
        """Decide with these snoozes from the next batch on."""
        self.snoozes = snoozes

    def score(self, batch: TransactionBatch, seen_ms: npt.ArrayLike | None = None) -> DecisionBatch:
        """Features, rules, model and policy for a batch, in order; the state then includes it.

        ``seen_ms``: when each transaction reached the runtime, what ``expire`` measures idleness
        on (see ``FeatureState.compute``); left out, the transactions' own times.
        """
        self._read_attributes(batch)
        return self._decide(batch, self.state.compute(batch, seen_ms))

    def _read_attributes(self, batch: TransactionBatch) -> None:
        """Read the extra fields the rules and the declared features use in one scan of the batch
        (each then finds its columns in the batch's cache)."""
        wanted: list[tuple[str, str]] = list(self.rules.attributes.items())
        for aggregation in self.config.features.aggregations:
            if aggregation.attribute is not None:
                kind = "string" if aggregation.function == "distinct" else "number"
                wanted.append((aggregation.attribute, kind))
        if wanted and len(batch):
            batch.attribute_values(wanted)  # type: ignore[arg-type]

    def preview(self, batch: TransactionBatch, seen_ms: npt.ArrayLike | None = None) -> DecisionBatch:
        """What ``score`` would decide, without remembering the batch (a what-if check)."""
        self._read_attributes(batch)
        return self._decide(batch, self.state.preview(batch, seen_ms))

    def _decide(self, batch: TransactionBatch, features: FeatureMatrix) -> DecisionBatch:
        hits = self.rules.evaluate(
            _Columns(batch, features, self.rules.attributes), self.lists.at(batch.timestamp_ms)
        )
        match = self.snoozes.match(batch, hits.codes)
        snoozed = match.silenced(hits.hits) if match is not None else None
        probability = np.full(len(batch), np.nan, dtype=np.float32)
        model_features: tuple[str, ...] = ()
        matrix: npt.NDArray[np.float32] | None = None
        if self.model is not None and len(batch):
            model_features = self.model.feature_names
            matrix = features.select(model_features)
            probability = self.model.predict_proba(matrix).astype(np.float32)
        acting = ~hits.shadow
        score, code = decide(
            probability,
            (hits.hits if snoozed is None else hits.hits & ~snoozed)[acting],
            hits.weights[acting],
            _ACTION_CODES[hits.actions[acting]],
            self.config.policy,
        )
        applied = None
        if match is not None:
            code, applied = match.settle(code, hits.hits)
        explained = np.zeros(0, dtype=np.int64)
        explained_matrix = np.zeros((0, len(model_features)), dtype=np.float32)
        if self.model is not None and matrix is not None:
            # Only the rows a person will look at get model reasons.
            explained = np.flatnonzero(code != APPROVE)
            explained_matrix = matrix[explained]
        shadow = {}
        for challenger in self.challengers:
            same = matrix is not None and challenger.feature_names == model_features
            x = matrix if same and matrix is not None else features.select(challenger.feature_names)
            shadow[challenger.metadata.version] = challenger.predict_proba(x).astype(np.float32)
        return DecisionBatch(
            batch=batch,
            transaction_id=batch.transaction_id,
            score=score,
            probability=probability,
            decision_code=code,
            is_alert=self._alert_codes[code],
            features=features,
            rule_hits=hits,
            rules=self.rules,
            model_version=self.model.metadata.version if self.model is not None else None,
            model_features=model_features,
            explained_rows=explained,
            model=self.model,
            explained_matrix=explained_matrix,
            shadow_probability=shadow,
            max_reasons=self.config.policy.max_reasons,
            snooze_match=match,
            snooze_applied=applied,
            snoozed=snoozed,
        )

    def apply_labels(self, labels: LabelBatch) -> None:
        """Feed fraud labels (reviews, chargebacks): label-derived features count them from now on."""
        self.state.apply_labels(labels)

    def expire(self, now_ms: int) -> int:
        """Forget entities whose transactions stopped arriving ``idle_expiry`` before ``now_ms`` (the
        runtime's clock); returns how many. Runtimes call it now and then (e.g. hourly); it changes
        no decision (see ``FeatureState.expire``)."""
        return self.state.expire(now_ms)

    def snapshot(self) -> bytes:
        """Feature state and list contents as versioned bytes (rules and models are stored elsewhere)."""
        return b"".join(self.snapshot_parts())

    def snapshot_parts(self) -> list[bytes | memoryview]:
        """``snapshot()`` in pieces, for a writer that stores them one after the other without
        joining them; some are views of the live state, to be written before the next batch."""
        lists = json.dumps(self.lists.to_dict(), sort_keys=True).encode()
        head = _HEADER.pack(_SNAPSHOT_MAGIC, _SNAPSHOT_VERSION, len(lists)) + lists
        return [head, *self.state.snapshot_parts()]

    def restore(self, data: bytes) -> None:
        """Replace the feature state and lists with those of ``snapshot()`` bytes."""
        if len(data) < _HEADER.size:
            raise StateError("engine snapshot is truncated: shorter than its header")
        magic, version, length = _HEADER.unpack_from(data)
        if magic != _SNAPSHOT_MAGIC or version != _SNAPSHOT_VERSION:
            raise StateError(
                f"not an engine snapshot of format {_SNAPSHOT_VERSION} (magic {magic!r}, format {version}); "
                "start from an empty state and replay the event log"
            )
        start = _HEADER.size
        lists = json.loads(data[start : start + length])
        self.state = FeatureState.restore(data[start + length :], self.config.features)
        self.lists = ListStore.from_dict(lists)
        self.lists.declare_from(self.rules)
