"""When simulated frauds become known: each victim reports late, after a heavy-tailed delay, or never.

A victim reports an episode once, after its last transaction: a quarter within two days (they call
the bank, an analyst confirms an alert), the rest when the statement comes (a median of ten days,
some after six weeks). A share of victims never report: those frauds stay in the ground truth
(``is_fraud``) but no label ever arrives.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.sim.world import DAY_MS, HOUR_MS

__all__ = ["label_times"]

#: Share of reports that come within hours (2 to 48) rather than with the statement.
_FAST_SHARE = 0.25
#: Statement-time reports: log-normal delay with this median (days) and spread.
_MEDIAN_DAYS, _SPREAD = 10.0, 0.7


def label_times(table: pa.Table, seed: int, unreported_share: float) -> pa.Array:
    """When each row's fraud label arrives (ms since the epoch, UTC): null for legitimate rows and for
    frauds never reported. One draw per victim and scenario: a victim reports all of it at once."""
    fraud = np.asarray(table.column("is_fraud").to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero(fraud)
    ts = table.column("timestamp").cast(pa.int64()).to_numpy()[rows]
    victim = pc.binary_join_element_wise(
        table.column("user_id").take(pa.array(rows)), table.column("fraud_scenario").take(pa.array(rows)), "|"
    )
    _, report = np.unique(
        np.asarray(victim.to_numpy(zero_copy_only=False), dtype=object), return_inverse=True
    )
    reports = int(report.max()) + 1 if len(rows) else 0
    rng = np.random.default_rng(seed + 1)
    fast = rng.random(reports) < _FAST_SHARE
    delay = np.where(
        fast,
        rng.uniform(2, 48, reports) * HOUR_MS,
        rng.lognormal(np.log(_MEDIAN_DAYS), _SPREAD, reports) * DAY_MS,
    ).astype(np.int64)
    reported = rng.random(reports) >= unreported_share
    last = np.full(reports, np.iinfo(np.int64).min)
    np.maximum.at(last, report, ts)
    when = np.zeros(table.num_rows, dtype=np.int64)
    when[rows] = (last + delay)[report]
    known = np.zeros(table.num_rows, dtype=bool)
    known[rows] = reported[report]
    return pa.array(when, pa.timestamp("ms", tz="UTC"), mask=~known)
