"""What the feature state computes: entities, windows, and the stable names of every feature."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from fraudstream.errors import ConfigError

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "DEFAULT_ENTITIES",
    "DISTINCT_FIELDS",
    "ENTITY_COLUMNS",
    "Aggregation",
    "EntitySpec",
    "FeatureConfig",
    "format_duration",
    "parse_delay_ms",
    "parse_duration_ms",
]

_UNITS_MS: Final = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")

#: The transaction column that keys each entity kind.
ENTITY_COLUMNS: Final = {
    "user": "user_id",
    "card": "card_fingerprint",
    "merchant": "merchant_id",
    "terminal": "terminal_id",
    "device": "device_id",
    "ip": "ip",
}


def parse_duration_ms(text: str) -> int:
    """Turn a window name such as ``30s``, ``10m``, ``24h`` or ``7d`` into milliseconds.

    >>> parse_duration_ms("10m"), parse_duration_ms("7d")
    (600000, 604800000)
    """
    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(
            f"window {text!r}: expected a whole number and a unit s, m, h or d, e.g. '30s' or '7d'"
        )
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_delay_ms(text: str) -> int:
    """A delay: a duration as for windows, or ``0s`` (also ``0``) for none.

    >>> parse_delay_ms("0s"), parse_delay_ms("7d")
    (0, 604800000)
    """
    return 0 if text.strip() in ("0", "0s", "0m", "0h", "0d") else parse_duration_ms(text.strip())


def format_duration(ms: int) -> str:
    """A whole number of milliseconds as a duration in its largest exact unit (``0s`` for none).

    >>> format_duration(604_800_000), format_duration(90_000), format_duration(0)
    ('7d', '90s', '0s')
    """
    if ms < 0 or ms % 1000:
        raise ConfigError(f"duration of {ms} ms: give a whole, non-negative number of seconds")
    for unit in ("d", "h", "m", "s"):
        if ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}" if ms else "0s"
    raise AssertionError("unreachable: every whole number of seconds has a unit")


#: What a declared aggregation can compute over its window (see `Aggregation`).
AGGREGATE_FUNCTIONS: Final = ("count", "sum", "mean", "max", "distinct")
#: The columns ``distinct`` can count the different values of, by the name an aggregation gives them
#: (an ``attributes.NAME`` holding text can be counted too).
DISTINCT_FIELDS: Final = {
    **ENTITY_COLUMNS,
    "country": "country",
    "currency": "currency",
    "channel": "channel",
    "merchant_category": "merchant_category",
    "card_bin": "card_bin",
}
_ATTRIBUTE_FIELD = re.compile(r"^attributes\.([A-Za-z_][A-Za-z0-9_]{0,63})$")
_MEASURE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Aggregation:
    """A feature declared in configuration rather than code: ``function`` of ``field`` over the
    entity's events of the last ``window``, named ``entity.FUNCTION_FIELD_WINDOW`` unless ``name``
    gives the part after the entity.

    ``field`` is ``amount`` or a numeric ``attributes.NAME`` for count, sum, mean and max (count:
    the events that have the field), and one of `DISTINCT_FIELDS` or a text ``attributes.NAME`` for
    distinct. Like the entity windows these include the current event, and count, sum, mean and max
    use the state's buckets (``FeatureConfig.buckets``); distinct counts exactly, by event time,
    the different values of the events in ``(clock - window, clock]`` (clock: the entity's latest
    event time), up to ``FeatureConfig.distinct_limit`` values and then reads that limit.

    >>> Aggregation("merchant", "distinct", "device", "24h").feature_name
    'merchant.distinct_device_24h'
    >>> Aggregation("user", "sum", "attributes.loyaltyPoints", "1h").feature_name
    'user.sum_attributes_loyalty_points_1h'
    """

    entity: str
    function: str
    field: str
    window: str
    name: str = ""

    @property
    def attribute(self) -> str | None:
        """The name of the extra field it reads, or None for a column of the schema."""
        match = _ATTRIBUTE_FIELD.match(self.field)
        return match.group(1) if match else None

    @property
    def feature_name(self) -> str:
        if self.name:
            return f"{self.entity}.{self.name}"
        field = self.field
        attribute = self.attribute
        if attribute is not None:
            field = "attributes_" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", attribute).lower()
        return f"{self.entity}.{self.function}_{field}_{self.window}"

    @property
    def window_ms(self) -> int:
        return parse_duration_ms(self.window)

    def problems(self) -> list[str]:
        """What is wrong with it, each saying what is allowed (empty when it is sound)."""
        found = []
        if self.entity not in ENTITY_COLUMNS:
            found.append(f"entity {self.entity!r} is not one of {', '.join(ENTITY_COLUMNS)}")
        if self.function not in AGGREGATE_FUNCTIONS:
            found.append(f"function {self.function!r} is not one of {', '.join(AGGREGATE_FUNCTIONS)}")
        elif self.function == "distinct":
            if self.field not in DISTINCT_FIELDS and self.attribute is None:
                found.append(
                    f"field {self.field!r}: distinct counts one of {', '.join(DISTINCT_FIELDS)} or an "
                    "attributes.NAME"
                )
        elif self.field != "amount" and self.attribute is None:
            found.append(
                f"field {self.field!r}: {self.function} takes amount or a numeric attributes.NAME "
                "(an extra field the client sends)"
            )
        try:
            parse_duration_ms(self.window)
        except ConfigError as exc:
            found.append(str(exc))
        if self.name and not _MEASURE.match(self.name):
            found.append(f"name {self.name!r} must be lower_snake_case, e.g. distinct_devices_24h")
        return found

    def to_dict(self) -> dict[str, str]:
        found = {"entity": self.entity, "function": self.function, "field": self.field, "window": self.window}
        if self.name:
            found["name"] = self.name
        return found


@dataclass(frozen=True)
class EntitySpec:
    """One entity kind whose history the state keeps: its name, key column and windows."""

    name: str
    windows: tuple[str, ...]
    labels: bool = False

    @property
    def column(self) -> str:
        return ENTITY_COLUMNS[self.name]

    @property
    def window_ms(self) -> tuple[int, ...]:
        return tuple(parse_duration_ms(w) for w in self.windows)

    @property
    def longest(self) -> str:
        return max(self.windows, key=parse_duration_ms)


DEFAULT_ENTITIES: Final = (
    EntitySpec("user", ("30s", "10m", "1h", "24h", "7d", "30d")),
    EntitySpec("card", ("10m", "1h", "24h", "30d")),
    EntitySpec("merchant", ("1h", "24h", "7d", "28d"), labels=True),
    EntitySpec("terminal", ("1h", "24h", "7d", "28d"), labels=True),
    EntitySpec("device", ("10m", "1h", "24h", "30d")),
    EntitySpec("ip", ("10m", "1h", "24h")),
)


@dataclass(frozen=True)
class FeatureConfig:
    """Which entities and windows the state keeps, and its bounds.

    ``buckets`` splits every window into that many equal buckets: a window of length W covers the
    bucket holding the entity's latest event and the ``buckets - 1`` before it, i.e. between
    ``W * (buckets - 1) / buckets`` and ``W`` of history. More buckets: sharper edges, more bytes.

    Label feedback (entities with ``labels=True``) counts confirmed frauds among the entity's
    transactions of each label window **ending ``label_delay`` ago**: at time t, the window W covers
    ``[t - label_delay - W, t - label_delay]`` (by the same buckets), so that with labels arriving
    about ``label_delay`` after their transaction the window holds transactions whose labels are in,
    rather than recent ones whose labels are not yet known. The delay is shared by the engine that
    serves and the training that replays history (a model records the one it was trained with).

    >>> config = FeatureConfig()
    >>> "user.count_30s" in config.feature_names and "geo.speed_kmh" in config.feature_names
    True
    """

    entities: tuple[EntitySpec, ...] = DEFAULT_ENTITIES
    buckets: int = 6
    label_windows: tuple[str, ...] = ("1d", "7d", "28d")
    #: How long after a transaction its fraud label is expected to be known (0s: at once).
    label_delay: str = "0s"
    #: An entity with no event for this long is forgotten (its state slot is reused).
    idle_expiry: str = "45d"
    #: Events up to this far behind an entity's latest event are "late" but fully counted; later ones
    #: are scored and counted in the windows that still cover them, and flagged.
    allowed_lateness: str = "10m"
    recent_merchants: int = 8
    recent_terminals: int = 8
    recent_devices: int = 4
    recent_countries: int = 4
    #: Features declared in configuration (``FRAUDSTREAM_FEATURES_PATH``), after the built-in ones.
    aggregations: tuple[Aggregation, ...] = ()
    #: The most different values a declared ``distinct`` aggregation keeps per entity (and reads).
    distinct_limit: int = 8
    feature_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not 2 <= self.buckets <= 64:
            raise ConfigError(f"buckets={self.buckets}: allowed 2..64 buckets per window")
        names = [e.name for e in self.entities]
        if len(set(names)) != len(names) or "user" not in names:
            raise ConfigError(f"entities {names}: each kind at most once, and 'user' is required")
        for e in self.entities:
            if e.name not in ENTITY_COLUMNS:
                raise ConfigError(f"entity {e.name!r}: allowed kinds are {sorted(ENTITY_COLUMNS)}")
            if not e.windows:
                raise ConfigError(f"entity {e.name!r}: give at least one window")
            e.window_ms  # noqa: B018 - validates every window name
        for name in (self.idle_expiry, self.allowed_lateness, *self.label_windows):
            parse_duration_ms(name)
        if any(e.labels for e in self.entities) and not self.label_windows:
            raise ConfigError("entities track labels, so give at least one label window")
        for w in self.label_windows:
            if parse_duration_ms(w) % self.buckets:
                raise ConfigError(f"label window {w!r} must split into {self.buckets} whole milliseconds")
        longest = max(max(e.window_ms) for e in self.entities)
        labels_reach = parse_delay_ms(self.label_delay) + parse_delay_ms(self.longest_label_window)
        if parse_duration_ms(self.idle_expiry) <= max(longest, labels_reach):
            raise ConfigError(
                f"idle_expiry={self.idle_expiry} (an entity idle that long is forgotten) must be longer than "
                f"the longest window and than the label delay plus the longest label window "
                f"({self.label_delay} + {self.longest_label_window}): shorten the label delay"
            )
        self._check_aggregations()
        object.__setattr__(self, "feature_names", tuple(self._names()))

    def _check_aggregations(self) -> None:
        if not 1 <= self.distinct_limit <= 256:
            raise ConfigError(f"distinct_limit={self.distinct_limit}: allowed 1..256 values per entity")
        seen: set[str] = set()
        problems = []
        for number, aggregation in enumerate(self.aggregations, 1):
            problems += [f"aggregation {number}: {p}" for p in self.aggregation_problems(aggregation, seen)]
        if problems:
            raise ConfigError("; ".join(problems))

    def aggregation_problems(self, aggregation: Aggregation, seen: set[str]) -> list[str]:
        """What keeps ``aggregation`` from being computed by this state, each problem saying what is
        allowed; ``seen``: the names of the aggregations declared before it (its name is added)."""
        found = aggregation.problems()
        if not found and self.entity(aggregation.entity) is None:
            kept = ", ".join(e.name for e in self.entities)
            found.append(f"entity {aggregation.entity!r} is not among the entities this state keeps ({kept})")
        if found:
            return found
        name = aggregation.feature_name
        builtin = name in USER_EXTRA_FEATURES or any(
            name in self.entity_feature_names(e) for e in self.entities
        )
        if builtin or name in seen:
            found.append(f"feature {name!r} is already defined: give this one another name")
        seen.add(name)
        window = aggregation.window_ms
        if aggregation.function != "distinct" and window % self.buckets:
            found.append(f"window {aggregation.window!r} must split into {self.buckets} whole milliseconds")
        if window >= parse_duration_ms(self.idle_expiry):
            found.append(f"window {aggregation.window!r} must be shorter than idle_expiry={self.idle_expiry}")
        return found

    def entity(self, name: str) -> EntitySpec | None:
        return next((e for e in self.entities if e.name == name), None)

    def entity_feature_names(self, spec: EntitySpec) -> list[str]:
        """Feature names of one entity, in the column order the kernel writes them."""
        e = spec.name
        names = []
        for w in spec.windows:
            names += [f"{e}.count_{w}", f"{e}.amount_sum_{w}", f"{e}.amount_mean_{w}", f"{e}.amount_max_{w}"]
        names += [
            f"{e}.seconds_since_last",
            f"{e}.amount_ratio_{spec.longest}",
            f"{e}.amount_zscore_{spec.longest}",
        ]
        if spec.labels:
            for w in self.label_windows:
                names += [f"{e}.fraud_count_{w}", f"{e}.fraud_rate_{w}"]
            names += [f"{e}.seconds_since_first_fraud", f"{e}.seconds_since_last_fraud"]
        return names

    @property
    def longest_label_window(self) -> str:
        return max(self.label_windows, key=parse_duration_ms) if self.label_windows else "0s"

    def label_rings(self) -> tuple[tuple[int, int], ...]:
        """Per label window, its bucket length (ms) and how many buckets its ring keeps: the window's
        ``buckets`` ending at ``t - label_delay``, the buckets of the delay after them, and one spare.

        >>> FeatureConfig(label_delay="7d").label_rings()[:2]
        ((14400000, 49), (100800000, 13))
        """
        delay = parse_delay_ms(self.label_delay)
        rings = []
        for w in self.label_windows:
            length = parse_duration_ms(w) // self.buckets
            rings.append((length, self.buckets + -(-delay // length) + 1))
        return tuple(rings)

    def _names(self) -> list[str]:
        names = ["amount", "hour_of_day"]
        for spec in self.entities:
            names += self.entity_feature_names(spec)
        names += USER_EXTRA_FEATURES
        names += [a.feature_name for a in self.aggregations]
        return names

    def to_dict(self) -> dict[str, object]:
        return {
            "entities": [
                {"name": e.name, "windows": list(e.windows), "labels": e.labels} for e in self.entities
            ],
            "buckets": self.buckets,
            "label_windows": list(self.label_windows),
            "label_delay": self.label_delay,
            "idle_expiry": self.idle_expiry,
            "allowed_lateness": self.allowed_lateness,
            "recent": [
                self.recent_merchants,
                self.recent_terminals,
                self.recent_devices,
                self.recent_countries,
            ],
            # Only when declared: a state without them has the header of format 4, whose snapshots
            # then still restore.
            **(
                {
                    "aggregations": [a.to_dict() for a in self.aggregations],
                    "distinct_limit": self.distinct_limit,
                }
                if self.aggregations
                else {}
            ),
        }


#: Per-user features that look across kinds: first-seen flags, distinct counts and travel.
USER_EXTRA_FEATURES: Final = [
    "user.new_merchant",
    "user.new_terminal",
    "user.new_device",
    "user.new_country",
    "user.distinct_merchants_24h",
    "user.distinct_countries_24h",
    "geo.distance_km",
    "geo.speed_kmh",
]
