"""From a box in the image to a place on the map, for a camera on a vehicle.

The ground point of a box (its bottom centre: where the object stands) is cast onto a flat road from the
camera's mount, a pinhole of known height, pitch, field of view and yaw relative to the vehicle's heading
(front, left or right camera), or mapped through four image <-> ground calibration points (a homography).
Either gives metres forward and to the right of the vehicle, which pyproj's `Geod` turns into lat/lon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from detector.geo.track import GEOD, Pose

GPS_ACCURACY_M = 3.0  # a vehicle receiver's typical horizontal error, added to the projection's own


@dataclass(frozen=True)
class Mount:
    """A camera on the vehicle: height above the road, pitch down, horizontal field of view, and yaw
    clockwise from the vehicle's heading (0 front, 90 right, -90 left)."""

    height_m: float
    pitch_deg: float
    hfov_deg: float
    yaw_deg: float = 0.0


@dataclass(frozen=True)
class Ground:
    """A point on the road relative to the vehicle, in metres."""

    forward_m: float
    right_m: float

    @property
    def distance_m(self) -> float:
        return math.hypot(self.forward_m, self.right_m)


class PinholeGround:
    """Image pixel -> road point, for a level road and a camera at `mount` on an image of `width` x `height`."""

    def __init__(self, mount: Mount, width: int, height: int) -> None:
        self.mount, self.width, self.height = mount, width, height
        self.f = (width / 2) / math.tan(math.radians(mount.hfov_deg) / 2)

    def ground(self, u: float, v: float) -> Ground | None:
        """None for a pixel at or above the horizon (its ray never meets the road)."""
        x, y = (u - self.width / 2) / self.f, (v - self.height / 2) / self.f
        p = math.radians(self.mount.pitch_deg)
        down, ahead = y * math.cos(p) + math.sin(p), -y * math.sin(p) + math.cos(p)  # ray in level axes
        if down <= 1e-6:
            return None
        t = self.mount.height_m / down
        forward, right = t * ahead, t * x
        yaw = math.radians(self.mount.yaw_deg)
        return Ground(forward_m=forward * math.cos(yaw) - right * math.sin(yaw),
                      right_m=forward * math.sin(yaw) + right * math.cos(yaw))

    def pixel(self, point: Ground) -> tuple[float, float] | None:
        """Where a road point appears in the image; None behind the camera. The inverse of `ground()`."""
        yaw, p = math.radians(self.mount.yaw_deg), math.radians(self.mount.pitch_deg)
        ahead = point.forward_m * math.cos(yaw) + point.right_m * math.sin(yaw)
        right = -point.forward_m * math.sin(yaw) + point.right_m * math.cos(yaw)
        down = self.mount.height_m
        z = ahead * math.cos(p) + down * math.sin(p)
        if z <= 1e-6:
            return None
        y = -ahead * math.sin(p) + down * math.cos(p)
        return self.width / 2 + self.f * right / z, self.height / 2 + self.f * y / z


class CalibratedGround:
    """Image pixel -> road point through a homography from four (or more) measured correspondences."""

    def __init__(self, image_points: list[tuple[float, float]], ground_points: list[tuple[float, float]]) -> None:
        if len(image_points) < 4 or len(image_points) != len(ground_points):
            raise ValueError("calibration needs at least four image points and as many ground points")
        src, dst = np.asarray(image_points, np.float32), np.asarray(ground_points, np.float32)
        matrix, _ = cv2.findHomography(src, dst)
        if matrix is None:
            raise ValueError("calibration points are degenerate (three on a line?)")
        self.matrix = matrix
        self.inverse = np.linalg.inv(matrix)

    def pixel(self, point: Ground) -> tuple[float, float] | None:
        u, v, w = self.inverse @ np.array([point.forward_m, point.right_m, 1.0])
        return None if w <= 1e-9 else (float(u / w), float(v / w))

    def ground(self, u: float, v: float) -> Ground | None:
        x, y, w = self.matrix @ np.array([u, v, 1.0])
        if abs(w) < 1e-9:
            return None
        return Ground(forward_m=float(x / w), right_m=float(y / w))


def from_latlon(pose: Pose, lat: float, lon: float) -> Ground:
    """A place on the map relative to the vehicle: the inverse of `to_latlon`."""
    bearing, _, distance = GEOD.inv(pose.lon, pose.lat, lon, lat)
    angle = math.radians(bearing - pose.heading_deg)
    return Ground(forward_m=distance * math.cos(angle), right_m=distance * math.sin(angle))


def to_latlon(pose: Pose, point: Ground) -> tuple[float, float]:
    """The road point as (lat, lon): from the vehicle, along heading plus the point's own bearing."""
    bearing = pose.heading_deg + math.degrees(math.atan2(point.right_m, point.forward_m))
    lon, lat, _ = GEOD.fwd(pose.lon, pose.lat, bearing, point.distance_m)
    return lat, lon


def accuracy_m(projector: PinholeGround | CalibratedGround, u: float, v: float) -> float | None:
    """How far the place moves for a 2-pixel error in the box's bottom edge, plus the receiver's error:
    far objects near the horizon are placed much less surely than near ones."""
    here, lower = projector.ground(u, v), projector.ground(u, v - 2.0)
    if here is None or lower is None:
        return None
    return GPS_ACCURACY_M + math.hypot(lower.forward_m - here.forward_m, lower.right_m - here.right_m)
