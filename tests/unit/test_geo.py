"""Great-circle distance: known city pairs, vector and compiled scalar agree, and the place protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudstream.core.geo import DictPlaceLookup, PlaceLookup, haversine_km, haversine_km_scalar

lats = st.floats(-90, 90)
lons = st.floats(-180, 180)


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ((51.5074, -0.1278), (48.8566, 2.3522), 343.5),  # London - Paris
        ((40.7128, -74.0060), (51.5074, -0.1278), 5570.2),  # New York - London
        ((0.0, 0.0), (0.0, 180.0), math.pi * 6371.0088),  # half the equator
    ],
)
def test_distances_between_known_places(a: tuple[float, float], b: tuple[float, float], km: float) -> None:
    assert float(haversine_km(*a, *b)) == pytest.approx(km, rel=2e-3)
    assert haversine_km_scalar(*a, *b) == pytest.approx(km, rel=2e-3)


@given(st.lists(st.tuples(lats, lons, lats, lons), min_size=1, max_size=50))
def test_the_vectorized_and_compiled_versions_agree(points: list[tuple[float, float, float, float]]) -> None:
    lat1, lon1, lat2, lon2 = (np.array(c) for c in zip(*points))
    vector = haversine_km(lat1, lon1, lat2, lon2)
    scalar = [haversine_km_scalar(*p) for p in points]
    np.testing.assert_allclose(vector, scalar, rtol=1e-9, atol=1e-6)


@given(lats, lons, lats, lons)
def test_distance_is_symmetric_bounded_and_zero_to_itself(a: float, b: float, c: float, d: float) -> None:
    there = float(haversine_km(a, b, c, d))
    assert there == pytest.approx(float(haversine_km(c, d, a, b)), abs=1e-6)
    assert 0.0 <= there <= math.pi * 6371.0088 + 1e-6
    assert float(haversine_km(a, b, a, b)) == pytest.approx(0.0, abs=1e-6)


def test_a_missing_coordinate_gives_nan_not_an_error() -> None:
    out = haversine_km(
        np.array([1.0, np.nan]), np.array([1.0, 1.0]), np.array([2.0, 2.0]), np.array([2.0, 2.0])
    )
    assert math.isfinite(out[0])
    assert math.isnan(out[1])
    assert math.isnan(haversine_km_scalar(math.nan, 0.0, 0.0, 0.0))


def test_a_dict_lookup_resolves_known_names_and_ignores_the_rest() -> None:
    places: PlaceLookup = DictPlaceLookup({"New York": (40.71, -74.01, "US")})
    lat, lon, countries = places.resolve([" new york ", "Online", ""])
    assert lat[0] == 40.71
    assert lon[0] == -74.01
    assert np.isnan(lat[1:]).all()
    assert np.isnan(lon[1:]).all()
    assert countries == ["US", None, None]
