"""Geo-fences: the zones of camera files drawn on the map, for cameras that move.

A GeoJSON FeatureCollection (WGS84, [lon, lat] as GeoJSON orders them) of Polygon/MultiPolygon features
whose properties are a zone's: `id`, `type` (allowed | prohibited | ignore), `kinds`, `hours`, `days`. The
decision for a located object is the camera zones' one: ignore, then allowed, then prohibited, then the
patrol file's default. A fence file written in [lat, lon] order lands in the wrong hemisphere or ocean;
that is detected (a "latitude" beyond 90, or the outlines far from the track but near once swapped) and
reported instead of silently never matching.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from shapely import Point, STRtree
from shapely.errors import ShapelyError
from shapely.geometry import MultiPolygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from detector.config.base import format_validation_error
from detector.config.camera import ZoneRule, ZoneType
from detector.config.places import read_features
from detector.errors import ConfigError
from detector.geo.track import GEOD
from detector.kinds import Kind

FIX = ("give a GeoJSON FeatureCollection of Polygon features, coordinates [lon, lat], properties id, type "
       "(allowed|prohibited|ignore), optional kinds, hours, days")
SWAP_FIX = "GeoJSON lists longitude first: write each vertex as [lon, lat]"


@dataclass(frozen=True)
class Fence:
    rule: ZoneRule
    outline: BaseGeometry


class Fences:
    """`decide()` a located object's fate; `check_near()` catches a file in the wrong axis order."""

    def __init__(self, fences: list[Fence], path: Path | None, default: str = "prohibited") -> None:
        self.fences, self.path, self.default = fences, path, default
        self.tree = STRtree([f.outline for f in fences]) if fences else None

    def decide(self, kind: Kind, lat: float, lon: float, local: datetime) -> tuple[bool, str | None]:
        """(is a violation, the prohibited fence's id if one made it so)."""
        hits = sorted(int(i) for i in self.tree.query(Point(lon, lat), predicate="intersects")) if self.tree else []
        active = [self.fences[i].rule for i in hits]
        active = [r for r in active if r.applies_to(kind) and r.active_at(local)]
        if any(r.type == ZoneType.IGNORE for r in active) or any(r.type == ZoneType.ALLOWED for r in active):
            return False, None
        prohibited = [r.id for r in active if r.type == ZoneType.PROHIBITED]
        if prohibited:
            return True, prohibited[0]
        return self.default == "prohibited", None

    def check_near(self, points: list[tuple[float, float]], within_m: float = 50_000.0) -> None:
        """Fences should lie where the vehicle drives (`points`: (lat, lon)); swapped axes are an error."""
        if not self.fences or not points:
            return
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        here = (sum(lats) / len(lats), sum(lons) / len(lons))
        for fence in self.fences:
            c = fence.outline.centroid  # x = lon, y = lat as written
            straight = _distance(here, (c.y, c.x))
            swapped = _distance(here, (c.x, c.y)) if abs(c.x) <= 90 else float("inf")
            if straight > within_m and swapped <= within_m:
                raise ConfigError(f"fence {fence.rule.id!r} lies {straight / 1000:.0f} km from the track, but "
                                  "near it with lat and lon swapped", path=self.path, fix=SWAP_FIX)


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[1], a[0], b[1], b[0])[2])


def fences_of(path: Path | None, default: str = "prohibited") -> Fences:
    """A patrol file's fences; without a fence file, none, and its `default` decides everywhere."""
    return load_fences(path, default) if path is not None else Fences([], None, default)


def load_fences(path: Path, default: str = "prohibited") -> Fences:
    fences, ids = [], set()
    for n, feature in enumerate(read_features(path, "fence", FIX)):
        fence = _fence(feature, n, path)
        if fence.rule.id in ids:
            raise ConfigError(f"fence id {fence.rule.id!r} is used twice", path=path, fix="give each fence its own id")
        ids.add(fence.rule.id)
        fences.append(fence)
    return Fences(fences, path, default)


def _fence(feature: object, n: int, path: Path) -> Fence:
    props = feature.get("properties") if isinstance(feature, dict) else None
    try:
        rule = ZoneRule.model_validate(props if isinstance(props, dict) else {})
    except ValidationError as e:
        raise ConfigError(f"fence {n}: {format_validation_error(e)}", path=path, fix=FIX) from None
    try:
        with warnings.catch_warnings():  # NaN coordinates: refused below, with the fence's name
            warnings.simplefilter("ignore", RuntimeWarning)
            outline = shape(feature["geometry"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ShapelyError) as e:
        raise ConfigError(f"fence {rule.id!r} has no usable geometry ({e})", path=path, fix=FIX) from None
    if outline.geom_type not in ("Polygon", "MultiPolygon"):
        raise ConfigError(f"fence {rule.id!r} is a {outline.geom_type}, not a polygon", path=path, fix=FIX)
    xs = [x for x, _ in _vertices(outline)]
    ys = [y for _, y in _vertices(outline)]
    if not all(math.isfinite(v) for v in (*xs, *ys)):
        raise ConfigError(f"fence {rule.id!r} has a coordinate that is not a number (NaN or infinite)", path=path,
                          fix="write every vertex as [lon, lat] in degrees")
    if max(map(abs, ys)) > 90 and max(map(abs, xs)) <= 90:
        raise ConfigError(f"fence {rule.id!r} has latitudes beyond 90 (lat and lon swapped?)", path=path,
                          fix=SWAP_FIX)
    if max(map(abs, ys)) > 90 or max(map(abs, xs)) > 180:
        raise ConfigError(f"fence {rule.id!r} has coordinates out of range", path=path, fix=SWAP_FIX)
    if not outline.is_valid:
        raise ConfigError(f"fence {rule.id!r} is not a valid polygon: {explain_validity(outline)}", path=path,
                          fix="list the vertices in order around the outline so that no edges cross")
    return Fence(rule, outline)


def _vertices(outline: BaseGeometry) -> list[tuple[float, float]]:
    polygons: list[Any] = list(outline.geoms) if isinstance(outline, MultiPolygon) else [outline]
    return [(x, y) for p in polygons for x, y in p.exterior.coords]
