"""Feature aggregations declared in YAML (``FRAUDSTREAM_FEATURES_PATH``): read, checked, named.

A file lists aggregations, each ``{entity, function, field, window}`` and an optional ``name``;
``distinct_limit`` (optional) bounds the values a ``distinct`` keeps per entity::

    distinct_limit: 16
    aggregations:
      - {entity: merchant, function: distinct, field: device, window: 24h}   # merchant.distinct_device_24h
      - {entity: user, function: max, field: amount, window: 1h}             # user.max_amount_1h
      - {entity: user, function: sum, field: attributes.loyalty_points, window: 7d, name: points_7d}

Every problem of the file is reported at once, each naming its entry and line and what is allowed.

>>> config = with_declared_features("aggregations:\\n  - {entity: user, function: max, field: amount, "
...     "window: 1h}\\n", FeatureConfig())
>>> config.feature_names[-1]
'user.max_amount_1h'
>>> print(declared_feature_errors("aggregations:\\n  - {entity: shop, function: median, field: amount,"
...     " window: 1h}\\n", FeatureConfig())[0])
entry 1 (line 2): entity 'shop' is not one of user, card, merchant, terminal, device, ip
"""

from __future__ import annotations

import dataclasses
from typing import Final

import yaml

from fraudstream.core.features.spec import Aggregation, FeatureConfig
from fraudstream.errors import ConfigError

__all__ = ["declared_feature_errors", "with_declared_features"]

_KEYS: Final = ("name", "entity", "function", "field", "window")
_REQUIRED: Final = ("entity", "function", "field", "window")
_TOP: Final = ("aggregations", "distinct_limit")
_EXAMPLE: Final = "e.g. {entity: user, function: max, field: amount, window: 1h}"


def _parse(text: str, base: FeatureConfig) -> tuple[FeatureConfig | None, list[str]]:
    """The configuration with the file's aggregations, or None and every problem found."""
    try:
        document = yaml.safe_load(text)
        tree = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return None, [f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"]
    if document is None:
        document = {}
    if not isinstance(document, dict):
        return None, [f"the file is a mapping with 'aggregations:' (a list of entries, {_EXAMPLE})"]
    problems = [
        f"unknown top-level key {key!r}; allowed: {', '.join(_TOP)}" for key in document if key not in _TOP
    ]
    limit = document.get("distinct_limit", base.distinct_limit)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 256:
        problems.append(f"distinct_limit {limit!r} must be a whole number from 1 to 256")
        limit = base.distinct_limit
    entries = document.get("aggregations") or []
    if not isinstance(entries, list):
        return None, [*problems, f"'aggregations' must be a YAML list of entries, {_EXAMPLE}"]
    lines = _entry_lines(tree)
    seen: set[str] = set()
    aggregations = []
    for index, entry in enumerate(entries):
        where = f"entry {index + 1}" + (f" (line {lines[index]})" if index < len(lines) else "")
        found = _entry_problems(entry)
        if not found:
            aggregation = Aggregation(**{key: str(entry.get(key, "")) for key in _KEYS})
            found = base.aggregation_problems(aggregation, seen)
            aggregations.append(aggregation)
        problems += [f"{where}: {problem}" for problem in found]
    if problems:
        return None, problems
    return dataclasses.replace(base, aggregations=tuple(aggregations), distinct_limit=limit), []


def _entry_problems(entry: object) -> list[str]:
    if not isinstance(entry, dict):
        return [f"an entry is a mapping, {_EXAMPLE}"]
    found = [f"unknown key {key!r}; allowed: {', '.join(_KEYS)}" for key in entry if key not in _KEYS]
    found += [f"{key} is required" for key in _REQUIRED if key not in entry]
    found += [
        f"{key} must be text, not {entry[key]!r}"
        for key in _KEYS
        if key in entry and not isinstance(entry[key], str)
    ]
    return found


def _entry_lines(tree: yaml.Node | None) -> list[int]:
    """The 1-based line of each entry of the ``aggregations`` list, from the YAML's node tree."""
    if not isinstance(tree, yaml.MappingNode):
        return []
    for key, value in tree.value:
        if getattr(key, "value", None) == "aggregations" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def declared_feature_errors(text: str, base: FeatureConfig) -> list[str]:
    """Every problem of a declared-features file, in file order; empty when it loads onto ``base``."""
    return _parse(text, base)[1]


def with_declared_features(text: str, base: FeatureConfig, source: str = "features file") -> FeatureConfig:
    """``base`` with the aggregations the YAML ``text`` declares; ConfigError naming every problem."""
    config, problems = _parse(text, base)
    if config is None:
        count = f"{len(problems)} problems" if len(problems) > 1 else "a problem"
        raise ConfigError(f"{source} has {count}: " + "; ".join(problems))
    return config
