"""Tracks: the three file formats, interpolation, gaps, and every bad track as a one-line error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from detector.errors import ConfigError
from detector.geo.track import GEOD, Fix, Track, read_track

T0 = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)


def eastward(n: int = 5, step_s: float = 1.0, speed: float = 10.0) -> list[Fix]:
    """A vehicle driving east at `speed` m/s from (31.2, 121.4), one fix per `step_s`."""
    fixes = []
    for i in range(n):
        lon, lat, _ = GEOD.fwd(121.4, 31.2, 90.0, speed * step_s * i)
        fixes.append(Fix(T0 + timedelta(seconds=step_s * i), lat, lon))
    return fixes


def test_interpolates_position_heading_and_speed_between_fixes() -> None:
    track = Track(eastward())
    pose = track.at(T0 + timedelta(seconds=1.5))
    _, _, from_start = GEOD.inv(121.4, 31.2, pose.lon, pose.lat)
    assert from_start == pytest.approx(15.0, abs=0.01)
    assert pose.heading_deg == pytest.approx(90.0, abs=0.01) and pose.speed_mps == pytest.approx(10.0, abs=0.01)
    assert track.at(T0 - timedelta(seconds=0.1)) is None and track.at(T0 + timedelta(seconds=4.1)) is None
    assert track.at(T0 + timedelta(seconds=4)) is not None  # the last fix itself


def test_a_gap_longer_than_max_gap_gives_no_position_and_the_offset_shifts_frame_times() -> None:
    fixes = eastward(3)
    fixes.append(Fix(fixes[-1].t + timedelta(seconds=30), fixes[-1].lat, fixes[-1].lon + 0.003))
    track = Track(fixes)
    assert track.at(T0 + timedelta(seconds=10), max_gap_s=5) is None
    assert track.at(T0 + timedelta(seconds=10), max_gap_s=60) is not None
    shifted = Track(eastward(), offset_s=2.0)  # the camera's clock is 2 s behind the receiver's
    assert shifted.at(T0).lon == pytest.approx(Track(eastward()).at(T0 + timedelta(seconds=2)).lon)


def test_heading_from_the_file_is_interpolated_on_the_circle() -> None:
    a, b = eastward(2)
    track = Track([Fix(a.t, a.lat, a.lon, 350.0, 9.0), Fix(b.t, b.lat, b.lon, 10.0, 11.0)])
    pose = track.at(T0 + timedelta(seconds=0.5))
    assert min(pose.heading_deg, 360 - pose.heading_deg) == pytest.approx(0.0, abs=1e-6)
    assert pose.speed_mps == pytest.approx(10.0)


def write_gpx(path: Path, fixes: list[Fix]) -> Path:
    import gpxpy.gpx

    gpx = gpxpy.gpx.GPX()
    segment = gpxpy.gpx.GPXTrackSegment()
    segment.points = [gpxpy.gpx.GPXTrackPoint(f.lat, f.lon, time=f.t) for f in fixes]
    track = gpxpy.gpx.GPXTrack()
    track.segments.append(segment)
    gpx.tracks.append(track)
    path.write_text(gpx.to_xml())
    return path


def nmea_lines(fixes: list[Fix]) -> list[str]:
    import pynmea2

    def dm(value: float, width: int) -> str:
        deg = int(abs(value))
        return f"{deg:0{width}d}{(abs(value) - deg) * 60:07.4f}"

    lines = []
    for f in fixes:
        hms, dmy = f.t.strftime("%H%M%S.00"), f.t.strftime("%d%m%y")
        lat, lon = dm(f.lat, 2), dm(f.lon, 3)
        lines.append(str(pynmea2.RMC("GP", "RMC", (hms, "A", lat, "N", lon, "E", "19.44", "90.0", dmy, "", ""))))
        lines.append(str(pynmea2.GGA("GP", "GGA", (hms, lat, "N", lon, "E", "1", "08", "0.9", "10.0", "M", "0.0",
                                                  "M", "", ""))))
    return lines


def test_gpx_nmea_and_csv_give_the_same_track(tmp_path: Path) -> None:
    fixes = eastward()
    gpx = read_track(write_gpx(tmp_path / "drive.gpx", fixes))
    (tmp_path / "drive.nmea").write_text("\n".join(["garbage line", *nmea_lines(fixes), "$GPRMC,torn"]) + "\n")
    nmea = read_track(tmp_path / "drive.nmea")
    (tmp_path / "drive.csv").write_text("time,lat,lon\n" + "".join(f"{f.t.isoformat()},{f.lat},{f.lon}\n"
                                                                   for f in fixes))
    table = read_track(tmp_path / "drive.csv")
    t = T0 + timedelta(seconds=2.5)
    for track in (gpx, nmea, table):
        pose = track.at(t)
        assert len(track.fixes) == 5
        ref = Track(fixes).at(t)
        _, _, off = GEOD.inv(pose.lon, pose.lat, ref.lon, ref.lat)
        assert off < 0.5  # NMEA rounds to 1e-4 minutes (0.2 m)
    assert nmea.fixes[0].speed_mps == pytest.approx(10.0, abs=0.01) and nmea.fixes[0].heading_deg == 90.0


@pytest.mark.parametrize(("name", "text", "message"), [
    ("empty.gpx", '<?xml version="1.0"?><gpx version="1.1" creator="x"></gpx>', "0 fixes"),
    ("bad.gpx", "<gpx", "not a GPX file"),
    ("unsorted.csv", "time,lat,lon\n2026-12-01T00:00:02+00:00,31,121\n2026-12-01T00:00:01+00:00,31,121.1\n",
     "is earlier than"),
    ("twice.csv", "time,lat,lon\n2026-12-01T00:00:01+00:00,31,121\n2026-12-01T00:00:01+00:00,31,121.1\n",
     "repeats the time"),
    ("nan.csv", "time,lat,lon\n2026-12-01T00:00:01+00:00,nan,121\n2026-12-01T00:00:02+00:00,31,121.1\n",
     "out of range"),
    ("far.csv", "time,lat,lon\n2026-12-01T00:00:01+00:00,121,31\n2026-12-01T00:00:02+00:00,121.1,31\n",
     "out of range"),
    ("heading.csv", "time,lat,lon,heading_deg\n2026-12-01T00:00:01+00:00,31,121,nan\n"
     "2026-12-01T00:00:02+00:00,31,121.1,90\n", "heading_deg nan"),  # it dropped every violation, exit 0
    ("speed.csv", "time,lat,lon,speed_mps\n2026-12-01T00:00:01+00:00,31,121,-3\n"
     "2026-12-01T00:00:02+00:00,31,121.1,inf\n", "speed_mps -3"),
    ("cols.csv", "t,y,x\n", "lack time, lat or lon"),
    ("track.kml", "<kml/>", "unknown track format"),
])
def test_bad_tracks_are_one_line_errors_naming_the_file(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as e:
        read_track(tmp_path / name)
    assert message in str(e.value) and name in str(e.value) and "\n" not in str(e.value) and e.value.fix


def test_a_missing_track_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="track file not found"):
        read_track(tmp_path / "none.gpx")


def test_a_car_standing_at_a_light_keeps_the_heading_it_came_with() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    fixes = []
    for i in range(40):
        lon, lat, _ = GEOD.fwd(121.4, 31.2, 90.0, 7.0 * min(i, 20))  # east for 20 s, then standing
        lon, lat, _ = GEOD.fwd(lon, lat, float(rng.uniform(0, 360)), float(abs(rng.normal(0, 0.5))))
        fixes.append(Fix(T0 + timedelta(seconds=i), lat, lon))
    track = Track(fixes)
    for second in (22.5, 27.5, 35.5):
        pose = track.at(T0 + timedelta(seconds=second))
        assert pose is not None and abs(pose.heading_deg - 90.0) < 5.0 and pose.speed_mps < 1.5
