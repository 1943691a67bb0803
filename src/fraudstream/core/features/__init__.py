"""Feature state: per-entity sliding windows, recency, travel, first-seen flags and label feedback."""

from fraudstream.core.features.spec import (
    DEFAULT_ENTITIES,
    EntitySpec,
    FeatureConfig,
    format_duration,
    parse_delay_ms,
    parse_duration_ms,
)
from fraudstream.core.features.state import FORMAT_VERSION, FeatureMatrix, FeatureState, hash_keys

__all__ = [
    "DEFAULT_ENTITIES",
    "FORMAT_VERSION",
    "EntitySpec",
    "FeatureConfig",
    "FeatureMatrix",
    "FeatureState",
    "format_duration",
    "hash_keys",
    "parse_delay_ms",
    "parse_duration_ms",
]
