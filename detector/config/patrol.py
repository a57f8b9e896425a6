"""Patrol files: a camera on a vehicle. The keys of a camera file (id, time zone, rules, sinks, pixel
`ignore` zones for the bonnet), plus how the camera is mounted, the geo-fences that replace pixel zones,
and the rules that confirm a violation from a moving viewpoint.

Pixel `allowed`/`prohibited` zones mean nothing when the view moves, so they are refused; geo-fences
say where things are allowed on the map instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from detector.config.base import Strict, read_mapping, validate_file
from detector.config.camera import CameraConfig, Rule, ZoneType, with_places
from detector.kinds import Kind, is_kind, kinds

M = TypeVar("M", bound=Strict)
GPS_SCHEMES = {"gpsd": 2947, "nmea+tcp": 10110, "nmea+udp": 10110}
FEED_FIX = "gps: gpsd://HOST[:PORT], nmea+tcp://HOST:PORT or nmea+udp://BIND_HOST:PORT"


def check_gps_url(url: str) -> str:
    """The URL, or a ValueError saying what is wrong with it (for the watch file's validation)."""
    parts = urlsplit(url)
    if parts.scheme not in GPS_SCHEMES:
        raise ValueError(f"unknown GPS feed {url!r}; {FEED_FIX}")
    if not parts.hostname:
        raise ValueError(f"GPS feed {url!r} has no host; {FEED_FIX}")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"GPS feed {url!r} has a bad port; {FEED_FIX}") from None
    return url

FIX = "see zones/patrol-example.yaml or `streetwatch config schema --patrol`"


class MountConfig(Strict):
    """The camera as mounted on the vehicle, for a level road."""

    height_m: float = Field(gt=0.2, le=6.0, description="Lens height above the road, metres.")
    pitch_deg: float = Field(gt=0.0, lt=80.0, description="Tilt below the horizon, degrees.")
    hfov_deg: float = Field(gt=10.0, lt=170.0, description="Horizontal field of view of the frames, degrees.")
    yaw_deg: float = Field(0.0, ge=-180.0, le=180.0, description="Direction of view, clockwise from the "
                           "vehicle's heading: 0 front camera, 90 right, -90 left.")


class CalibrationConfig(Strict):
    """Four or more image points and where they lie on the road, measured once with the vehicle parked."""

    image: list[tuple[float, float]] = Field(description="Pixels [u, v] of the camera's frames.")
    ground: list[tuple[float, float]] = Field(
        description="The same points on the road, [forward_m, right_m] from the vehicle's GPS antenna.")

    @model_validator(mode="after")
    def _check(self) -> CalibrationConfig:
        if len(self.image) < 4 or len(self.image) != len(self.ground):
            raise ValueError(f"calibration has {len(self.image)} image and {len(self.ground)} ground points; "
                             "give at least four of each, in the same order")
        return self


class ConfirmConfig(Strict):
    """When sightings from a moving camera become a violation."""

    min_frames: int = Field(3, ge=2, description="Sampled frames that must see the object at one place.")
    same_place_m: float = Field(6.0, gt=0, description="Projected positions within this many metres are "
                                "one place (within a pass, and across passes).")
    min_baseline_m: float = Field(8.0, ge=0, description="How far the vehicle must move between those "
                                  "frames: the parallax that proves the object stands still.")
    max_object_speed_mps: float = Field(0.8, gt=0, description="Sightings drifting faster than this (beyond "
                                        "projection noise) are a walker or a rider, never confirmed.")
    min_gap_min: float = Field(30.0, gt=0, description="Or: seen at one place on two passes this many "
                               "minutes apart.")
    pass_gap_s: float = Field(120.0, gt=0, description="A place seen again after this long unseen counts "
                              "a new pass.")


