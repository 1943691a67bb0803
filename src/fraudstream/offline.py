"""Fraud detection from Python: score a DataFrame, replay, evaluate and backtest history, load models.

These are the functions ``fraudstream`` exports (``fraudstream.score``, ...). They read their input
as the ``fraudstream`` command reads files (same column names and aliases, same validation, same
``mapping``, ``timezone`` and ``max_invalid`` as its ``--map``, ``--timezone`` and ``--max-invalid``)
and decide with the same engine, so a notebook and the command agree row for row.
"""

from __future__ import annotations

import hashlib
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

from fraudstream.config import DEMO_CARD_KEY, Settings
from fraudstream.core.engine import EngineConfig, default_names
from fraudstream.core.features import parse_delay_ms
from fraudstream.core.models import Model
from fraudstream.core.policy import DECISIONS
from fraudstream.core.rules import RuleSet, load_ruleset
from fraudstream.core.schema import Validator
from fraudstream.errors import ConfigError, ModelError
from fraudstream.ml import Progress
from fraudstream.ml.backtest import backtest as backtest_rules
from fraudstream.ml.dataset import (
    DEFAULT_MAX_INVALID,
    History,
    Reading,
    history_of_table,
    parse_max_invalid,
    read_history,
    refuse_invalid,
    validate_file,
)
from fraudstream.ml.registry import Location, Registry, champion_model, load_artifact
from fraudstream.ml.scoring import decide_in_order, trained_label_delay
from fraudstream.ml.train import evaluate as evaluate_history
from fraudstream.ml.train import replay_history
from fraudstream.reference import load_reference

__all__ = [
    "FraudstreamWarning",
    "backtest",
    "evaluate",
    "load_model",
    "replay",
    "score",
    "serving_model",
]

#: Transactions in memory: a pandas DataFrame, an Arrow table, or JSON-like records (dicts).
Transactions: TypeAlias = pd.DataFrame | pa.Table | Sequence[Mapping[str, Any]]
#: History with its ground truth (an ``is_fraud`` column): in memory, or a CSV / Parquet file.
HistoryData: TypeAlias = pd.DataFrame | pa.Table | str | Path
#: A model: ``"champion"``, ``"latest"``, a version id, an artifact directory, a loaded model, or
#: None for the rules alone.
ModelChoice: TypeAlias = str | Path | Model | None


class FraudstreamWarning(UserWarning):
    """Something the caller should know about a result: the demo card key was used, no champion
    model exists so the rules alone decided, invalid rows were left out."""


def serving_model(settings: Settings, registry: Location | None = None) -> Model | None:
    """The model a server with ``settings`` decides with: the artifact in FRAUDSTREAM_MODEL_PATH,
    else the champion of the registry (``registry``, default ``{data_dir}/models``, where
    FRAUDSTREAM_MODEL_PATH does not apply); None when there is none and the rules decide alone."""
    names = EngineConfig().features.feature_names
    model_path = settings.model_path if registry is None else None
    where = registry if registry is not None else settings.models_dir
    return champion_model(model_path, where, names, endpoint_url=settings.s3_endpoint_url)


def load_model(
    model: str | Path = "champion", *, registry: Location | None = None, settings: Settings | None = None
) -> Model:
    """A model, checked against the engine's features: ``"champion"`` (the one a server decides
    with, see `serving_model`), ``"latest"`` or a version id of the registry (default
    ``{data_dir}/models``), or an artifact directory (a `~pathlib.Path`, or a string naming one).

    >>> load_model("no-such-version", registry=Path("/nonexistent"))
    Traceback (most recent call last):
    ...
    fraudstream.errors.ModelError: no model version 'no-such-version' in /nonexistent (known: none)
    """
    settings = settings if settings is not None else Settings(demo=True)
    names = EngineConfig().features.feature_names
    if model == "champion":
        found = serving_model(settings, registry)
        if found is None:
            where = registry if registry is not None else settings.models_dir
            raise ModelError(
                f"no champion model: FRAUDSTREAM_MODEL_PATH is not set and {where} has none promoted; "
                "train one (`fraudstream train --promote`), or decide with the rules alone (model=None)"
            )
        return found
    if isinstance(model, Path) or Path(model).is_dir():
        directory = Path(model)
        if not directory.is_dir():
            raise ModelError(f"{directory} is not a model artifact directory (it does not exist)")
        return load_artifact(directory, names)
    where = registry if registry is not None else settings.models_dir
    return Registry(where, settings.s3_endpoint_url).load(model, names)


