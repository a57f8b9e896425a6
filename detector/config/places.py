"""The city's own words for a work order: its unit grid (which cell, which department) and its category codes.

A city files work orders by grid cell (网格) and by its own codes for each violation; both come as files
so an integrator configures them without code. The grid is a GeoJSON FeatureCollection (WGS84) of
Polygons or MultiPolygons with properties `code`, `name`, `department`; a point is looked up through a
shapely STRtree. The category dictionary is YAML: `categories: {OUR_CODE: {code: ..., name: ...}}`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from shapely import Point, STRtree
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from detector.config.base import read_mapping
from detector.errors import ConfigError
from detector.kinds import CATEGORIES

GRID_FIX = "give a GeoJSON FeatureCollection of Polygon features with properties code, name, department"


@dataclass(frozen=True)
class GridCell:
    code: str
    name: str | None
    department: str | None


class Grid:
    """Unit grid cells; `cell_at()` finds the one a point falls in (the first listed, where cells overlap)."""

    def __init__(self, cells: list[GridCell], shapes: list[BaseGeometry]) -> None:
        self.cells, self.shapes = cells, shapes
        self.tree = STRtree(shapes)

    def cell_at(self, lon: float, lat: float) -> GridCell | None:
        point = Point(lon, lat)
        hits = sorted(int(i) for i in self.tree.query(point, predicate="intersects"))
        return self.cells[hits[0]] if hits else None


def load_grid(path: Path) -> Grid:
    """The grid file, read again when it changed (a reload picks up an edited grid)."""
    return _grid(path, _mtime(path))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def read_features(path: Path, what: str, fix: str) -> list[Any]:
    """The features of a GeoJSON FeatureCollection file; anything else is a one-line error naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found", path=path, fix=f"check the {what} file's path") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{what} file is not JSON ({e})", path=path, fix=fix) from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(
            data.get("features"), list):
        raise ConfigError(f"{what} file is not a GeoJSON FeatureCollection", path=path, fix=fix)
    features: list[Any] = data["features"]
    return features


@lru_cache(maxsize=16)
def _grid(path: Path, _mtime: float) -> Grid:
    features = read_features(path, "grid", GRID_FIX)
    if not features:
        raise ConfigError("grid file is not a non-empty GeoJSON FeatureCollection", path=path, fix=GRID_FIX)
    cells, shapes = [], []
    for i, feature in enumerate(features):
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict) or not isinstance(props.get("code"), str | int):
            raise ConfigError(f"grid feature {i} has no properties.code", path=path, fix=GRID_FIX)
        try:
            with warnings.catch_warnings():  # NaN coordinates: refused below (not in lon/lat degrees)
                warnings.simplefilter("ignore", RuntimeWarning)
                geometry = shape(feature["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, ShapelyError) as e:
            raise ConfigError(f"grid feature {i} ({props['code']}) has no usable geometry ({e})", path=path,
                              fix=GRID_FIX) from None
        if geometry.is_empty or not (geometry.bounds[0] >= -180 and geometry.bounds[2] <= 180
                                     and geometry.bounds[1] >= -90 and geometry.bounds[3] <= 90):
            raise ConfigError(f"grid feature {i} ({props['code']}) is empty or not in lon/lat degrees", path=path,
                              fix="give WGS84 longitude/latitude (EPSG:4326), longitude first")
        if geometry.geom_type not in ("Polygon", "MultiPolygon") or not geometry.is_valid:
            why = explain_validity(geometry) if geometry.geom_type in ("Polygon", "MultiPolygon") else \
                geometry.geom_type
            raise ConfigError(f"grid feature {i} ({props['code']}) is not a valid polygon: {why}", path=path,
                              fix="fix the cell's outline (no self-intersections; lon/lat order)")
        cells.append(GridCell(str(props["code"]), props.get("name"), props.get("department")))
        shapes.append(geometry)
    return Grid(cells, shapes)


def load_categories(path: Path) -> dict[str, dict[str, str]]:
    """Our GB/T 30428 code -> the city's {code, name}; read again when the file changed."""
    return _categories(path, _mtime(path))


@lru_cache(maxsize=16)
def _categories(path: Path, _mtime: float) -> dict[str, dict[str, str]]:
    fix = "write categories: {'01-03': {code: CITY_CODE, name: CITY_NAME}, ...}"
    data = read_mapping(path, "category dictionary", fix=fix)
    table = data.get("categories")
    if set(data) != {"categories"} or not isinstance(table, dict) or not table:
        raise ConfigError("category dictionary must hold one non-empty `categories:` mapping", path=path, fix=fix)
    out = {}
    for ours, theirs in table.items():
        if str(ours) not in CATEGORIES:
            raise ConfigError(f"unknown category {ours!r}", path=path, fix=f"use codes among {sorted(CATEGORIES)}")
        if not isinstance(theirs, dict) or set(theirs) != {"code", "name"}:
            raise ConfigError(f"category {ours}: give exactly code and name", path=path, fix=fix)
        out[str(ours)] = {"code": str(theirs["code"]), "name": str(theirs["name"])}
    return out
