"""Compile every numba kernel a server, a demo or a worker runs, once, into the kernel cache.

numba compiles a kernel the first time it is called and keeps the machine code in the kernel cache
(`fraudstream.kernel_cache`); a process that finds it there loads it in milliseconds. On a fresh
install nothing is cached, and a first start spent about a minute compiling in silence. `warm_kernels`
runs the whole decide path once on a small simulated history instead (validation of HTTP records
and of Kafka message blocks, features with labels, the rules, every kind of model with its reasons,
a snapshot and its restore, the output messages), so that `fraudstream warmup` can do it at install
time and a start can do it first, saying so, rather than in the first requests.

When it has run, a marker in the cache folder says so (`is_warm`); the marker lives in the folder
named after the kernels' source, so an upgrade that changes any kernel asks for a new warm-up.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import orjson

from fraudstream.kernel_cache import cache_folder

if TYPE_CHECKING:
    from fraudstream.core.batch import TransactionBatch

__all__ = ["STEPS", "is_warm", "mark_warm", "marker_path", "warm_kernels"]

#: What `warm_kernels` tells its ``progress`` before each step, in order.
STEPS = (
    "simulated transactions",
    "features and labels",
    "models",
    "rules, models and reasons",
    "snapshot and restore",
    "Kafka messages",
    "declared features and attributes",
)

#: Rules on extra fields and declared aggregations of every function, numeric and text, for the
#: warm-up: a server configured with its own (FRAUDSTREAM_FEATURES_PATH) runs the same kernels.
_WARM_RULES = """version: 1
rules:
  - {code: web, expression: "attributes.channel == 'web' and attributes.points > 100", action: tag}
  - {code: unknown, expression: "is_missing(attributes.other)", action: tag}
  - {code: busy_merchant, expression: "merchant.distinct_device_1h > 3", action: tag}
"""
_WARM_FEATURES = """aggregations:
  - {entity: user, function: count, field: amount, window: 10m}
  - {entity: user, function: sum, field: attributes.points, window: 1h}
  - {entity: card, function: mean, field: amount, window: 1h}
  - {entity: merchant, function: max, field: amount, window: 1h}
  - {entity: merchant, function: distinct, field: device, window: 1h}
  - {entity: user, function: distinct, field: attributes.channel, window: 1h}
"""


def marker_path() -> Path:
    """The marker `mark_warm` writes: in numba's cache folder (``NUMBA_CACHE_DIR``, which
    `fraudstream.kernel_cache` sets on import unless the user did), else in `cache_folder`. Named
    after this module's code too: a warm-up that learns to reach more kernels runs again."""
    folder = os.environ.get("NUMBA_CACHE_DIR")
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8]
    name = f"fraudstream-warm-{code}"
    return Path(folder) / name if folder else cache_folder() / name


def is_warm() -> bool:
    """Whether the kernels of this version of the code were compiled into the cache."""
    return marker_path().is_file()


def mark_warm() -> None:
    """Record that the cache holds the kernels; a cache that cannot be written is left unmarked (the
    next start compiles again, as numba would anyway)."""
    path = marker_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("the numba kernels of this version are compiled here\n", encoding="utf-8")
    except OSError:
        pass


