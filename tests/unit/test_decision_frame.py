"""`DecisionBatch.to_pandas` is `to_records` as a DataFrame, typed even when the batch is empty."""

from __future__ import annotations

from factories import transaction_batch
from fraudstream.core.engine import RECORD_FIELDS, Engine


def test_the_frame_has_the_columns_and_values_of_the_records() -> None:
    decisions = Engine().score(
        transaction_batch(
            [
                {"transaction_id": "t1", "timestamp": 0, "user_id": "u1", "amount": 50.0},
                {"transaction_id": "t2", "timestamp": 60_000, "user_id": "u1", "amount": 5000.0},
            ]
        )
    )
    records = decisions.to_records()
    frame = decisions.to_pandas()
    assert tuple(records[0]) == RECORD_FIELDS == tuple(frame.columns)
    for name in RECORD_FIELDS:
        if name != "probability":  # None in a record, NaN in the frame
            assert frame[name].tolist() == [r[name] for r in records], name
    assert frame["probability"].isna().all()


def test_an_empty_batch_gives_an_empty_frame_with_typed_columns() -> None:
    empty = transaction_batch([{"transaction_id": "t1", "timestamp": 0, "user_id": "u1", "amount": 5.0}])
    frame = Engine().score(empty.slice(0, 0)).to_pandas()
    assert len(frame) == 0
    assert frame["score"].dtype == "int64"
    assert frame["probability"].dtype == "float64"
    assert frame["is_alert"].dtype == "bool"