class PatrolSettings(Strict):
    """Where on the frame and how far sightings and coverage count."""

    max_range_m: float = Field(20.0, gt=0, description="Objects projected farther than this are not placed "
                               "(a pixel of error there is metres on the map).")
    cover_range_m: float = Field(12.0, gt=0, description="A place within this distance and inside the view "
                                 "counts as looked at; looked at in `cover_frames` frames and not seen "
                                 "closes its event as cleared.")
    cover_frames: int = Field(3, ge=1, description="Frames that must have looked at a place to clear it.")
    max_gap_s: float = Field(5.0, gt=0, description="Frames in a track gap longer than this get no position.")
    fps: float = Field(3.0, gt=0, le=30, description="Frames sampled per second of video.")
    confirm: ConfirmConfig = Field(default_factory=ConfirmConfig)


class PatrolFields(Strict):
    """What a camera on a vehicle adds to a camera file (a patrol file; a watch camera with a `gps` feed)."""

    vehicle: str | None = Field(None, description="The vehicle's id (a plate, a fleet number), in events.")
    mount: MountConfig | None = Field(None, description="Height, pitch, field of view and yaw of the camera.")
    calibration: CalibrationConfig | None = Field(None, description="Image <-> road points, instead of mount.")
    fences: Path | None = Field(None, description="GeoJSON FeatureCollection of geo-fences (WGS84; properties "
                                "id, type allowed|prohibited|ignore, kinds, hours, days).")
    patrol: PatrolSettings = Field(default_factory=PatrolSettings)

    @model_validator(mode="before")
    @classmethod
    def _kinds_to_rules(cls, data: Any) -> Any:
        """`kinds: [garbage, bike]`, shorthand for rules with their defaults (a moving camera times no dwell)."""
        if isinstance(data, dict) and "kinds" in data:
            data = dict(data)
            given = data.pop("kinds")
            if "rules" in data:
                raise ValueError("give kinds or rules, not both")
            if not isinstance(given, list) or not all(is_kind(k) for k in given):
                raise ValueError(f"kinds {given!r}: list of {', '.join(k.value for k in kinds())}")
            data["rules"] = {k: Rule(min_dwell_s=Kind(k).spec.dwell_s) for k in given}
        return data

    def check_moving(self, zones: list[Any]) -> None:
        """A moving camera needs a mount or a calibration, and no pixel allowed/prohibited zones."""
        if (self.mount is None) == (self.calibration is None):
            raise ValueError("give either mount (height_m, pitch_deg, hfov_deg, yaw_deg) or calibration, not "
                             + ("both" if self.mount else "neither"))
        placed = [z.id for z in zones if z.type != ZoneType.IGNORE]
        if placed:
            raise ValueError(f"zones {placed}: on a moving camera only ignore zones (the bonnet, a mirror) make "
                             "sense; draw allowed and prohibited places as geo-fences (fences:)")
        if self.patrol.cover_range_m > self.patrol.max_range_m:
            raise ValueError("patrol.cover_range_m must not exceed patrol.max_range_m")
        if any(rule.vendor_stays is not None for rule in getattr(self, "rules", {}).values()):
            raise ValueError("rules.vending.vendor_stays needs a fixed camera watching one stall; a passing "
                             "vehicle sees it for seconds: remove it from the patrol file")


class PatrolConfig(CameraConfig, PatrolFields):
    """A vehicle's camera: a camera file with a mount (or a calibration) and geo-fences."""

    @model_validator(mode="after")
    def _check_patrol(self) -> PatrolConfig:
        self.check_moving(self.zones)
        return self


def resolve_fences(config: M, base: Path) -> M:
    """Fences relative to the folder of the file naming them."""
    if config.fences is not None and not config.fences.is_absolute():  # type: ignore[attr-defined]
        return config.model_copy(update={"fences": base / config.fences})  # type: ignore[attr-defined]
    return config


def load_patrol(path: str | Path) -> PatrolConfig:
    path = Path(path)
    data = read_mapping(path, "patrol file", fix=FIX)
    config = validate_file(PatrolConfig, data, path, fix=FIX)
    return resolve_fences(with_places(config, path.resolve().parent), path.resolve().parent)