def warm_kernels(progress: Callable[[str], None] | None = None) -> None:
    """Run the decide path once on simulated data so that numba compiles (or loads) every kernel,
    then `mark_warm`. ``progress`` hears each of `STEPS` as it starts. Takes about a minute on a
    cold cache, a few seconds on a warm one."""
    from fraudstream.config import DEMO_CARD_KEY
    from fraudstream.core.engine import EngineConfig
    from fraudstream.core.models import KINDS, fit_model
    from fraudstream.ml.dataset import history_of_table
    from fraudstream.ml.train import replay_training_features
    from fraudstream.runtime.decider import Decider
    from fraudstream.runtime.kafka.decode import decode_block
    from fraudstream.runtime.kafka.payloads import decision_payloads
    from fraudstream.sim.generator import SimulationConfig, simulate
    from fraudstream.sim.output import records_for_http

    def step(name: str) -> None:
        if progress is not None:
            progress(name)

    step(STEPS[0])
    table = simulate(SimulationConfig(count=2_000, seed=11, fraud_rate=0.05, duration_ms=2 * 86_400_000))
    step(STEPS[1])
    history, _ = history_of_table(table, "warm-up", "warm-up", card_key=DEMO_CARD_KEY.encode())
    matrix, names = replay_training_features(history, 0)
    step(STEPS[2])
    labels = history.is_fraud.astype(np.int8)
    # Few, small trees: the kernels are typed by the arrays a model is made of, not by their size.
    small: dict[str, dict[str, object]] = {
        "lightgbm": {"num_trees": 5, "num_leaves": 7},
        "random_forest": {"n_estimators": 3, "max_depth": 4},
        "isolation_forest": {"n_estimators": 3},
        "logistic": {},
    }
    models = [
        fit_model(
            kind,
            matrix,
            labels,
            names,
            version=f"warm-up-{kind}",
            created="2026-01-01T00:00:00+00:00",
            training_fingerprint="warm-up",
            params=small.get(kind),
        )
        for kind in KINDS
    ]
    step(STEPS[3])
    decider = Decider(EngineConfig(), DEMO_CARD_KEY.encode())
    for i, champion in enumerate(models):  # each kind as the champion: its reasons compile too
        decider.warm(champion, models[:i] + models[i + 1 :])
    decider.champion, decider.challengers = models[0], tuple(models[1:])
    engine = decider.engine()
    records = records_for_http(table.drop_columns(["is_fraud", "fraud_scenario"]))
    batch = decider.validate(records, received_at_ms=int(table.column("timestamp")[-1].value)).batch
    # numba compiles a kernel once per layout of its arrays: every shape of batch a runtime meets
    # (one transaction, a group, a batch longer than the block `FeatureState.compute` cuts batches
    # in), with arrival times (what a runtime passes) and without (a replay of history), so that a
    # kernel that comes to see another layout is compiled here, not in a first request.
    for size in (1, 3, len(batch)):
        part = batch.slice(0, size)
        decider.decide(engine, part, [0] * size).to_records()
        decider.engine().score(part)
    engine.apply_labels(history.labels(0))
    step(STEPS[4])
    restored = decider.engine()
    restored.restore(engine.snapshot())
    restored.expire(int(history.batch.timestamp_ms.max()) + 400 * 86_400_000)
    step(STEPS[5])
    block = decode_block([orjson.dumps(r) for r in records[:200]])
    if block is not None:
        checked = decider.validate_table(block, received_at_ms=0)
        decision_payloads(decider.decide(engine, checked.batch), [0] * len(checked.batch), list(range(200)))
    step(STEPS[6])
    _warm_declared(batch)
    mark_warm()


def _warm_declared(batch: TransactionBatch) -> None:
    """Decide with declared aggregations and rules on extra fields (text with escapes, numbers,
    values of another type), in every batch shape, and snapshot and restore their state."""
    import pyarrow as pa

    from fraudstream.config import DEMO_CARD_KEY
    from fraudstream.core.batch import TransactionBatch
    from fraudstream.core.engine import EngineConfig, default_names
    from fraudstream.core.features import FeatureConfig
    from fraudstream.core.features.declared import with_declared_features
    from fraudstream.core.rules import load_ruleset
    from fraudstream.runtime.decider import Decider

    config = EngineConfig(features=with_declared_features(_WARM_FEATURES, FeatureConfig()))
    rules = load_ruleset(_WARM_RULES, default_names(config.features))
    decider = Decider(config, DEMO_CARD_KEY.encode(), rules=rules)
    extras = [
        orjson.dumps(
            {"channel": "web" if i % 3 else 'caf\u00e9 "pos"', "points": i if i % 4 else "x"}
        ).decode()
        for i in range(len(batch))
    ]
    column = batch.data.schema.get_field_index("attributes")
    with_extras = TransactionBatch(batch.data.set_column(column, "attributes", pa.array(extras, pa.string())))
    engine = decider.engine()
    for size in (1, 3, len(with_extras)):
        part = with_extras.slice(0, size)
        decider.decide(engine, part, [0] * size).to_records()
        decider.engine().score(part)
    decider.engine().restore(engine.snapshot())
