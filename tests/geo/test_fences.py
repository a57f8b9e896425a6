"""Geo-fences: zone semantics on the map (hours, kinds, precedence) and bad fence files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from detector.errors import ConfigError
from detector.geo.fences import load_fences
from detector.kinds import Kind

TZ = ZoneInfo("Asia/Shanghai")


def square(lon: float, lat: float, d: float = 0.001) -> list[list[list[float]]]:
    return [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]]


def feature(props: dict, coords: list) -> dict:
    return {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": coords}}


def write(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@pytest.fixture
def fences(tmp_path: Path):
    return load_fences(write(tmp_path / "fences.geojson", [
        feature({"id": "night-market", "type": "allowed", "kinds": ["vending"], "hours": ["18:00-23:00"]},
                square(121.400, 31.200)),
        feature({"id": "bike-park", "type": "allowed", "kinds": ["bike"]}, square(121.402, 31.200)),
        feature({"id": "forecourt", "type": "ignore"}, square(121.404, 31.200)),
        feature({"id": "main-street", "type": "prohibited"}, square(121.399, 31.1995, 0.007)),
    ]), default="allowed")


def test_a_permitted_market_allows_vending_in_its_hours_only(fences) -> None:
    at = (31.2005, 121.4005)
    evening, morning = datetime(2026, 12, 1, 19, 0, tzinfo=TZ), datetime(2026, 12, 1, 9, 0, tzinfo=TZ)
    assert fences.decide(Kind.VENDING, *at, evening) == (False, None)
    assert fences.decide(Kind.VENDING, *at, morning) == (True, "main-street")
    assert fences.decide(Kind.GARBAGE, *at, evening) == (True, "main-street")  # the market allows vending only


def test_bike_parking_ignore_areas_and_the_default(fences) -> None:
    noon = datetime(2026, 12, 1, 12, 0, tzinfo=TZ)
    assert fences.decide(Kind.BIKE, 31.2005, 121.4025, noon) == (False, None)
    assert fences.decide(Kind.GARBAGE, 31.2005, 121.4025, noon) == (True, "main-street")
    assert fences.decide(Kind.GARBAGE, 31.2005, 121.4045, noon) == (False, None)  # masked forecourt
    assert fences.decide(Kind.GARBAGE, 31.3, 121.5, noon) == (False, None)  # outside every fence: default allowed


def test_fences_written_lat_lon_are_caught(tmp_path: Path) -> None:
    lat_first = [[[31.2, 121.4], [31.2, 121.41], [31.21, 121.41], [31.21, 121.4], [31.2, 121.4]]]
    with pytest.raises(ConfigError, match="latitudes beyond 90"):
        load_fences(write(tmp_path / "a.geojson", [feature({"id": "x", "type": "prohibited"}, lat_first)]))
    # In the Americas or near the equator both orders are in range: the track tells them apart.
    ambiguous = [[[-12.05, -77.04], [-12.05, -77.03], [-12.04, -77.03], [-12.04, -77.04], [-12.05, -77.04]]]
    fences = load_fences(write(tmp_path / "b.geojson", [feature({"id": "lima", "type": "prohibited"}, ambiguous)]))
    with pytest.raises(ConfigError, match="near it with lat and lon swapped") as e:
        fences.check_near([(-12.045, -77.035), (-12.046, -77.036)])
    assert "b.geojson" in str(e.value) and "[lon, lat]" in str(e.value)
    fences.check_near([(-77.035, -12.045)])  # a track where the fence is, as written: fine


@pytest.mark.parametrize(("features", "message"), [
    ([feature({"id": "x", "type": "prohibited"}, [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]])],
     "not a valid polygon: Self-intersection"),
    ([feature({"id": "x", "type": "forbidden"}, square(121.4, 31.2))], "type: unknown value 'forbidden'"),
    ([feature({"id": "x", "type": "allowed", "hours": ["25:00-26:00"]}, square(121.4, 31.2))], "impossible time"),
    ([feature({"id": "x", "type": "allowed"}, square(121.4, 31.2))] * 2, "used twice"),
    ([{"type": "Feature", "properties": {"id": "p", "type": "allowed"},
       "geometry": {"type": "Point", "coordinates": [121.4, 31.2]}}], "is a Point, not a polygon"),
])
def test_bad_fence_files_are_one_line_errors(tmp_path: Path, features: list, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_fences(write(tmp_path / "f.geojson", features))
    assert message in str(e.value) and "f.geojson" in str(e.value) and "\n" not in str(e.value)
