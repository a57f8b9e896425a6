"""Camera files: which camera, its time zone, its zones and the rules for each kind.

Pydantic models that reject unknown keys, so a typo (`min_dwel_s`) is an error instead of a silently
ignored setting. Every field has a description; `streetwatch config schema` prints them as JSON schema.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from shapely import Polygon
from shapely.validation import explain_validity

from detector.config.base import Strict, read_mapping, validate_file
from detector.config.places import load_categories, load_grid
from detector.config.sinks import SinkConfig
from detector.kinds import Kind, default_dwell_s, kinds

_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_SAFE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ZoneType(StrEnum):
    ALLOWED = "allowed"
    PROHIBITED = "prohibited"
    IGNORE = "ignore"


class AnchorMode(StrEnum):
    BOTTOM_CENTER = "bottom_center"
    CENTER = "center"
    OVERLAP = "overlap"


class Anchor(Strict):
    """Which part of a box must lie in a zone for the box to count as inside it."""

    mode: AnchorMode = Field(
        AnchorMode.BOTTOM_CENTER,
        description="bottom_center: the point where the object meets the ground (best for bikes and "
        "stalls seen from above at an angle); center: the box centre; overlap: at least min_overlap "
        "of the box area lies inside the polygon.",
    )
    min_overlap: float = Field(
        0.5, gt=0.0, le=1.0, description="Fraction of the box area inside the polygon, for mode overlap."
    )


class HoursRange(Strict):
    start: time
    end: time  # time.max stands for 24:00

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # across midnight, e.g. 22:00-02:00


def parse_hours(text: str) -> HoursRange:
    match = _HOURS.match(text.strip())
    if not match:
        raise ValueError(f"hours {text!r} is not HH:MM-HH:MM (e.g. '17:00-21:30' or '22:00-02:00')")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"hours {text!r} has an impossible time of day")
    end = time.max if h2 == 24 else time(h2, m2)
    if time(h1, m1) == end:
        raise ValueError(f"hours {text!r} is empty: start equals end")
    return HoursRange(start=time(h1, m1), end=end)


class ZoneRule(Strict):
    """What a zone means, wherever its outline is drawn (pixels of a camera, or lon/lat of a geo-fence)."""

    id: Annotated[str, Field(pattern=_SAFE_ID, description="Unique id, used in events and snapshots.")]
    type: ZoneType = Field(
        description="allowed: not a violation here (a bike bay, a permitted market); prohibited: a "
        "violation here even where the camera default allows; ignore: detections here are dropped "
        "(masked areas: a shop window, a road)."
    )
    kinds: list[Kind] | None = Field(
        None, description="Kinds this zone applies to (vending, garbage, bike); omitted means all kinds."
    )
    hours: list[str] | None = Field(
        None,
        description="Local times when the zone applies, 'HH:MM-HH:MM' (may cross midnight); outside "
        "them the zone does not exist (an allowed market stops allowing). Omitted means always.",
    )
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = Field(
        None, description="Weekdays when the zone applies (of the start of its hours); omitted means every day."
    )

    @field_validator("hours")
    @classmethod
    def _check_hours(cls, value: list[str] | None) -> list[str] | None:
        for text in value or []:
            parse_hours(text)
        return value

    @cached_property
    def hour_ranges(self) -> list[HoursRange]:
        return [parse_hours(text) for text in self.hours or []]

    def applies_to(self, kind: Kind) -> bool:
        return self.kinds is None or kind in self.kinds

    def active_at(self, local: datetime) -> bool:
        """Whether the zone exists at this local time (hours and days)."""
        if not self.hour_ranges:
            return self.days is None or WEEKDAYS[local.weekday()] in self.days
        t = local.time()
        for r in self.hour_ranges:
            if not r.contains(t):
                continue
            if self.days is None:
                return True
            # A range across midnight belongs to the day it started on.
            started_yesterday = r.start > r.end and t < r.end
            weekday = (local.weekday() - 1) % 7 if started_yesterday else local.weekday()
            if WEEKDAYS[weekday] in self.days:
                return True
        return False


class Zone(ZoneRule):
    """A polygon of the image where a kind is allowed, prohibited, or not looked at."""

    polygon: list[tuple[float, float]] = Field(
        description="Vertices [x, y]: fractions of the frame width/height (all values within 0..1) or "
        "pixels of the camera's frames (see units)."
    )
    units: Literal["auto", "fraction", "pixel"] = Field(
        "auto", description="How to read the polygon; auto: fractions when every value is within 0..1."
    )
    anchor: Anchor | None = Field(None, description="Overrides the camera's zone_anchor for this zone.")
    min_dwell_s: float | None = Field(
        None, gt=0, description="Prohibited zones: seconds an object must stay in this zone to be a violation, "
        "instead of its kind's min_dwell_s (a hospital entrance may allow less than a pavement).")

    @model_validator(mode="after")
    def _check_polygon(self) -> Zone:
        if len(self.polygon) < 3:
            raise ValueError(f"zone {self.id!r}: polygon has {len(self.polygon)} points, needs at least 3")
        values = [v for point in self.polygon for v in point]
        if min(values) < 0:
            raise ValueError(f"zone {self.id!r}: polygon has a negative coordinate")
        if self.units == "fraction" and max(values) > 1:
            raise ValueError(f"zone {self.id!r}: units is fraction but a coordinate is above 1")
        if self.units == "auto" and 1 < max(values) <= 2 and any(0 < v < 1 for v in values):
            raise ValueError(f"zone {self.id!r}: the polygon looks like fractions of the frame but has "
                             f"{max(values):g}, above 1, which would read the whole polygon as pixels; fix the typo, "
                             "or set units: pixel if these are pixels")
        if self.min_dwell_s is not None and self.type != ZoneType.PROHIBITED:
            raise ValueError(f"zone {self.id!r}: min_dwell_s is for prohibited zones (an allowed or ignored object "
                             "never dwells into a violation)")
        shape = Polygon(self.polygon)
        if shape.convex_hull.area <= 0:
            raise ValueError(f"zone {self.id!r}: polygon has no area (its points lie on one line)")
        if not shape.is_valid:
            raise ValueError(
                f"zone {self.id!r}: polygon is not valid ({explain_validity(shape)}); list the vertices "
                "in order around the outline so that no edges cross"
            )
        return self

    @property
    def is_fraction(self) -> bool:
        if self.units == "auto":
            return max(v for point in self.polygon for v in point) <= 1.0
        return self.units == "fraction"

    def to_pixels(self, width: int, height: int) -> Polygon:
        if self.is_fraction:
            return Polygon([(x * width, y * height) for x, y in self.polygon])
        return Polygon(self.polygon)


class VendorStay(Strict):
    """A vending box becomes a violation only once someone has stayed beside it (then its event goes on as any).

    What a fixed camera sees that a photo does not: a vendor stands by the goods for minutes, while on a
    busy pavement a bench or a parasol has someone passing next to it in most frames, each for a second
    or two. Measured on the last `min_dwell_s` of the stall's dwell.
    """

    radius: float = Field(
        0.6, gt=0, le=5,
        description="How far the vendor may move about and still count as staying, in their own heights.",
    )
    min_stay_s: float = Field(
        10.0, gt=0,
        description="Shortest unbroken stay that counts (one missed frame is bridged): a passer-by is near "
        "a spot for a second or two.",
    )
    min_share: float = Field(
        0.5, gt=0, le=1,
        description="Share of the sampled frames of the last min_dwell_s that such stays must cover.",
    )


class Rule(Strict):
    """When a detected object becomes a violation, and when its event ends."""

    min_dwell_s: float = Field(
        gt=0, description="Seconds an object must stay in place before it is a violation."
    )
    close_after_s: float = Field(
        30.0,
        gt=0,
        description="Seconds an object may be unseen before its event closes (last_seen stays the "
        "last time it was seen). Also the tolerance for missed detections during the dwell.",
    )
    min_seen_ratio: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of the sampled frames during the dwell in which the object must be detected.",
    )
    max_shift: float = Field(
        0.5,
        gt=0,
        le=1,
        description="How far the object may drift from where it was first seen, as 1 - IoU with its first "
        "box; beyond it, it counts as moving and its dwell starts again.",
    )
    min_confidence: float | None = Field(
        None, ge=0, le=1, description="Raises the model card's threshold for this kind on this camera."
    )
    vendor_stays: VendorStay | None = Field(
        None, description="Vending only: also require one person to stay beside the stall for most of the "
        "dwell ({} for the defaults); off when omitted.",
    )

    @model_validator(mode="after")
    def _check_stay(self) -> Rule:
        if self.vendor_stays is not None and self.vendor_stays.min_stay_s > self.min_dwell_s:
            raise ValueError(f"vendor_stays.min_stay_s ({self.vendor_stays.min_stay_s:g}) is longer than "
                             f"min_dwell_s ({self.min_dwell_s:g}): no stay could count; lower it")
        return self


class Suppress(Strict):
    """Rejections that stick: what an operator rejected raises no new event while it is the same object
    at the same place (see `detector.camera.suppress`)."""

    enabled: bool = Field(True, description="Drop what a rejection covers; false: every sighting is judged anew.")
    for_days: float = Field(30.0, gt=0, description="Days a rejection holds; after that the object is judged "
                            "again (and raises its event if it is still there).")
    min_iou: float = Field(0.5, gt=0, le=1, description="How much a box must overlap the rejected one (IoU) "
                           "to be the same place.")
    min_similarity: float = Field(0.6, gt=0, lt=1, description="How alike its picture must be to the "
                                  "rejected one (0-1); a changed object below it raises its event.")


def _default_rules() -> dict[Kind, Rule]:
    return {kind: Rule(min_dwell_s=dwell) for kind, dwell in default_dwell_s().items()}


class Location(Strict):
    """Where the camera stands, for the work order an inspector is sent with."""

    lon: float = Field(ge=-180, le=180, description="Longitude, WGS84 degrees.")
    lat: float = Field(ge=-90, le=90, description="Latitude, WGS84 degrees.")
    address: str | None = Field(None, description="Street address, as the city platform shows it.")
    grid_code: str | None = Field(None, description="Unit grid cell code (网格编码) of the place.")
    department: str | None = Field(None, description="Department responsible for the cell.")


class CameraInfo(Strict):
    id: Annotated[str, Field(pattern=_SAFE_ID, description="Camera id, used in events and file names.")]
    timezone: str = Field(description="IANA time zone of the camera's local time, e.g. Asia/Shanghai.")
    name: str | None = Field(None, description="Human-readable name (a street, a crossing).")
    device_id: str | None = Field(None, max_length=64,
                                  description="The platform's device id, e.g. a GB/T 28181 20-digit code.")
    location: Location | None = Field(None, description="Where the camera is; work orders carry it.")

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Asia/Shanghai'") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class CameraConfig(Strict):
    """One camera: what it sees, where violations count, and the rules for each kind."""

    camera: CameraInfo = Field(description="Identity and time zone of the camera.")
    default: Literal["prohibited", "allowed"] = Field(
        "prohibited", description="What applies outside every zone."
    )
    zone_anchor: Anchor = Field(default_factory=Anchor, description="How boxes are tested against zones.")
    zones: list[Zone] = Field(default_factory=list, description="Zones, tested in this order of precedence: "
                              "ignore, then allowed, then prohibited.")
    rules: dict[Kind, Rule] = Field(
        default_factory=_default_rules,
        description="Rules per kind; only the kinds listed here are reported on this camera.",
    )
    sinks: list[SinkConfig] = Field(
        default_factory=list, description="Receivers of this camera's event messages (added to --sink URLs)."
    )
    grid: Path | None = Field(None, description="GeoJSON of the city's unit grid cells (properties code, name, "
                              "department): work orders get the cell the camera's location falls in.")
    categories: Path | None = Field(None, description="YAML dictionary from our category codes to the city's "
                                    "(categories: {'01-03': {code: ..., name: ...}}), for work orders.")
    suppress: Suppress = Field(default_factory=Suppress, description="How long and how closely a rejected "
                               "object is kept from raising events again.")

    @model_validator(mode="after")
    def _check_zone_ids(self) -> CameraConfig:
        seen: set[str] = set()
        for zone in self.zones:
            if zone.id in seen:
                raise ValueError(f"zone id {zone.id!r} is used twice; zone ids must be unique")
            seen.add(zone.id)
        if not self.rules:
            raise ValueError(f"rules is empty: list at least one kind ({', '.join(k.value for k in kinds())})")
        for kind, rule in self.rules.items():
            if rule.vendor_stays is not None and kind != Kind.VENDING:
                raise ValueError(f"rules.{kind.value}.vendor_stays: only the vending rule has a vendor; "
                                 "move it under rules.vending")
        return self

    def kinds(self) -> list[Kind]:
        return list(self.rules)

    def zone_dwell(self) -> dict[str, float]:
        """Prohibited zones with a dwell of their own: zone id -> seconds."""
        return {z.id: z.min_dwell_s for z in self.zones if z.min_dwell_s is not None}

    def shortest_dwell(self) -> tuple[str, float]:
        """The shortest dwell anything here must reach (a kind's rule, or a zone's own), and whose it is."""
        kind, rule = min(self.rules.items(), key=lambda item: item[1].min_dwell_s)
        shortest = (kind.value, rule.min_dwell_s)
        for zone_id, dwell in self.zone_dwell().items():
            if dwell < shortest[1]:
                shortest = (f"zone {zone_id}", dwell)
        return shortest

    @property
    def id(self) -> str:
        """The camera's id (`camera.id` in the file)."""
        return self.camera.id

    @property
    def timezone(self) -> str:
        """The IANA name of the camera's time zone (`camera.timezone` in the file)."""
        return self.camera.timezone

    @property
    def tz(self) -> ZoneInfo:
        """The camera's time zone (`camera.timezone` in the file)."""
        return self.camera.tz


def load_camera(path: str | Path) -> CameraConfig:
    path = Path(path)
    data = read_mapping(path, "camera file", fix="see zones/example.yaml")
    config = validate_file(CameraConfig, data, path, fix="see `streetwatch config schema` or zones/example.yaml")
    return with_places(config, path.resolve().parent)


Config = TypeVar("Config", bound=CameraConfig)


def with_places(config: Config, base: Path) -> Config:
    """Grid and category files resolved against the folder of the file naming them, and read now: a
    broken one is an error at start, not at the first work order."""
    updates = {k: base / v for k in ("grid", "categories") if (v := getattr(config, k)) is not None}
    if not updates:
        return config
    config = config.model_copy(update=updates)
    if config.grid:
        load_grid(config.grid)
    if config.categories:
        load_categories(config.categories)
    return config
