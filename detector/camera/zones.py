"""Zones decide which detections are violations: a bike in a bay is parked, a vendor in the night
market during its hours is permitted, a box over a masked shop window is ignored.

Precedence when zones overlap: ignore, then allowed, then prohibited, then the camera default. An
allowed zone inside a prohibited one therefore carves out an exception (a bike bay on a no-parking
pavement).
"""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
import shapely
from shapely import Polygon, box

from detector.config.camera import Anchor, AnchorMode, CameraConfig, Zone, ZoneType
from detector.detections import Detections, anchor_points
from detector.kinds import Kind

log = logging.getLogger(__name__)


def anchor_inside(polygon: Polygon, xyxy: np.ndarray, anchor: Anchor) -> np.ndarray:
    """Which boxes count as inside the polygon under the anchor rule."""
    if len(xyxy) == 0:
        return np.zeros(0, dtype=bool)
    if anchor.mode == AnchorMode.OVERLAP:
        areas = np.maximum((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]), 1e-9)
        boxes = [box(*b) for b in xyxy]
        inter = shapely.area(shapely.intersection(boxes, polygon))
        overlapping: np.ndarray = inter / areas >= anchor.min_overlap
        return overlapping
    points = anchor_points(xyxy, anchor.mode.value)
    # A box's bottom edge sits on the frame border when an object is cut off; count the border in.
    return shapely.intersects_xy(polygon, points[:, 0], points[:, 1])


class ZoneFilter:
    """`filter()` keeps the detections that are violations and records the zone that made them so."""

    def __init__(self, camera: CameraConfig) -> None:
        self.camera = camera
        self._polygons: dict[tuple[str, int, int], Polygon] = {}

    def _polygon(self, zone: Zone, width: int, height: int) -> Polygon:
        key = (zone.id, width, height)
        if key not in self._polygons:
            polygon = self._polygons[key] = zone.to_pixels(width, height)
            if not polygon.intersects(box(0, 0, width, height)):
                log.warning("%s: zone %r lies wholly outside the %dx%d frame; it never applies — check its "
                            "polygon (pixels of a larger stream?)", self.camera.id, zone.id, width, height,
                            extra={"camera": self.camera.id, "zone": zone.id})
        return self._polygons[key]

    def filter(self, dets: Detections, frame_size: tuple[int, int], time: datetime) -> Detections:
        if len(dets) == 0:
            return dets
        keep, zone_ids, _ = self._decide(dets, frame_size, time)
        return dets.with_(zone_id=zone_ids)[keep]

    def explain(self, dets: Detections, frame_size: tuple[int, int], time: datetime) -> list[tuple[bool, str]]:
        """Per detection: whether it is a violation here and now, and why (the zone, its kinds and hours, or
        the camera default), in words for the review desk's camera page."""
        if len(dets) == 0:
            return []
        keep, _, why = self._decide(dets, frame_size, time)
        local, width, height = time.astimezone(self.camera.tz), *frame_size
        for zone in self.camera.zones:  # zones the box is in that do not apply now: say when they do
            if zone.active_at(local):
                continue
            polygon = self._polygon(zone, width, height)
            inside = anchor_inside(polygon, dets.xyxy, zone.anchor or self.camera.zone_anchor)
            when = ", ".join([*(zone.hours or []), *(zone.days or [])])
            for i in np.flatnonzero(inside):
                why[i] += f"; {zone.type.value} zone {zone.id} applies only at {when}, not at {local:%a %H:%M}"
        return list(zip(keep.tolist(), why, strict=True))

    def _decide(self, dets: Detections, frame_size: tuple[int, int],
                time: datetime) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(violation?, the prohibited zone that made it one, why) per detection; precedence: ignore, allowed,
        prohibited, then the default."""
        width, height = frame_size
        local = time.astimezone(self.camera.tz)
        kinds = dets.kind.astype(str)
        reported = np.isin(kinds, [k.value for k in self.camera.rules])
        zone_ids = np.full(len(dets), "", dtype=object)
        ignored, allowed = np.full(len(dets), "", dtype=object), np.full(len(dets), "", dtype=object)
        prohibited = np.zeros(len(dets), dtype=bool)
        for zone in self.camera.zones:
            if not zone.active_at(local):
                continue
            applies = np.array([zone.applies_to(Kind(k)) for k in kinds])
            if not applies.any():
                continue
            inside = applies & anchor_inside(
                self._polygon(zone, width, height), dets.xyxy, zone.anchor or self.camera.zone_anchor
            )
            if zone.type == ZoneType.IGNORE:
                ignored[inside & (ignored == "")] = zone.id
            elif zone.type == ZoneType.ALLOWED:
                allowed[inside & (allowed == "")] = zone.id
            else:
                first = inside & ~prohibited
                zone_ids[first] = zone.id
                prohibited |= inside
        default_ok = self.camera.default == "prohibited"
        keep = reported & (ignored == "") & (allowed == "") & (prohibited | default_ok)
        why = [_reason(str(kinds[i]), bool(reported[i]), str(ignored[i]), str(allowed[i]), str(zone_ids[i]),
                       self.camera.default) for i in range(len(dets))]
        return keep, zone_ids, why


def _reason(kind: str, reported: bool, ignored: str, allowed: str, zone: str, default: str) -> str:
    if not reported:
        return f"{kind} is not reported on this camera (no rule for it)"
    if ignored:
        return f"inside ignore zone {ignored}"
    if allowed:
        return f"{kind} allowed in zone {allowed}"
    if zone:
        return f"{kind} prohibited in zone {zone}"
    return f"outside every zone: the camera's default, {default}"
