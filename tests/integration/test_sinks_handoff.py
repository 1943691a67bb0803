"""Rows a sink takes from memory right after a write are the rows it would read back from the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from factories import transaction
from fraudstream.config import Settings
from fraudstream.runtime.decider import Decider
from fraudstream.sinks.runner import Handoff
from fraudstream.storage import Store
from fraudstream.storage.rows import decision_row, transaction_rows_of

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_handoff_holds_exactly_what_the_log_reads_back(
    database: str, tmp_path: Path, postgres_url: str
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}" if database == "sqlite" else postgres_url
    store = Store(url)
    store.upgrade()
    settings = Settings(demo=True, data_dir=tmp_path)
    decider = Decider(settings.engine_config(), settings.card_key_bytes)
    engine = decider.engine()
    records = [
        transaction("h1", "u1", 40.0, card_number="4242424242424242", channel="online"),
        transaction("h2", "u1", 75_000.0, loyalty={"tier": "gold"}),  # an alert, with an extra field
        transaction("h3", "u2", 12.5, lat=52.5, lon=13.4, country="DE"),
    ]
    for round_number in range(2):  # the second write's positions follow the first's
        batch = decider.validate(
            [{**r, "transaction_id": f"{r['transaction_id']}-{round_number}"} for r in records],
            received_at_ms=1_800_000_000_000,
        ).batch
        decided = decider.decide(engine, batch)
        transaction_rows = transaction_rows_of(batch, ["hash"] * len(batch), [1_800_000_000_000] * len(batch))
        features = decided.key_feature_rows()
        decision_rows = [
            decision_row(record, features[i], 1.5, 1_800_000_000_001)
            for i, record in enumerate(decided.to_records())
        ]
        written = store.write_scored(transaction_rows, decision_rows, [])
        assert written is not None
        first, last = written
        assert last - first + 1 == len(records)
        handoff = Handoff(first, last, transaction_rows, decision_rows)
        for alerts_only in (False, True):
            _, read = store.log_after(first - 1, 100, until=last, alerts_only=alerts_only)
            assert handoff.values(alerts_only) == read
        assert len(handoff.values(True)) == 1
    again = store.write_scored(transaction_rows, decision_rows, [])  # all seen before: no positions
    assert again is None
    store.close()
