"""Feature state: per-entity sliding windows, recency, travel, first-seen flags and label feedback."""

from fraudstream.core.features.spec import DEFAULT_ENTITIES, EntitySpec, FeatureConfig, parse_duration_ms
from fraudstream.core.features.state import FORMAT_VERSION, FeatureMatrix, FeatureState, hash_keys

__all__ = [
    "DEFAULT_ENTITIES",
    "FORMAT_VERSION",
    "EntitySpec",
    "FeatureConfig",
    "FeatureMatrix",
    "FeatureState",
    "hash_keys",
    "parse_duration_ms",
]
