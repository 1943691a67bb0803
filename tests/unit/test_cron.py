"""Cron fire times of the scheduled jobs against a minute-by-minute reference, and bad expressions
refused naming their setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.cron import check_cron, next_fire_ms, next_fires_ms
from fraudstream.errors import ConfigError

#: Each expression with what it means, written plainly: (minute, hour, day of month, weekday Mon=0).
MEANINGS = {
    "0 6 * * 1": lambda t: t.minute == 0 and t.hour == 6 and t.weekday() == 0,
    "*/15 * * * *": lambda t: t.minute % 15 == 0,
    "30 2 1 * *": lambda t: (t.minute, t.hour, t.day) == (30, 2, 1),
    "0 0 * * 6,0": lambda t: (t.minute, t.hour) == (0, 0) and t.weekday() in (5, 6),
    "5 4-6 * * *": lambda t: t.minute == 5 and 4 <= t.hour <= 6,
    "0 0 L * *": lambda t: (t.minute, t.hour) == (0, 0) and (t + timedelta(days=1)).day == 1,
}


def _reference(meaning: object, after: datetime, count: int) -> list[int]:
    """The first ``count`` whole minutes strictly after ``after`` that ``meaning`` accepts."""
    found = []
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while len(found) < count:
        if meaning(minute):  # type: ignore[operator]
            found.append(int(minute.timestamp() * 1000))
        minute += timedelta(minutes=1)
    return found


@settings(max_examples=30, deadline=None)
@given(
    expression=st.sampled_from(sorted(MEANINGS)),
    after=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
)
def test_next_fire_times_equal_a_minute_by_minute_reference(expression: str, after: datetime) -> None:
    after = after.replace(tzinfo=UTC)
    after_ms = int(after.timestamp() * 1000)
    assert next_fires_ms(expression, after_ms, 3) == _reference(MEANINGS[expression], after, 3)


def test_a_fire_time_is_strictly_after_the_moment_given() -> None:
    six = int(datetime(2026, 12, 7, 6, 0, tzinfo=UTC).timestamp() * 1000)  # a Monday, 06:00
    assert next_fire_ms("0 6 * * 1", six - 1) == six
    assert next_fire_ms("0 6 * * 1", six) == six + 7 * 86_400_000
    assert next_fire_ms("", six) is None


@pytest.mark.parametrize(
    "bad", ["61 * * * *", "* * *", "0 6 * * mon-xyz", "every monday", "0 25 * * *", "@daily"]
)
def test_a_bad_expression_is_refused_naming_its_setting(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^backtest_cron '.*' is not a cron expression \(.+\); write five"):
        check_cron(bad, "backtest_cron")
