"""Projection against hand-computed cases: a pinhole over a flat road, yawed cameras, a calibration
homography, and metres to lat/lon."""

from __future__ import annotations

import math

import pytest

from detector.geo.projection import CalibratedGround, Ground, Mount, PinholeGround, accuracy_m, to_latlon
from detector.geo.track import GEOD, Pose

W, H = 1000, 600  # hfov 90 deg: focal length 500 px


def test_the_image_centre_of_a_camera_pitched_45_degrees_lands_one_height_ahead() -> None:
    ground = PinholeGround(Mount(height_m=2.0, pitch_deg=45.0, hfov_deg=90.0), W, H).ground(W / 2, H / 2)
    assert ground.forward_m == pytest.approx(2.0) and ground.right_m == pytest.approx(0.0)


def test_a_level_camera_sees_the_horizon_at_the_centre_and_the_road_below_it() -> None:
    level = PinholeGround(Mount(height_m=1.5, pitch_deg=0.0, hfov_deg=90.0), W, H)
    assert level.ground(W / 2, H / 2) is None and level.ground(W / 2, H / 2 - 50) is None  # sky
    # A ray 45 deg down and 45 deg right (x = y = 1 in focal units) meets the road 1.5 m ahead, 1.5 m right.
    corner = level.ground(W / 2 + 500, H / 2 + 500)
    assert corner.forward_m == pytest.approx(1.5) and corner.right_m == pytest.approx(1.5)
    # 10 m ahead: tan(angle below the axis) = 1.5 / 10 -> v = centre + 500 * 0.15
    assert level.ground(W / 2, H / 2 + 75).forward_m == pytest.approx(10.0)


@pytest.mark.parametrize(("yaw", "forward", "right"), [(90.0, 0.0, 2.0), (-90.0, 0.0, -2.0), (180.0, -2.0, 0.0)])
def test_side_and_rear_cameras_turn_the_point_around_the_vehicle(yaw: float, forward: float, right: float) -> None:
    point = PinholeGround(Mount(2.0, 45.0, 90.0, yaw_deg=yaw), W, H).ground(W / 2, H / 2)
    assert point.forward_m == pytest.approx(forward, abs=1e-9) and point.right_m == pytest.approx(right, abs=1e-9)


def test_a_calibration_homography_agrees_with_the_pinhole_it_was_measured_on() -> None:
    pinhole = PinholeGround(Mount(2.2, 12.0, 70.0), W, H)
    corners = [(100.0, 580.0), (900.0, 580.0), (650.0, 380.0), (350.0, 380.0)]
    measured = [(g.forward_m, g.right_m) for g in (pinhole.ground(u, v) for u, v in corners)]
    calibrated = CalibratedGround(corners, measured)
    for u, v in [(500.0, 450.0), (200.0, 520.0), (800.0, 400.0)]:
        a, b = pinhole.ground(u, v), calibrated.ground(u, v)
        assert b.forward_m == pytest.approx(a.forward_m, rel=1e-4) and b.right_m == pytest.approx(a.right_m, abs=1e-3)
    with pytest.raises(ValueError, match="at least four"):
        CalibratedGround(corners[:3], measured[:3])


def test_metres_around_the_vehicle_become_lat_lon_along_its_heading() -> None:
    pose = Pose(lat=31.2, lon=121.4, heading_deg=90.0, speed_mps=8.0)  # driving east
    lat, lon = to_latlon(pose, Ground(forward_m=30.0, right_m=40.0))  # 50 m away, bearing 90 + 53.13 deg
    azimuth, _, distance = GEOD.inv(pose.lon, pose.lat, lon, lat)
    assert distance == pytest.approx(50.0, abs=1e-6)
    assert azimuth % 360 == pytest.approx(90.0 + math.degrees(math.atan2(40, 30)), abs=1e-6)


def test_far_points_are_placed_less_surely_than_near_ones() -> None:
    pinhole = PinholeGround(Mount(2.0, 10.0, 90.0), W, H)
    near, far = accuracy_m(pinhole, W / 2, H - 10), accuracy_m(pinhole, W / 2, H / 2 - 80)
    assert near is not None and far is not None and 3.0 < near < far
