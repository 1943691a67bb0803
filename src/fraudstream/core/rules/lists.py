"""Named allow/block lists (cards, devices, IPs, merchants, countries, BINs) that rules look up.

An item may expire: it matches a transaction only while the transaction's own time (its event
time, not a clock) is before the item's expiry, so a replay or a backtest of the same events
matches exactly what the live engine matched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.errors import RuleError

if TYPE_CHECKING:
    from fraudstream.core.rules.ruleset import RuleSet

__all__ = ["NEVER", "ListStore", "ListsAt"]

#: The expiry of an item that never expires (milliseconds).
NEVER: Final = np.iinfo(np.int64).max


class ListStore:
    """Lists by name; rules read them at every evaluation, so an update acts on the next batch.

    >>> lists = ListStore()
    >>> lists.declare("blocked_devices", "device_id")
    >>> lists.replace("blocked_devices", ["d9", "d1", "d9"], expiries={"d9": 1_000})
    >>> lists.get("blocked_devices").to_pylist(), lists.expiries("blocked_devices")
    (['d1', 'd9'], {'d9': 1000})
    >>> at = lists.at(np.array([999, 1_000, 1_000]))  # each row's event time
    >>> at.is_in("blocked_devices", pa.array(["d9", "d9", "d1"])).to_pylist()
    [True, False, True]
    """

    def __init__(self) -> None:
        self._kinds: dict[str, str] = {}
        self._values: dict[str, pa.Array] = {}
        #: Per list, each value's expiry (ms, ``NEVER`` for none) in the order of its values; None
        #: when no item of the list expires (the lookup then needs no times).
        self._expiries: dict[str, npt.NDArray[np.int64] | None] = {}

    def declare(self, name: str, kind: str, values: Iterable[str] = ()) -> None:
        """Make ``name`` known (``kind`` names the column it is meant for); keeps existing contents."""
        self._kinds[name] = kind
        if name not in self._values:
            self.replace(name, values)

    def declare_from(self, rules: RuleSet) -> None:
        for name, declaration in rules.lists.items():
            self.declare(name, declaration.kind, declaration.values)

    @classmethod
    def from_ruleset(cls, rules: RuleSet) -> ListStore:
        store = cls()
        store.declare_from(rules)
        return store

    def _known(self, name: str) -> None:
        if name not in self._kinds:
            raise RuleError(name, f"unknown list {name!r}; declared lists: {sorted(self._kinds)}")

    def replace(self, name: str, values: Iterable[str], expiries: Mapping[str, int] | None = None) -> None:
        """The list's whole contents; ``expiries`` gives items that expire their expiry (ms), the
        others never do."""
        self._known(name)
        ordered = sorted({str(v) for v in values})
        self._values[name] = pa.array(ordered, type=pa.string())
        timed = {str(k): int(v) for k, v in (expiries or {}).items()}
        if any(v in timed for v in ordered):
            self._expiries[name] = np.array([timed.get(v, NEVER) for v in ordered], dtype=np.int64)
        else:
            self._expiries[name] = None

    def add(self, name: str, values: Iterable[str], expiries: Mapping[str, int] | None = None) -> None:
        """Add items (an item already there takes the expiry given now: none means never)."""
        added = [str(v) for v in values]
        timed = {k: v for k, v in self.expiries(name).items() if k not in added}
        timed.update({str(k): int(v) for k, v in (expiries or {}).items()})
        self.replace(name, [*self.get(name).to_pylist(), *added], timed)

    def remove(self, name: str, values: Iterable[str]) -> None:
        gone = {str(v) for v in values}
        timed = {k: v for k, v in self.expiries(name).items() if k not in gone}
        self.replace(name, [v for v in self.get(name).to_pylist() if v not in gone], timed)

    def purge(self, name: str, before_ms: int) -> list[str]:
        """Drop the items that expired before ``before_ms``; the items dropped. (The runtime calls
        it with its clock when a list changes; the core itself never does.)"""
        gone = sorted(k for k, v in self.expiries(name).items() if v < before_ms)
        if gone:
            self.remove(name, gone)
        return gone

    def get(self, name: str) -> pa.Array:
        """Every item of the list, expired or not, sorted."""
        self._known(name)
        return self._values[name]

    def expiries(self, name: str) -> dict[str, int]:
        """The items of the list that expire, with their expiry (ms)."""
        self._known(name)
        times = self._expiries[name]
        if times is None:
            return {}
        values = self._values[name].to_pylist()
        return {v: int(t) for v, t in zip(values, times.tolist()) if t != NEVER}

    def is_in(self, name: str, column: pa.Array) -> pa.BooleanArray:
        """Whether each row's value is an item of the list, whatever the items' expiries (``at``
        gives the lookup at each row's time)."""
        return pc.is_in(column, value_set=self.get(name))

    def at(self, times_ms: npt.NDArray[np.int64]) -> ListsAt:
        """The lists as rows at these event times see them: an item matches a row only while the
        row's time is before the item's expiry."""
        return ListsAt(self, times_ms)

    def timed(self, name: str) -> tuple[pa.Array, npt.NDArray[np.int64] | None]:
        """The list's items and their expiries in the same order (None: none expires)."""
        self._known(name)
        return self._values[name], self._expiries[name]

    def names(self) -> dict[str, str]:
        """Every declared list with its kind."""
        return dict(self._kinds)

    def to_dict(self) -> dict[str, dict[str, object]]:
        return {
            n: {"kind": k, "values": self._values[n].to_pylist(), "expiries": self.expiries(n)}
            for n, k in sorted(self._kinds.items())
        }

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, object]]) -> ListStore:
        store = cls()
        for name, item in data.items():
            values = item.get("values", [])
            expiries = item.get("expiries")
            store.declare(name, str(item["kind"]))
            store.replace(
                name,
                values if isinstance(values, list) else [],
                expiries if isinstance(expiries, dict) else None,
            )
        return store


class ListsAt:
    """The lists seen from a batch's rows, each at its own event time (``ListStore.at``)."""

    def __init__(self, store: ListStore, times_ms: npt.NDArray[np.int64]) -> None:
        self._store = store
        self._times = times_ms

    def get(self, name: str) -> pa.Array:
        return self._store.get(name)

    def is_in(self, name: str, column: pa.Array) -> pa.BooleanArray:
        """Whether each row's value is an item of the list that has not expired at the row's time:
        one hash lookup for the batch (``index_in``), then one comparison of expiries with times."""
        values, expiries = self._store.timed(name)
        if expiries is None:
            return pc.is_in(column, value_set=values)
        where = pc.index_in(column, value_set=values).fill_null(-1).to_numpy(zero_copy_only=False)
        found = where >= 0
        rows = np.flatnonzero(found)
        found[rows] = self._times[rows] < expiries[where[rows]]
        return pa.array(found, type=pa.bool_())
