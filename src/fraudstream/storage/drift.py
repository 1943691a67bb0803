"""Drift's stored figures: live bin counts per UTC day, model version and feature (``drift_counts``),
and the daily score distribution and alert rate of the stored decisions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fraudstream.storage.tables import decisions, drift_counts

__all__ = ["SCORE_BUCKETS", "DriftCounts", "utc_day"]

DAY_MS = 86_400_000
#: The score histogram's buckets: 0-9, 10-19, ..., 90-100 (a score of 100 joins the last).
SCORE_BUCKETS = 10
_KINDS = ("approve", "challenge", "review", "decline")


def utc_day(ms: int) -> str:
    """The UTC day of a time in ms, as ``YYYY-MM-DD``.

    >>> utc_day(86_400_000 * 365)
    '1971-01-01'
    """
    return datetime.fromtimestamp(ms // DAY_MS * 86_400, UTC).strftime("%Y-%m-%d")


class DriftCounts:
    """The drift queries of :class:`~fraudstream.storage.Store` (a mixin over its ``engine``)."""

    engine: Engine

    def add_drift_counts(
        self, deltas: Mapping[tuple[str, str], Mapping[str, Sequence[int]]], last_seq: int, now_ms: int
    ) -> None:
        """Add ``deltas`` ({(day, model version): {feature: counts per bin}}) to the stored counts, in
        one transaction, and record that they hold the log up to ``last_seq``. One writer (the
        server's snapshot) adds at a time."""
        if not deltas:
            return
        with self.engine.begin() as connection:
            for (day, version), features in deltas.items():
                stored = {
                    feature: json.loads(counts)
                    for feature, counts in connection.execute(
                        sa.select(drift_counts.c.feature, drift_counts.c.counts).where(
                            drift_counts.c.day == day, drift_counts.c.model_version == version
                        )
                    )
                }
                for feature, counts in features.items():
                    before = stored.get(feature)
                    key = (
                        (drift_counts.c.day == day)
                        & (drift_counts.c.model_version == version)
                        & (drift_counts.c.feature == feature)
                    )
                    if before is not None and len(before) == len(counts):
                        merged = [int(a) + int(b) for a, b in zip(before, counts)]
                        connection.execute(
                            sa.update(drift_counts)
                            .where(key)
                            .values(counts=json.dumps(merged), last_seq=last_seq, updated_at_ms=now_ms)
                        )
                        continue
                    if before is not None:  # other bins: the version's reference cannot change, but
                        connection.execute(sa.delete(drift_counts).where(key))  # never mix two layouts
                    connection.execute(
                        sa.insert(drift_counts).values(
                            day=day,
                            model_version=version,
                            feature=feature,
                            counts=json.dumps([int(n) for n in counts]),
                            last_seq=last_seq,
                            updated_at_ms=now_ms,
                        )
                    )

    def drift_counts_of(self, days: Sequence[str], model_version: str) -> dict[str, list[int]]:
        """The stored counts of ``model_version`` over ``days``, summed per feature."""
        query = sa.select(drift_counts.c.feature, drift_counts.c.counts).where(
            drift_counts.c.day.in_(list(days)), drift_counts.c.model_version == model_version
        )
        summed: dict[str, list[int]] = {}
        with self.engine.connect() as connection:
            for feature, text in connection.execute(query):
                counts = [int(n) for n in json.loads(text)]
                before = summed.get(feature)
                if before is None or len(before) != len(counts):
                    summed[feature] = counts
                else:
                    summed[feature] = [a + b for a, b in zip(before, counts)]
        return summed

    def drift_last_seq(self) -> int:
        """The newest log position stored drift counts hold (0: none)."""
        with self.engine.connect() as connection:
            found = connection.execute(sa.select(sa.func.max(drift_counts.c.last_seq))).scalar()
        return int(found or 0)

    def daily_decisions(self, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
        """Per UTC day from ``since_ms``'s day to ``until_ms``'s, oldest first and empty days
        included: decisions, alerts and the alert rate, decisions by kind, and the score histogram
        in ``SCORE_BUCKETS`` buckets of 10 points."""
        first, last = since_ms // DAY_MS, until_ms // DAY_MS
        day = decisions.c.decided_at_ms // DAY_MS
        bucket = decisions.c.score // (100 // SCORE_BUCKETS)
        query = (
            sa.select(
                day,
                bucket,
                decisions.c.decision,
                sa.func.count(),
                sa.func.sum(sa.cast(decisions.c.is_alert, sa.Integer)),
            )
            .where(decisions.c.decided_at_ms >= first * DAY_MS)
            .group_by(day, bucket, decisions.c.decision)
        )
        days = {n: _Day() for n in range(first, last + 1)}
        with self.engine.connect() as connection:
            for number, score_bucket, kind, count, alerted in connection.execute(query):
                found = days.get(int(number))
                if found is None:
                    continue  # decided after until_ms (a clock ahead)
                found.decisions += int(count)
                found.alerts += int(alerted or 0)
                found.kinds[kind] = found.kinds.get(kind, 0) + int(count)
                found.scores[min(int(score_bucket), SCORE_BUCKETS - 1)] += int(count)
        return [
            {
                "day": utc_day(n * DAY_MS),
                "day_ms": n * DAY_MS,
                "decisions": d.decisions,
                "alerts": d.alerts,
                "alert_rate": round(d.alerts / d.decisions, 6) if d.decisions else None,
                "decisions_by_kind": d.kinds,
                "scores": d.scores,
            }
            for n, d in sorted(days.items())
        ]


@dataclass
class _Day:
    """One UTC day's decisions as `DriftCounts.daily_decisions` adds them up."""

    decisions: int = 0
    alerts: int = 0
    kinds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_KINDS, 0))
    scores: list[int] = field(default_factory=lambda: [0] * SCORE_BUCKETS)
