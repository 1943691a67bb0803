"""Named allow/block lists (cards, devices, IPs, merchants, countries, BINs) that rules look up."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa

from fraudstream.errors import RuleError

if TYPE_CHECKING:
    from fraudstream.core.rules.ruleset import RuleSet

__all__ = ["ListStore"]


class ListStore:
    """Lists by name; rules read them at every evaluation, so an update acts on the next batch.

    >>> lists = ListStore()
    >>> lists.declare("blocked_devices", "device_id")
    >>> lists.replace("blocked_devices", ["d9", "d1", "d9"])
    >>> lists.get("blocked_devices").to_pylist()
    ['d1', 'd9']
    """

    def __init__(self) -> None:
        self._kinds: dict[str, str] = {}
        self._values: dict[str, pa.Array] = {}

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

    def replace(self, name: str, values: Iterable[str]) -> None:
        self._known(name)
        self._values[name] = pa.array(sorted({str(v) for v in values}), type=pa.string())

    def add(self, name: str, values: Iterable[str]) -> None:
        self.replace(name, [*self.get(name).to_pylist(), *values])

    def remove(self, name: str, values: Iterable[str]) -> None:
        gone = {str(v) for v in values}
        self.replace(name, [v for v in self.get(name).to_pylist() if v not in gone])

    def get(self, name: str) -> pa.Array:
        self._known(name)
        return self._values[name]

    def names(self) -> dict[str, str]:
        """Every declared list with its kind."""
        return dict(self._kinds)

    def to_dict(self) -> dict[str, dict[str, object]]:
        return {n: {"kind": k, "values": self._values[n].to_pylist()} for n, k in sorted(self._kinds.items())}

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, object]]) -> ListStore:
        store = cls()
        for name, item in data.items():
            values = item.get("values", [])
            store.declare(name, str(item["kind"]), values if isinstance(values, list) else [])
        return store