def score(
    data: Transactions,
    model: ModelChoice = "champion",
    rules: RuleSet | str | Path | None = None,
    *,
    settings: Settings | None = None,
    registry: Location | None = None,
    mapping: Mapping[str, str] | None = None,
    timezone: str | None = None,
    max_invalid: float | str = DEFAULT_MAX_INVALID,
) -> pd.DataFrame:
    """Decide on every transaction of ``data``, in its order, as ``fraudstream score`` does: one row
    per valid transaction with its ``transaction_id``, ``decision``, ``score`` (0-100),
    ``probability`` (NaN without a model), ``reasons`` (dicts of code, text, contribution, kind) and
    the other fields of a decision record (`DecisionBatch.to_pandas`). Nothing is stored.

    ``model``: ``"champion"`` (the model a server decides with; the rules alone, with a warning,
    when there is none), ``None`` for the rules alone, or anything `load_model` takes, or a model.
    ``rules``: a rule set or a YAML file (default: the packaged rules). Card numbers are
    fingerprinted with ``settings.card_key`` (FRAUDSTREAM_CARD_KEY); without one, with the demo key,
    and a warning says so. Invalid rows up to ``max_invalid`` (a share, or ``"1%"``) are left out
    with a warning; more raise `~fraudstream.ml.dataset.InvalidRowsError`.

    >>> import pandas as pd
    >>> payments = pd.DataFrame({"transaction_id": ["t1", "t2"], "user_id": ["u1", "u1"],
    ...     "amount": [50.0, 5000.0], "timestamp": ["2026-01-01T10:00:00Z", "2026-01-01T10:01:00Z"]})
    >>> decisions = score(payments, model=None, settings=Settings(card_key="a-long-random-secret"))
    >>> decisions[["transaction_id", "decision", "score"]]
      transaction_id decision  score
    0             t1  approve      0
    1             t2   review     60
    >>> decisions.loc[1, "reasons"][0]["code"]
    'amount_spike'
    """
    settings = settings if settings is not None else Settings(demo=True)
    chosen = _model_for(model, registry, settings)
    validator = Validator(load_reference(), _card_key(settings))
    table, source = _as_table(data)
    now_ms = int(time.time() * 1000)
    result, reading = validate_file(
        validator, table, source, received_at_ms=now_ms, mapping=mapping, timezone=timezone
    )
    _accept(reading, max_invalid)
    ruleset = None if rules is None else _ruleset(rules)
    parts = [part.to_pandas() for part in decide_in_order(result.batch, chosen, ruleset)]
    return pd.concat(parts, ignore_index=True)


