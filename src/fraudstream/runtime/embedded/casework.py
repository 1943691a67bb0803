"""Analysts' casework on a running server: cases listed and read, assigned, commented and closed, a
closing verdict's labels learned by the engine at once (as an alert's review is)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fraudstream.core.engine import Engine
from fraudstream.core.schema import label_batch
from fraudstream.storage import Store

if TYPE_CHECKING:
    from fraudstream.runtime.kafka.bridge import KafkaBridge

__all__ = ["CaseWork"]


def _now_ms() -> int:
    return int(time.time() * 1000)


class CaseWork:
    """The service's cases (``service.cases``). Every change is audited by the store in the same
    database transaction as the change itself."""

    def __init__(
        self,
        store: Store,
        lock: threading.Lock,
        engine: Callable[[], Engine],
        kafka: Callable[[], KafkaBridge | None],
    ) -> None:
        self._store = store
        # The service's scoring lock: labels are stored and learned under it, so a snapshot never
        # holds a label the engine has not seen (or the other way round).
        self._lock = lock
        # Functions, not objects: the service replaces its engine when it rebuilds one, and its
        # Kafka bridge starts after this is made.
        self._engine = engine
        self._kafka = kafka

    async def page(
        self,
        *,
        status: Sequence[str] | None,
        assignee: str | None,
        priority: Sequence[str] | None,
        entity: str | None,
        cursor: int,
        limit: int,
    ) -> list[dict[str, Any]]:
        """A page of cases, the soonest due first, then the riskiest."""
        return await asyncio.to_thread(
            lambda: self._store.list_cases(
                now_ms=_now_ms(), status=status, assignee=assignee, priority=priority, entity=entity,
                cursor=cursor, limit=limit,
            )
        )  # fmt: skip

    async def get(self, case_id: str) -> dict[str, Any] | None:
        """One case with its alerts, comments and audit entries; None if there is none."""
        return await asyncio.to_thread(lambda: self._store.get_case(case_id, now_ms=_now_ms()))

    async def counts(self) -> dict[str, int]:
        return await asyncio.to_thread(self._store.case_counts)

    async def assign(self, case_id: str, assignee: str, actor: str) -> dict[str, Any]:
        """Give a case to the analyst ``assignee`` (status in_review). Raises KeyError, or
        CaseClosedError for a closed case."""
        return await asyncio.to_thread(
            lambda: self._store.assign_case(case_id, assignee, actor=actor, now_ms=_now_ms())
        )

    async def comment(self, case_id: str, body: str, author: str) -> dict[str, Any]:
        """Add to a case's comment thread. Raises KeyError for no such case."""
        return await asyncio.to_thread(
            lambda: self._store.comment_case(case_id, body, author=author, now_ms=_now_ms())
        )

    async def close(
        self,
        case_id: str,
        *,
        verdict: str | None,
        verdicts: Mapping[str, str],
        note: str | None,
        actor: str,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Close a case with its verdict(s): its alerts close and every transaction gets a label the
        engine learns from at once (and Kafka workers through the labels topic). The closed case and
        the labels. Raises KeyError, CaseClosedError or CaseVerdictError (naming the field)."""

        def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            with self._lock:
                closed, labels = self._store.close_case(
                    case_id, verdict=verdict, verdicts=verdicts, note=note, actor=actor, now_ms=_now_ms()
                )
                if labels:
                    self._engine().apply_labels(label_batch(labels))
                return closed, labels

        closed, labels = await asyncio.to_thread(run)
        kafka = self._kafka()
        if labels and kafka is not None:
            await asyncio.to_thread(kafka.publish_labels, labels)
        return closed, labels
