"""What the API and the dashboard read from a running server: stored transactions, alerts and audit,
the rules, lists and models in force, keys, trends, and backtests of stored history.

Every method that asks the database or the model registry does so in a worker thread, so that the
event loop, which also carries the scoring requests, never waits on a query.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fraudstream.config import Settings
from fraudstream.core.engine import Engine
from fraudstream.core.rules import RuleSet
from fraudstream.core.rules.ruleset import Rule
from fraudstream.ml.registry import Registry
from fraudstream.runtime.decider import Decider
from fraudstream.runtime.embedded.metrics import Metrics
from fraudstream.storage import Store
from fraudstream.storage.export_pages import StoredPage, TransactionFilter

__all__ = ["Reads"]

_DAY_MS = 86_400_000


def _now_ms() -> int:
    return int(time.time() * 1000)


class Reads:
    """The read side of `ScoringService` (``service.reads``): nothing here changes what is stored or
    how the engine decides."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        metrics: Metrics,
        decider: Decider,
        engine: Callable[[], Engine],
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._decider = decider
        # A function, not the engine: the service replaces its engine when it rebuilds one.
        self._engine = engine

    # --- transactions and users ----------------------------------------------------------------

    async def transactions(
        self,
        *,
        user_id: str | None = None,
        decision: str | None = None,
        from_ms: int | None = None,
        to_ms: int | None = None,
        min_score: int | None = None,
        max_score: int | None = None,
        rule: str | None = None,
        cursor: int | None = None,
        limit: int = 50,
        order: str = "newest",
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of transactions with their decisions, filtered, and the cursor of the next page."""
        return await asyncio.to_thread(
            lambda: self._store.list_transactions(
                user_id=user_id, decision=decision, from_ms=from_ms, to_ms=to_ms, min_score=min_score,
                max_score=max_score, rule=rule, cursor=cursor, limit=limit, order=order,
            )
        )  # fmt: skip

    def transaction_pages(self, filters: TransactionFilter, order: str) -> Iterator[StoredPage]:
        """Every transaction ``filters`` select, in ``order``, page after page (an export's rows).
        Blocking: iterate it in a worker thread (a streamed answer does)."""
        return self._store.transaction_pages(filters, order)

    async def transaction(self, transaction_id: str) -> dict[str, Any] | None:
        """One transaction with its decision, alert, labels and its last 20 audit entries; None if
        it is not stored."""

        def run() -> dict[str, Any] | None:
            found = self._store.get_transaction(transaction_id)
            if found is not None:
                found["audit"] = self._store.audit_entries(subject=transaction_id, limit=20)
            return found

        return await asyncio.to_thread(run)

    async def recent_with_totals(self, count: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The newest ``count`` transactions and the all-time totals (transactions, alerts, decisions)."""

        def run() -> tuple[list[dict[str, Any]], dict[str, Any]]:
            items, _ = self._store.list_transactions(limit=count)
            return items, self._store.stats(0)

        return await asyncio.to_thread(run)

    async def user_history(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        """A user's newest transactions with their decisions."""
        return await asyncio.to_thread(self._store.user_history, user_id, limit)

    # --- alerts --------------------------------------------------------------------------------

    async def alerts(
        self, statuses: Sequence[str] | None, cursor: int, limit: int, *, newest: bool
    ) -> list[dict[str, Any]]:
        """Alerts in any of ``statuses`` (all when None), riskiest or newest first; ``cursor`` is an
        offset."""
        return await asyncio.to_thread(
            lambda: self._store.list_alerts(status=statuses, cursor=cursor, limit=limit, newest=newest)
        )

    def alert_pages(self, statuses: Sequence[str] | None, order: str) -> Iterator[StoredPage]:
        """Every alert in any of ``statuses`` (all when None), in ``order`` (``risk`` or ``newest``),
        page after page (an export's rows). Blocking: iterate it in a worker thread."""
        return self._store.alert_pages(statuses, order)

    async def alert_counts(self) -> dict[str, int]:
        """How many alerts are open, in review and closed."""
        return await asyncio.to_thread(self._store.alert_counts)

    # --- statistics ----------------------------------------------------------------------------

    async def series(self, window_ms: int, bucket_ms: int) -> list[dict[str, int]]:
        """Transactions and alerts per ``bucket_ms`` over the last ``window_ms``."""
        return await asyncio.to_thread(self._store.series, _now_ms(), window_ms, bucket_ms)

    # --- rules and lists -----------------------------------------------------------------------

    async def rules(self) -> dict[str, Any]:
        """The rule set in force (as YAML and rule by rule), the lists, the stored versions and the
        hits of each rule since start."""

        def run() -> dict[str, Any]:
            engine = self._engine()
            rules = engine.rules
            return {
                "version": rules.version,
                "yaml": rules.to_yaml(),
                "rules": [r.as_dict() for r in rules.rules],
                "lists": engine.lists.to_dict(),
                "versions": self._store.ruleset_versions(),
                "hits": dict(self._metrics.rule_hits),
            }

        return await asyncio.to_thread(run)

    def candidate_rules(self, rule: Rule) -> RuleSet:
        """The rule set in force with ``rule`` added, or replacing the rule of its code; nothing is put
        in force. Raises RuleError naming the problem and its position."""
        return self._engine().rules.with_rule(rule, self._decider.names)

    async def rule_performance(self, days: float) -> list[dict[str, Any]]:
        """Each rule in force with its hits over the last ``days`` of stored decisions (acting and
        shadow), how many of those are labelled, how many fraud, and precision = fraud / labelled
        (None until one is labelled)."""
        since = int(time.time() * 1000 - days * _DAY_MS)
        found = await asyncio.to_thread(self._store.rule_performance, since)
        items = []
        for rule in self._engine().rules.rules:
            counts = found.get(rule.code, {"hits": 0, "labelled": 0, "fraud": 0})
            precision = round(counts["fraud"] / counts["labelled"], 4) if counts["labelled"] else None
            items.append({**rule.as_dict(), **counts, "precision": precision})
        return items

    def compare_rules(
        self, candidate: RuleSet, days: float, label_delay_days: float, progress: Callable[[float], None]
    ) -> dict[str, Any]:
        """Replay the last ``days`` of stored history with the rule set in force and with
        ``candidate``: both backtest reports and how many transactions were replayed. Blocking (it
        runs as a background job); ``progress`` hears how far it got, 0 to 1."""
        from fraudstream.ml.backtest import backtest
        from fraudstream.ml.retrain import history_from_store

        history = history_from_store(self._store, int(time.time() * 1000 - days * _DAY_MS))
        progress(0.3)
        delay = int(label_delay_days * _DAY_MS)
        current = backtest(history, self._engine().rules, label_delay_ms=delay)
        progress(0.65)
        proposed = backtest(history, candidate, label_delay_ms=delay)
        return {"current": current, "candidate": proposed, "transactions": len(history.batch)}

    # --- audit trail ---------------------------------------------------------------------------

    async def audit(
        self,
        *,
        actor: str | None,
        action: str | None,
        subject: str | None,
        since_ms: int | None,
        until_ms: int | None,
        cursor: int | None,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of audit entries matching every filter given, newest first, and the next cursor."""
        return await asyncio.to_thread(
            lambda: self._store.audit_page(
                actor=actor, action=action, subject=subject, since_ms=since_ms, until_ms=until_ms,
                cursor=cursor, limit=limit,
            )
        )  # fmt: skip

    async def audit_actions(self) -> list[str]:
        """Every action the audit log holds."""
        return await asyncio.to_thread(self._store.audit_actions)

    # --- models and keys -----------------------------------------------------------------------

    async def models(self) -> dict[str, Any]:
        """The registry's versions, newest first, with role and metrics; the champion, challengers,
        the version scoring now and whether the model is pinned by ``model_path``."""
        return await asyncio.to_thread(self._models)

    def _models(self) -> dict[str, Any]:
        registry = Registry(self._settings.models_dir, self._settings.s3_endpoint_url)
        roles = registry.roles()
        versions = [
            {
                "version": meta.version,
                "kind": meta.kind,
                "created": meta.created,
                "role": Registry.role_in(roles, meta.version),
                "metrics": meta.metrics,
                "features": len(meta.feature_names),
                "training_fingerprint": meta.training_fingerprint,
            }
            for meta in reversed(registry.versions())
        ]
        model = self._engine().model
        return {
            "champion": roles.get("champion"),
            "challengers": roles.get("challengers", []),
            "scoring": model.metadata.version if model else None,
            "pinned": self._settings.model_path is not None,
            "versions": versions,
        }

    async def api_keys(self) -> list[dict[str, Any]]:
        """Every key's holder, role, creation time and revocation, oldest first; never the key."""
        return await asyncio.to_thread(self._store.list_api_keys)

    # --- webhooks ------------------------------------------------------------------------------

    async def webhooks(self) -> list[dict[str, Any]]:
        """The webhooks not deleted, oldest first, without their secrets."""
        return await asyncio.to_thread(self._store.list_webhooks)

    async def webhook_deliveries(
        self, webhook_id: str, status: str | None, limit: int
    ) -> list[dict[str, Any]] | None:
        """A webhook's deliveries, newest first, in ``status`` (any when None); None when no webhook
        ``webhook_id`` was ever created (a deleted one still lists its deliveries)."""

        def run() -> list[dict[str, Any]] | None:
            if self._store.get_webhook(webhook_id) is None:
                return None
            return self._store.webhook_deliveries(webhook_id, status, limit)

        return await asyncio.to_thread(run)
