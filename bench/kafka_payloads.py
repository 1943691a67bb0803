"""The Kafka worker's output messages: built a batch at a time against the per-row dicts they replaced.

Run: ``.venv/bin/python bench/kafka_payloads.py`` (``--events 20000`` for a quicker run).

Simulated transactions (the same generator as ``bench/kafka.py``) are validated and scored in
batches of 1000, as the worker does, first by the worker's engine (default rules, no model), then with
a LightGBM model so that the rows not approved are explained too. Then, in the same run, the messages
of every batch are built (a) the way the worker did before: ``to_records``, ``key_feature_rows`` and
``to_rows``, nested and ``orjson.dumps`` per row, and (b) with ``decision_payloads``; each checked
byte-identical to (a). Building messages is all that is timed (no broker).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable, Sequence

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import numpy.typing as npt
import orjson

from fraudstream.config import DEMO_CARD_KEY
from fraudstream.core.batch import TransactionBatch
from fraudstream.core.engine import DecisionBatch, Engine
from fraudstream.core.models import Model, fit_model
from fraudstream.core.schema import Validator
from fraudstream.reference import load_reference
from fraudstream.runtime.kafka.payloads import SCHEMA_VERSION, decision_payloads
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import records_for_http

Build = Callable[[DecisionBatch, Sequence[int], Sequence[int]], list[bytes]]


def per_row_payloads(
    decisions: DecisionBatch, partitions: Sequence[int], offsets: Sequence[int]
) -> list[bytes]:
    """The worker's messages as it built them before ``decision_payloads``: three dicts per row."""
    payloads = []
    rows = zip(
        decisions.to_records(), decisions.key_feature_rows(), decisions.batch.to_rows(), partitions, offsets
    )
    for record, features, transaction, partition, offset in rows:
        record["features"] = features
        message = {
            "schema_version": SCHEMA_VERSION,
            "transaction": transaction,
            "decision": record,
            "source": {"partition": partition, "offset": offset},
        }
        payloads.append(orjson.dumps(message))
    return payloads


def scored_batches(batches: list[TransactionBatch], model: Model | None) -> list[DecisionBatch]:
    engine = Engine(model=model)
    scored = [engine.score(batch) for batch in batches]
    for decisions in scored:
        decisions.contributions  # noqa: B018 - the model's cost, not the messages': computed before timing
    return scored


def rows_per_second(build: Build, scored: list[DecisionBatch]) -> float:
    rows = sum(len(d) for d in scored)
    start = time.perf_counter()
    for decisions in scored:
        build(decisions, [0] * len(decisions), list(range(len(decisions))))
    return rows / (time.perf_counter() - start)


def medians(scored: list[DecisionBatch], rounds: int) -> tuple[float, float]:
    """Rows/s of the per-row way and of ``decision_payloads``, the median of ``rounds`` each,
    alternating round by round so that load from other work on the machine hits both alike."""
    old: list[float] = []
    new: list[float] = []
    for _ in range(rounds):
        old.append(rows_per_second(per_row_payloads, scored))
        new.append(rows_per_second(decision_payloads, scored))
    return statistics.median(old), statistics.median(new)


def compare(label: str, scored: list[DecisionBatch], rounds: int) -> None:
    for decisions in scored:
        partitions, offsets = [0] * len(decisions), list(range(len(decisions)))
        if decision_payloads(decisions, partitions, offsets) != per_row_payloads(
            decisions, partitions, offsets
        ):
            raise SystemExit(f"{label}: the batch messages differ from the per-row ones")
    rows = sum(len(d) for d in scored)
    busy = sum(int(d.rule_hits.hits.any(axis=0).sum()) for d in scored)
    explained = sum(len(d.explained_rows) for d in scored)
    print(f"{label}: {rows:,} rows, {busy / rows:.1%} hit a rule, {explained / rows:.1%} explained")
    before, after = medians(scored, rounds)
    print(f"  (a) per-row dicts:     {before:>9,.0f} rows/s")
    print(f"  (b) decision_payloads: {after:>9,.0f} rows/s   {after / before:.2f}x (byte-identical)")
    # Part of (a)'s cost is the cyclic GC the dicts set off, which a worker pays too; the figures
    # without it are the building alone.
    gc.disable()
    try:
        before, after = medians(scored, rounds)
    finally:
        gc.enable()
    print(f"  without the cyclic GC: {before:>9,.0f} -> {after:,.0f} rows/s   {after / before:.2f}x")


def simulated_batches(events: int, size: int) -> tuple[list[TransactionBatch], npt.NDArray[np.int8]]:
    """Validated batches of simulated transactions, and their fraud labels (for training a model)."""
    table = simulate(SimulationConfig(count=events, seed=3)).drop_columns(["fraud_scenario"])
    fraud = np.asarray(table.column("is_fraud").to_numpy(zero_copy_only=False), dtype=np.int8)
    records = records_for_http(table.drop_columns(["is_fraud"]))
    validator = Validator(load_reference(), DEMO_CARD_KEY.encode())
    batches = [
        validator.records(records[i : i + size], received_at_ms=0).batch for i in range(0, len(records), size)
    ]
    return batches, fraud


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    batches, fraud = simulated_batches(args.events, args.batch)
    compare("worker engine (default rules, no model)", scored_batches(batches, None), args.rounds)

    features = Engine().score(TransactionBatch.concat(batches)).features
    model = fit_model(
        "lightgbm",
        features.values,
        fraud,
        features.names,
        version="bench",
        created="2026-01-01T00:00:00Z",
        training_fingerprint="bench",
        params={"num_trees": 50},
    )
    compare(
        "with a LightGBM model (rows not approved explained)", scored_batches(batches, model), args.rounds
    )


if __name__ == "__main__":
    main()
