"""Cron expressions for the scheduled jobs: checked when the settings are read, and their next fire times.

Five fields (minute hour day-of-month month day-of-week) in UTC, as crontab(5) reads them (names
of months and days, ranges, steps, lists, and cronsim's ``L`` and ``#``); nicknames such as
``@daily`` are not accepted. Parsed by cronsim, a small library without dependencies of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cronsim import CronSim, CronSimError

from fraudstream.errors import ConfigError

__all__ = ["check_cron", "next_fire_ms", "next_fires_ms"]


def check_cron(expression: str, setting: str) -> str:
    """``expression`` with its spaces tidied, or ConfigError naming ``setting``, what is wrong and an
    example. An empty expression means "never" and is returned as ``""``.

    >>> check_cron(" 0  6 * * 1 ", "backtest_cron")
    '0 6 * * 1'
    >>> check_cron("61 * * * *", "retrain_cron")
    Traceback (most recent call last):
    ...
    fraudstream.errors.ConfigError: retrain_cron '61 * * * *' is not a cron expression (Bad minute); \
write five fields, minute hour day-of-month month day-of-week in UTC, e.g. '0 6 * * 1' (Mondays at \
06:00), or leave it empty for never
    """
    tidy = " ".join(expression.split())
    if not tidy:
        return ""
    try:
        CronSim(tidy, datetime.now(UTC))
    except CronSimError as exc:
        raise ConfigError(
            f"{setting} {expression!r} is not a cron expression ({exc}); write five fields, minute hour "
            "day-of-month month day-of-week in UTC, e.g. '0 6 * * 1' (Mondays at 06:00), or leave it "
            "empty for never"
        ) from None
    return tidy


def next_fires_ms(expression: str, after_ms: int, count: int) -> list[int]:
    """The ``count`` next times (ms since the epoch, UTC) strictly after ``after_ms`` at which
    ``expression`` fires; none for an empty expression.

    >>> monday = 1_796_601_600_000  # 2026-12-07T00:00:00Z, a Monday
    >>> [datetime.fromtimestamp(t / 1000, UTC).isoformat() for t in next_fires_ms("0 6 * * 1", monday, 2)]
    ['2026-12-07T06:00:00+00:00', '2026-12-14T06:00:00+00:00']
    >>> next_fires_ms("", monday, 3)
    []
    """
    if not expression.strip():
        return []
    # cronsim works in whole seconds and yields times after the one it starts from.
    start = datetime.fromtimestamp(after_ms // 1000, UTC)
    fires = CronSim(expression, start)
    return [int(next(fires).timestamp() * 1000) for _ in range(count)]


def next_fire_ms(expression: str, after_ms: int) -> int | None:
    """The next time after ``after_ms`` at which ``expression`` fires; None for an empty expression."""
    found = next_fires_ms(expression, after_ms, 1)
    return found[0] if found else None