def replay(
    data: HistoryData,
    model: ModelChoice = "champion",
    *,
    label_delay: str | None = None,
    settings: Settings | None = None,
    registry: Location | None = None,
    mapping: Mapping[str, str] | None = None,
    timezone: str | None = None,
    max_invalid: float | str = DEFAULT_MAX_INVALID,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Replay a labelled history through the engine in event-time order, each fraud label applied
    only once it was known (its ``label_time`` column, else ``label_delay`` after the transaction;
    default: the delay the model was trained with): the decision each transaction would have got.
    One row per valid transaction in time order: ``transaction_id``, ``timestamp``, ``is_fraud``,
    ``decision``, ``score``, ``probability``, ``rules`` (codes) and ``reasons`` (texts), as
    ``fraudstream evaluate --output`` writes them. ``model`` and the rest as for `score`;
    ``progress(step, done, total)``, if given, hears how far the replay is once per chunk of rows.
    """
    settings = settings if settings is not None else Settings(demo=True)
    chosen = _model_for(model, registry, settings)
    history = _history(data, mapping, timezone, max_invalid)
    replayed = replay_history(history, _delay_ms(label_delay, chosen), chosen, progress=progress)
    return pd.DataFrame(
        {
            "transaction_id": history.batch.transaction_id.to_pylist(),
            "timestamp": pd.to_datetime(history.batch.timestamp_ms, unit="ms", utc=True),
            "is_fraud": history.is_fraud,
            "decision": [DECISIONS[c] for c in replayed.decision.tolist()],
            "score": replayed.score.astype(np.int64),
            "probability": replayed.probability.astype(np.float64),
            "rules": replayed.rules,
            "reasons": replayed.reasons,
        }
    )


def evaluate(
    data: HistoryData,
    model: ModelChoice = "champion",
    *,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    label_delay: str | None = None,
    settings: Settings | None = None,
    registry: Location | None = None,
    mapping: Mapping[str, str] | None = None,
    timezone: str | None = None,
    max_invalid: float | str = DEFAULT_MAX_INVALID,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Replay a labelled history (as `replay`) and measure the decisions from ``start`` (RFC 3339 or
    an aware datetime) to before ``end``: the report ``fraudstream evaluate`` prints (ROC AUC,
    average precision, recall and precision of the review threshold, fraud money caught, a
    threshold table, recall by scenario for simulated data). The history before ``start`` builds
    the feature state; ``model``, ``progress`` and the rest as for `replay`.
    """
    settings = settings if settings is not None else Settings(demo=True)
    chosen = _model_for(model, registry, settings)
    history = _history(data, mapping, timezone, max_invalid)
    report, _, _ = evaluate_history(
        history,
        chosen,
        from_ms=_time_ms(start, "start"),
        to_ms=_time_ms(end, "end"),
        label_delay_ms=_delay_ms(label_delay, chosen),
        progress=progress,
    )
    return report


def backtest(
    data: HistoryData,
    rules: RuleSet | str | Path,
    model: ModelChoice = None,
    *,
    start: str | datetime | None = None,
    label_delay: str | None = None,
    settings: Settings | None = None,
    registry: Location | None = None,
    mapping: Mapping[str, str] | None = None,
    timezone: str | None = None,
    max_invalid: float | str = DEFAULT_MAX_INVALID,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Replay a labelled history with the rule set ``rules`` (a rule set or a YAML file) and count,
    from ``start`` on, what each rule would have done (hits, precision, recall, fraud money caught,
    alerts per day) and the policy as a whole, as ``fraudstream backtest`` does for its candidate.
    Run it with two rule sets and `fraudstream.ml.backtest.compare` sets them side by side.
    ``model`` (default: none, the rules alone), ``progress`` and the rest as for `replay`.
    """
    settings = settings if settings is not None else Settings(demo=True)
    chosen = _model_for(model, registry, settings)
    history = _history(data, mapping, timezone, max_invalid)
    return backtest_rules(
        history,
        _ruleset(rules),
        model=chosen,
        label_delay_ms=_delay_ms(label_delay, chosen),
        from_ms=_time_ms(start, "start"),
        progress=progress,
    )


def _model_for(model: ModelChoice, registry: Location | None, settings: Settings) -> Model | None:
    """The model a function decides with; ``"champion"`` falls back to the rules, with a warning."""
    if model is None:
        return None
    if not isinstance(model, str | Path):
        return model
    if model == "champion":
        found = serving_model(settings, registry)
        if found is None:
            where = registry if registry is not None else settings.models_dir
            _warn(
                f"no champion model (FRAUDSTREAM_MODEL_PATH is not set and {where} has none promoted): "
                "deciding with the rules alone; pass model=None to say so, or train and promote a model"
            )
        return found
    return load_model(model, registry=registry, settings=settings)


def _card_key(settings: Settings) -> bytes:
    """The card fingerprint key of ``settings``; the demo key, said with a warning, when it has none."""
    if settings.card_key is None:
        _warn(
            "FRAUDSTREAM_CARD_KEY is not set: card numbers are fingerprinted with the demo key, which is "
            "public, so these fingerprints match no server's; set it, or pass "
            "settings=Settings(card_key=...), to score real cards"
        )
        return DEMO_CARD_KEY.encode()
    return settings.card_key_bytes


def _ruleset(rules: RuleSet | str | Path) -> RuleSet:
    if isinstance(rules, RuleSet):
        return rules
    path = Path(rules)
    if not path.is_file():
        raise ConfigError(f"rules {path}: no such file; give a YAML rule set file or a RuleSet")
    return load_ruleset(path.read_text(encoding="utf-8"), default_names(EngineConfig().features))


def _as_table(data: Transactions) -> tuple[pa.Table | Sequence[Mapping[str, Any]], str]:
    """``data`` as the validator reads it, with the name messages give it."""
    if isinstance(data, pa.Table | pd.DataFrame):
        return _arrow(data), _name(data)
    return data, "the records"


def _arrow(data: pd.DataFrame | pa.Table) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    try:
        return pa.Table.from_pandas(data, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ConfigError(f"the DataFrame cannot be read as columns of one type each: {exc}") from None


def _name(data: pd.DataFrame | pa.Table) -> str:
    return "the table" if isinstance(data, pa.Table) else "the DataFrame"


def _history(
    data: HistoryData, mapping: Mapping[str, str] | None, timezone: str | None, max_invalid: float | str
) -> History:
    """A labelled history from a file or from memory, its invalid rows checked as the commands do."""
    if isinstance(data, str | Path):
        history, reading = read_history(Path(data), mapping, timezone=timezone)
    else:
        table = _arrow(data)
        history, reading = history_of_table(
            table, _name(data), _fingerprint(table), mapping, timezone=timezone
        )
    _accept(reading, max_invalid)
    return history


def _fingerprint(table: pa.Table) -> str:
    """What identifies a table's data in reports, as a file's digest does for a file."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:16]


def _accept(reading: Reading, max_invalid: float | str) -> None:
    """Raise when too many rows are invalid; warn about the few left out."""
    refuse_invalid(reading, parse_max_invalid(max_invalid) if isinstance(max_invalid, str) else max_invalid)
    if reading.invalid:
        _warn("; ".join(reading.report()) + " (left out)")


def _delay_ms(label_delay: str | None, model: Model | None) -> int:
    return parse_delay_ms(label_delay if label_delay is not None else trained_label_delay(model))


def _time_ms(moment: str | datetime | None, name: str) -> int | None:
    if moment is None:
        return None
    try:
        when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    except ValueError:
        raise ConfigError(f"{name} {moment!r} is not a time; write e.g. 2026-01-05T00:00:00+00:00") from None
    if when.tzinfo is None:
        raise ConfigError(f"{name} {moment!s} has no time zone; write it as e.g. 2026-01-05T00:00:00+00:00")
    return int(when.timestamp() * 1000)


def _warn(message: str) -> None:
    """Warn at the caller's line that called into fraudstream (a notebook cell, a script)."""
    level, frame = 2, sys._getframe(1)
    while frame.f_back is not None and str(frame.f_globals.get("__name__")).startswith("fraudstream."):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, FraudstreamWarning, stacklevel=level)
