"""Scoring transactions offline, in their order, with an engine set up as a server would be for a model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from fraudstream.core.batch import TransactionBatch
from fraudstream.core.engine import DecisionBatch, Engine, EngineConfig
from fraudstream.core.features import parse_delay_ms
from fraudstream.core.models import Model
from fraudstream.core.rules import RuleSet
from fraudstream.ml.train import engine_config

__all__ = ["SCORING_BATCH", "decide_in_order", "trained_label_delay"]

#: Rows scored together: large enough for the vectorized core, small enough to bound memory.
SCORING_BATCH: Final = 8192


def trained_label_delay(model: Model | None) -> str:
    """The label delay ``model`` was trained with (its label-feedback windows mean that delay); 0s
    for the rules alone, or a model that does not say.

    >>> trained_label_delay(None)
    '0s'
    """
    return str(model.metadata.params.get("label_delay", "0s")) if model is not None else "0s"


def decide_in_order(
    batch: TransactionBatch,
    model: Model | None,
    rules: RuleSet | None = None,
    *,
    base: EngineConfig | None = None,
) -> Iterator[DecisionBatch]:
    """Decisions for ``batch`` in its order, from a fresh engine (empty feature state) with ``model``
    as champion (None: the rules alone) and ``rules`` (None: the packaged set), its label windows
    ending as far back as the model was trained with; nothing is stored.

    >>> batch = TransactionBatch.from_pydict({"transaction_id": ["t1", "t2"], "timestamp": [0, 60_000],
    ...     "user_id": ["u1", "u1"], "amount": [50.0, 5000.0]})
    >>> [d.decisions for d in decide_in_order(batch, None)]
    [['approve', 'review']]
    """
    config = engine_config(parse_delay_ms(trained_label_delay(model)), base or EngineConfig())
    engine = Engine(config, rules=rules, model=model)
    for start in range(0, len(batch), SCORING_BATCH):
        yield engine.score(batch.slice(start, start + SCORING_BATCH))
