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
        width, height = frame_size
        local = time.astimezone(self.camera.tz)
        kinds = dets.kind.astype(str)
        keep = np.isin(kinds, [k.value for k in self.camera.rules])
        zone_ids = np.full(len(dets), "", dtype=object)
        ignored = np.zeros(len(dets), dtype=bool)
        allowed = np.zeros(len(dets), dtype=bool)
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
                ignored |= inside
            elif zone.type == ZoneType.ALLOWED:
                allowed |= inside
            else:
                first = inside & ~prohibited
                zone_ids[first] = zone.id
                prohibited |= inside
        default_ok = self.camera.default == "prohibited"
        keep &= ~ignored & ~allowed & (prohibited | default_ok)
        return dets.with_(zone_id=zone_ids)[keep]
