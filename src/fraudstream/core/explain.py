"""Human sentences for reasons: feature values when a model contribution becomes a reason, and the
length every reason text keeps to."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Final

__all__ = ["MAX_REASON_CHARS", "clip_reason", "describe_feature", "window_words"]

#: The longest reason text: a reason is a line in an alert, and it is stored with every decision, so
#: nothing a rule author writes may make it longer.
MAX_REASON_CHARS: Final = 300

_WINDOW_UNITS: Final = {"s": "second", "m": "minute", "h": "hour", "d": "day"}
_ENTITY_WORDS: Final = {
    "user": "user",
    "card": "card",
    "merchant": "merchant",
    "terminal": "terminal",
    "device": "device",
    "ip": "IP address",
}
_WINDOWED = re.compile(r"^(?P<entity>[a-z]+)\.(?P<measure>[a-z_]+?)_(?P<window>[0-9]+[smhd])$")


def window_words(window: str) -> str:
    """``"30s"`` → ``"30 seconds"``, ``"24h"`` → ``"24 hours"``, ``"1h"`` → ``"1 hour"``.

    >>> window_words("30d"), window_words("1h")
    ('30 days', '1 hour')
    """
    number, unit = int(window[:-1]), _WINDOW_UNITS[window[-1]]
    return f"{number} {unit}{'' if number == 1 else 's'}"


_FLAGS: Final = {
    "user.new_merchant": "merchant",
    "user.new_terminal": "terminal",
    "user.new_device": "device",
    "user.new_country": "country",
}


def _flag(thing: str) -> Callable[[float], str]:
    return lambda value: f"{'new' if value >= 0.5 else 'known'} {thing} for this user"


_FIXED: Final[dict[str, Callable[[float], str]]] = {
    "amount": lambda value: f"amount {value:,.2f}",
    "hour_of_day": lambda value: f"made at {value:02.0f}:00 UTC",
    "geo.speed_kmh": lambda value: f"travel at {value:,.0f} km/h from the previous location",
    "geo.distance_km": lambda value: f"{value:,.0f} km from the previous location",
    "user.distinct_merchants_24h": lambda value: f"{value:.0f} different merchants in 24 hours",
    "user.distinct_countries_24h": lambda value: f"{value:.0f} different countries in 24 hours",
    **{name: _flag(thing) for name, thing in _FLAGS.items()},
}

_TEMPLATES: Final = {
    "count": "{value:.0f} transactions {per} in {span}",
    "amount_sum": "{value:,.2f} spent {per} in {span}",
    "amount_mean": "average amount {value:,.2f} {per} in {span}",
    "amount_max": "largest amount {value:,.2f} {per} in {span}",
    "amount_ratio": "amount {value:.0f}x this {entity}'s {adjective} average",
    "amount_zscore": "amount {value:.1f} standard deviations from this {entity}'s {span} average",
    "fraud_rate": "{value:.0%} of this {entity}'s transactions in {span} confirmed as fraud",
    "fraud_count": "{value:.0f} confirmed frauds at this {entity} in {span}",
}


def clip_reason(text: str) -> str:
    """``text`` cut to ``MAX_REASON_CHARS`` characters, ending with "…" when it was longer.

    >>> clip_reason("amount 12.00")
    'amount 12.00'
    >>> clipped = clip_reason("x" * 1_000_000)
    >>> len(clipped), clipped[-2:]
    (300, 'x…')
    """
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def describe_feature(name: str, value: float) -> str:
    """One short sentence about a feature's value for one transaction.

    >>> describe_feature("user.amount_ratio_30d", 38.2)
    "amount 38x this user's 30-day average"
    >>> describe_feature("user.count_30s", 7)
    '7 transactions by this user in 30 seconds'
    >>> describe_feature("terminal.fraud_rate_7d", 0.25)
    "25% of this terminal's transactions in 7 days confirmed as fraud"
    """
    if math.isnan(value):
        return clip_reason(f"{name} unknown")
    return clip_reason(_describer(name)(value))


def _elapsed(seconds: float) -> str:
    """Seconds in the largest unit that keeps them readable.

    >>> _elapsed(90), _elapsed(7_200), _elapsed(3 * 86_400)
    ('90 s', '2.0 hours', '3.0 days')
    """
    if seconds < 3_600:
        return f"{seconds:,.0f} s"
    if seconds < 86_400:
        return f"{seconds / 3_600:.1f} hours"
    return f"{seconds / 86_400:.1f} days"


@functools.lru_cache(maxsize=1024)
def _describer(name: str) -> Callable[[float], str]:
    """The sentence maker of one feature name: its name parsed once, not for every reason."""
    fixed = _FIXED.get(name)
    if fixed is not None:
        return fixed
    if name.endswith((".seconds_since_first_fraud", ".seconds_since_last_fraud")):
        kind, measure = name.split(".", 1)
        entity = _ENTITY_WORDS.get(kind, kind)
        which = "first" if measure.endswith("first_fraud") else "latest"
        return lambda value: f"{_elapsed(value)} since this {entity}'s {which} recent confirmed fraud"
    if name.endswith(".seconds_since_last"):
        kind = name.split(".", 1)[0]
        entity = _ENTITY_WORDS.get(kind, kind)
        return lambda value: f"{value:,.0f} s since this {entity}'s previous transaction"
    match = _WINDOWED.match(name)
    template = _TEMPLATES.get(match["measure"]) if match is not None else None
    if match is None or template is None:
        return lambda value: f"{name} = {value:,.4g}"
    entity = _ENTITY_WORDS.get(match["entity"], match["entity"])
    window = match["window"]
    per = {"user": "by this user", "card": "on this card"}.get(match["entity"], f"at this {entity}")
    words = {
        "per": per,
        "span": window_words(window),
        "entity": entity,
        "adjective": f"{window[:-1]}-{_WINDOW_UNITS[window[-1]]}",
    }
    return lambda value: template.format(value=value, **words)
