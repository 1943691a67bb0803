"""Great-circle distances (vectorized and compiled scalar) and the place-name lookup protocol."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = ["EARTH_RADIUS_KM", "DictPlaceLookup", "PlaceLookup", "haversine_km", "haversine_km_scalar"]

#: Mean Earth radius (IUGG); the error against the ellipsoid is below 0.5 %, plenty for travel speed.
EARTH_RADIUS_KM: Final = 6371.0088

FloatArray = npt.NDArray[np.float64]


class PlaceLookup(Protocol):
    """Place names → latitude, longitude (NaN when unknown) and ISO 3166-1 alpha-2 country (or None).

    Unknown names ("Online", "web", typos) must resolve to "no location", never raise.
    """

    def resolve(self, names: Sequence[str]) -> tuple[FloatArray, FloatArray, list[str | None]]: ...


class DictPlaceLookup:
    """A place lookup over a given mapping ``name → (lat, lon, country)``; names match case-insensitively.

    >>> places = DictPlaceLookup({"Paris": (48.85, 2.35, "FR")})
    >>> lat, lon, country = places.resolve(["paris", "Online"])
    >>> lat.tolist()[0], bool(np.isnan(lat[1])), country
    (48.85, True, ['FR', None])
    """

    def __init__(self, places: Mapping[str, tuple[float, float, str | None]]) -> None:
        self._places = {name.strip().casefold(): place for name, place in places.items()}

    def resolve(self, names: Sequence[str]) -> tuple[FloatArray, FloatArray, list[str | None]]:
        lat = np.full(len(names), np.nan)
        lon = np.full(len(names), np.nan)
        countries: list[str | None] = [None] * len(names)
        for i, name in enumerate(names):
            found = self._places.get(name.strip().casefold())
            if found is not None:
                lat[i], lon[i], countries[i] = found
        return lat, lon, countries


def haversine_km(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> FloatArray:
    """Great-circle distance in km between points given in degrees; arrays broadcast, NaN in → NaN out.

    >>> round(float(haversine_km(51.5074, -0.1278, 48.8566, 2.3522)), 0)  # London → Paris
    344.0
    >>> haversine_km([0.0, 0.0], [0.0, 0.0], [0.0, np.nan], [0.0, 1.0]).tolist()
    [0.0, nan]
    """
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dl = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin((p2 - p1) / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    # Rounding can push `a` a hair above 1 for antipodal points; arcsin would then return NaN.
    out: FloatArray = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    return out


@njit(cache=True, nogil=True)
def haversine_km_scalar(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The same distance for one pair of points, compiled, for the feature kernels.

    >>> round(haversine_km_scalar(40.7128, -74.006, 34.0522, -118.2437))  # New York → Los Angeles
    3936
    """
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    a = math.sin((p2 - p1) / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(a, 1.0)))
