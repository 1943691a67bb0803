"""Snoozes on a running server: checked, stored (audited), put in force in the engine at once and
announced to the Kafka workers; listed and cancelled."""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from fraudstream.core.cards import card_fingerprint
from fraudstream.core.engine import Engine
from fraudstream.core.snoozes import ENTITY_FIELDS, SnoozeTable
from fraudstream.errors import FieldError, ValidationError
from fraudstream.storage import Store

if TYPE_CHECKING:
    from fraudstream.runtime.kafka.bridge import KafkaBridge

__all__ = ["MAX_SNOOZE_DAYS", "SnoozeWork", "instant_ms"]

#: The longest a snooze may last: a longer one is an allow-list entry, which a list says better.
MAX_SNOOZE_DAYS: Final = 90
_DAY_MS: Final = 86_400_000
_FINGERPRINT: Final = re.compile(r"[0-9a-f]{32}")
_INSTANT: Final = "an RFC 3339 date-time with a zone, e.g. 2026-12-24T18:00:00Z"


def _now_ms() -> int:
    return int(time.time() * 1000)


def instant_ms(field: str, text: str) -> int:
    """An RFC 3339 date-time with a zone as milliseconds; ValidationError naming ``field`` otherwise.

    >>> instant_ms("until", "2026-12-24T18:00:00Z")
    1798135200000
    >>> instant_ms("until", "2026-12-24 18:00")
    Traceback (most recent call last):
    ...
    fraudstream.errors.ValidationError: until: has no zone (got '2026-12-24 18:00'; allowed: ...)
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError([FieldError(field, "is not an RFC 3339 date-time", _INSTANT, text)]) from None
    if moment.tzinfo is None:
        raise ValidationError([FieldError(field, "has no zone", _INSTANT, text)])
    return int(moment.timestamp() * 1000)


class SnoozeWork:
    """The service's snoozes (``service.snoozes``): the engine decides with every snooze in force."""

    def __init__(
        self,
        store: Store,
        lock: threading.Lock,
        engine: Callable[[], Engine],
        kafka: Callable[[], KafkaBridge | None],
        card_key: bytes,
    ) -> None:
        self._store = store
        # The service's scoring lock: the engine's snoozes change between batches, never inside one.
        self._lock = lock
        # Functions, not objects: the service replaces its engine when it rebuilds one, and its
        # Kafka bridge starts after this is made.
        self._engine = engine
        self._kafka = kafka
        self._card_key = card_key

    def table(self) -> SnoozeTable:
        """The snoozes in force now, as stored."""
        return SnoozeTable.from_list(self._store.snoozes_in_force(_now_ms()))

    def load(self) -> None:
        """Put the stored snoozes in force in the engine (at start, and after each change)."""
        table = self.table()
        self._engine().set_snoozes(table)

    def control_message(self) -> tuple[bytes, bytes]:
        """The snoozes in force as the control topic's message for the workers."""
        from fraudstream.runtime.kafka.control import snoozes_message

        return snoozes_message(self._engine().snoozes.to_list())

    async def create(
        self,
        *,
        entity_kind: str,
        entity_id: str | None,
        card_number: str | None,
        rule: str | None,
        until: str,
        reason: str,
        actor: str,
    ) -> dict[str, Any]:
        """Check, store (audited) and put in force a snooze; ValidationError naming the field when
        the entity, the rule or the time is not allowed."""
        now = _now_ms()
        entity = self._entity(entity_kind, entity_id, card_number)
        until_ms = instant_ms("until", until)
        if until_ms <= now:
            raise ValidationError([FieldError("until", "is not in the future", "a time after now", until)])
        if until_ms > now + MAX_SNOOZE_DAYS * _DAY_MS:
            allowed = f"at most {MAX_SNOOZE_DAYS} days from now (for longer, use an allow list)"
            raise ValidationError([FieldError("until", "is too far ahead", allowed, until)])
        codes = [r.code for r in self._engine().rules.rules]
        if rule is not None and rule not in codes:
            allowed = f"a rule of the rule set in force, or none for every review decision: {codes}"
            raise ValidationError([FieldError("rule", "is not a rule in force", allowed, rule)])
        row = {
            "id": "snz_" + secrets.token_hex(8),
            "entity_kind": entity_kind,
            "entity_id": entity,
            "rule_code": rule,
            "until_ms": until_ms,
            "reason": reason,
        }

        def run() -> dict[str, Any]:
            with self._lock:
                stored = self._store.create_snooze(row, actor, now)
                self.load()
                return stored

        stored = await asyncio.to_thread(run)
        await self._announce()
        return stored

    def _entity(self, kind: str, entity_id: str | None, card_number: str | None) -> str:
        """The entity's id as transactions carry it: a card number becomes its keyed fingerprint
        here, at the edge, and is never stored."""
        if kind not in ENTITY_FIELDS:
            allowed = ", ".join(ENTITY_FIELDS)
            raise ValidationError([FieldError("entity_kind", "is not an entity kind", allowed, kind)])
        if card_number is not None:
            if kind != "card":
                raise ValidationError(
                    [FieldError("card_number", "is only for entity_kind card", "entity_id", "<card number>")]
                )
            if entity_id is not None:
                allowed = "entity_id (the card fingerprint) or card_number, not both"
                raise ValidationError([FieldError("card_number", "is given with entity_id", allowed)])
            return card_fingerprint(card_number, self._card_key).fingerprint
        if not entity_id:
            allowed = "the entity's id (for a card: its fingerprint, or send card_number)"
            raise ValidationError([FieldError("entity_id", "is required", allowed, entity_id)])
        if kind == "card" and not _FINGERPRINT.fullmatch(entity_id):
            # Never store what may be a card number: a card is named by its fingerprint only.
            allowed = "a card fingerprint (32 hex characters, as transactions show it), or send card_number"
            raise ValidationError([FieldError("entity_id", "is not a card fingerprint", allowed, "<hidden>")])
        return entity_id

    async def cancel(self, snooze_id: str, actor: str) -> dict[str, Any] | None:
        """Cancel a snooze (audited); it stops applying from the next batch. None: no such snooze."""

        def run() -> dict[str, Any] | None:
            with self._lock:
                found = self._store.cancel_snooze(snooze_id, actor, _now_ms())
                if found is not None:
                    self.load()
                return found

        found = await asyncio.to_thread(run)
        if found is not None:
            await self._announce()
        return found

    async def list(self, *, everything: bool) -> list[dict[str, Any]]:
        """Snoozes in force (soonest to end first), or with ``everything`` all of them, newest first."""
        return await asyncio.to_thread(lambda: self._store.list_snoozes(_now_ms(), everything=everything))

    async def _announce(self) -> None:
        kafka = self._kafka()
        if kafka is not None:
            await asyncio.to_thread(kafka.announce, [self.control_message()])
