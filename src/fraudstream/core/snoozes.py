"""Snoozes: one rule, or every review decision, silenced for one entity until a time.

An analyst who has checked a customer says "this card is fine until Friday": a snooze of one rule
makes that rule's hits on the card act no more (they are recorded as shadow hits, so the analyst
still sees it would have fired); a snooze of every review decision (no rule) turns what would be
``review`` into ``approve``, never touching a decline or a challenge. A snooze applies while the
transaction's own time is before ``until_ms``: the core reads no clock, so a replay decides alike.

Per batch the work is columnar: each entity column is looked up once in the small table of snoozed
entities (``index_in``), and only the snoozes whose entity is in the batch cost a mask each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.policy import APPROVE, REVIEW

if TYPE_CHECKING:
    from fraudstream.core.batch import TransactionBatch

__all__ = ["ENTITY_FIELDS", "Snooze", "SnoozeMatch", "SnoozeTable"]

#: Entity kind → the transaction column holding it (a card is its keyed fingerprint, never its number).
ENTITY_FIELDS: Final = {
    "user": "user_id",
    "card": "card_fingerprint",
    "device": "device_id",
    "merchant": "merchant_id",
    "terminal": "terminal_id",
    "ip": "ip",
}

#: A rule index meaning "every review decision" (no rule named).
ALL_REVIEWS: Final = -1
#: A rule index for a rule that is not enabled in the rule set in force: the snooze changes nothing.
NOT_ENABLED: Final = -2


@dataclass(frozen=True)
class Snooze:
    """One snooze: ``rule`` None silences every review decision for the entity."""

    id: str
    entity_kind: str
    entity_id: str
    rule: str | None
    until_ms: int
    reason: str = ""

    def describe(self) -> str:
        """The reason text of a decision it applied to.

        >>> Snooze("s1", "card", "3f2a9c1e0b7d44aa", "velocity", 1_796_774_400_000).describe()
        'snoozed: rule velocity for card 3f2a9c1e… until 2026-12-09 00:00 UTC'
        """
        what = f"rule {self.rule}" if self.rule is not None else "review decisions"
        entity = self.entity_id if self.entity_kind != "card" else self.entity_id[:8] + "…"
        until = datetime.fromtimestamp(self.until_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = f"snoozed: {what} for {self.entity_kind} {entity} until {until}"
        return f"{text} ({self.reason})" if self.reason else text

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity_kind": self.entity_kind,
            "entity_id": self.entity_id,
            "rule": self.rule,
            "until_ms": self.until_ms,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snooze:
        rule = data.get("rule")
        return cls(
            id=str(data["id"]),
            entity_kind=str(data["entity_kind"]),
            entity_id=str(data["entity_id"]),
            rule=None if rule is None else str(rule),
            until_ms=int(data["until_ms"]),
            reason=str(data.get("reason") or ""),
        )


@dataclass(frozen=True)
class SnoozeMatch:
    """The snoozes whose entity is in a batch, and the rows where each could apply (entity equal
    and the row's time before ``until``), as (snooze, row) pairs and as a mask."""

    snoozes: tuple[Snooze, ...]
    #: Per snooze, the index of its rule among the rule set's enabled rules, ``ALL_REVIEWS`` or
    #: ``NOT_ENABLED``.
    rules: npt.NDArray[np.int64]
    #: The pairs: ``pair_snoozes[i]`` (an index into ``snoozes``) can apply to row ``pair_rows[i]``.
    pair_snoozes: npt.NDArray[np.int64]
    pair_rows: npt.NDArray[np.int64]
    #: Rows in the batch.
    n: int

    @property
    def rows(self) -> npt.NDArray[np.bool_]:
        """(snoozes, rows): where each snooze's entity and time match."""
        mask = np.zeros((len(self.snoozes), self.n), dtype=np.bool_)
        mask[self.pair_snoozes, self.pair_rows] = True
        return mask

    def silenced(self, hits: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """(rules, rows): the hits that a snooze of their rule silences."""
        silenced = np.zeros_like(hits)
        rules = self.rules[self.pair_snoozes]
        mine = rules >= 0
        rules, rows = rules[mine], self.pair_rows[mine]
        hit = hits[rules, rows]
        silenced[rules[hit], rows[hit]] = True
        return silenced

    def settle(
        self, codes: npt.NDArray[np.uint8], hits: npt.NDArray[np.bool_]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
        """The decision codes after the review snoozes (review → approve), and (snoozes, rows) where
        each snooze applied: its rule hit there, or (every review) the row would have been review."""
        rules = self.rules[self.pair_snoozes]
        rows = self.pair_rows
        applies = np.zeros(rows.shape[0], dtype=np.bool_)
        mine = rules >= 0
        applies[mine] = hits[rules[mine], rows[mine]]
        reviews = rules == ALL_REVIEWS
        applies[reviews] = codes[rows[reviews]] == REVIEW
        applied = np.zeros((len(self.snoozes), self.n), dtype=np.bool_)
        applied[self.pair_snoozes[applies], rows[applies]] = True
        settled = codes.copy()
        settled[rows[applies & reviews]] = APPROVE
        return settled, applied


class SnoozeTable:
    """The snoozes in force, arranged for lookups by entity column.

    >>> from fraudstream.core.batch import TransactionBatch
    >>> table = SnoozeTable([Snooze("s1", "user", "u1", "velocity", 60_000)])
    >>> batch = TransactionBatch.from_pydict({"transaction_id": ["a", "b", "c"],
    ...     "timestamp": [0, 0, 60_000], "user_id": ["u1", "u2", "u1"], "amount": [1.0, 1.0, 1.0],
    ...     "currency": ["USD"] * 3})
    >>> match = table.match(batch, ("velocity",))
    >>> match.rows.tolist()  # not u2; not at or after until
    [[True, False, False]]
    """

    def __init__(self, snoozes: Sequence[Snooze] = ()) -> None:
        self.snoozes = tuple(snoozes)
        self._until = np.array([s.until_ms for s in self.snoozes], dtype=np.int64)
        #: Per entity kind: its distinct snoozed ids (sorted), its snoozes ordered by their id's
        #: position there, and where each position's snoozes start in that order (one past the end last).
        self._kinds: dict[str, tuple[pa.Array, npt.NDArray[np.int64], npt.NDArray[np.int64]]] = {}
        for kind in ENTITY_FIELDS:
            mine = [i for i, s in enumerate(self.snoozes) if s.entity_kind == kind]
            if not mine:
                continue
            ids = sorted({self.snoozes[i].entity_id for i in mine})
            place = {value: p for p, value in enumerate(ids)}
            positions = np.array([place[self.snoozes[i].entity_id] for i in mine], dtype=np.int64)
            order = np.argsort(positions, kind="stable")
            starts = np.searchsorted(positions[order], np.arange(len(ids) + 1))
            self._kinds[kind] = (
                pa.array(ids, type=pa.string()),
                np.array(mine, dtype=np.int64)[order],
                starts,
            )

    def __len__(self) -> int:
        return len(self.snoozes)

    def match(self, batch: TransactionBatch, codes: Sequence[str]) -> SnoozeMatch | None:
        """The snoozes that can apply to rows of ``batch`` (``codes``: the enabled rules, in the
        order of the rule hits); None when none can. One lookup per entity column, then array work
        over the rows whose entity is snoozed: no Python per row or per snooze."""
        if not self.snoozes or not len(batch):
            return None
        times = batch.timestamp_ms
        pair_snoozes: list[npt.NDArray[np.int64]] = []
        pair_rows: list[npt.NDArray[np.int64]] = []
        for kind, (ids, snoozes, starts) in self._kinds.items():
            column = batch.strings(ENTITY_FIELDS[kind])
            if column.null_count == len(column):
                continue
            where = pc.index_in(column, value_set=ids).fill_null(-1).to_numpy(zero_copy_only=False)
            rows = np.flatnonzero(where >= 0)
            if not rows.size:
                continue
            first, counts = starts[where[rows]], np.diff(starts)[where[rows]]
            # Each row once per snooze of its entity: the k-th pair of a row takes its k-th snooze.
            repeated = np.repeat(rows, counts)
            within = np.arange(repeated.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
            found = snoozes[np.repeat(first, counts) + within]
            keep = times[repeated] < self._until[found]
            pair_snoozes.append(found[keep])
            pair_rows.append(repeated[keep])
        if not pair_snoozes or not sum(p.shape[0] for p in pair_snoozes):
            return None
        matched, local = np.unique(np.concatenate(pair_snoozes), return_inverse=True)
        index = {code: i for i, code in enumerate(codes)}
        chosen = tuple(self.snoozes[i] for i in matched.tolist())
        rules = np.array(
            [ALL_REVIEWS if s.rule is None else index.get(s.rule, NOT_ENABLED) for s in chosen],
            dtype=np.int64,
        )
        return SnoozeMatch(chosen, rules, local.astype(np.int64), np.concatenate(pair_rows), len(batch))

    def to_list(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.snoozes]

    @classmethod
    def from_list(cls, items: Sequence[Mapping[str, Any]]) -> SnoozeTable:
        return cls([Snooze.from_dict(item) for item in items])
