"""A vehicle's track: GPX, NMEA 0183 (RMC/GGA) or CSV, checked, then asked "where and which way at time t?".

Frames carry the container's time; the track carries the receiver's. Positions are interpolated between
fixes (linearly: fixes are a second or so and a few metres apart), the heading from the file where it has
one (circularly) or from the direction of travel, and a frame in a gap longer than `max_gap_s` or outside
the track gets no position at all rather than a guessed one.
"""

from __future__ import annotations

import bisect
import csv
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pyproj import Geod

from detector.errors import ConfigError

GEOD = Geod(ellps="WGS84")
HEADING_BASE_M = 15.0  # heading from at least this much travel, when the track has no course
HEADING_WINDOW_S = 6.0  # ... within this many seconds (a turn is not averaged away)
MAX_SPEED_MPS = 70.0  # 250 km/h: a patrol vehicle's speed beyond it is a receiver's garbage
FIX = "give a GPX file, an NMEA 0183 log (RMC/GGA) or a CSV with time,lat,lon[,heading_deg,speed_mps]"


@dataclass(frozen=True)
class Fix:
    t: datetime
    lat: float
    lon: float
    heading_deg: float | None = None
    speed_mps: float | None = None


@dataclass(frozen=True)
class Pose:
    """The vehicle at one moment; `heading_deg` clockwise from north."""

    lat: float
    lon: float
    heading_deg: float
    speed_mps: float


class Track:
    """Fixes in strictly increasing time order; `at()` interpolates."""

    def __init__(self, fixes: list[Fix], path: Path | None = None, offset_s: float = 0.0) -> None:
        check(fixes, path)
        self.fixes, self.path = fixes, path
        self.offset = timedelta(seconds=offset_s)  # added to frame times: corrects the camera's clock
        self.times = [f.t.timestamp() for f in fixes]

    @property
    def start(self) -> datetime:
        return self.fixes[0].t

    @property
    def end(self) -> datetime:
        return self.fixes[-1].t

    def at(self, t: datetime, max_gap_s: float = 5.0, ahead_s: float = 0.0) -> Pose | None:
        """The pose at frame time `t`, or None outside the track or inside a gap longer than `max_gap_s`.
        `ahead_s`: a live feed's last fix may be up to this much older than the frame; the pose is then
        carried on along the last heading at the last speed."""
        x = (t + self.offset).timestamp()
        i = bisect.bisect_right(self.times, x)
        if i == len(self.times) and len(self.times) >= 2 and 0 < x - self.times[-1] <= ahead_s:
            return self._ahead(x - self.times[-1], max_gap_s)
        if i == 0 or (i == len(self.times) and x > self.times[-1]):
            return None
        if i == len(self.times):
            i -= 1
        a, b = self.fixes[i - 1], self.fixes[i]
        span = self.times[i] - self.times[i - 1]
        if span > max_gap_s:
            return None
        w = (x - self.times[i - 1]) / span
        lat, lon = a.lat + w * (b.lat - a.lat), a.lon + w * (b.lon - a.lon)
        bearing, distance, seconds = self._travel(i - 1, i, max_gap_s)
        if a.heading_deg is not None and b.heading_deg is not None:
            heading = _circular(a.heading_deg, b.heading_deg, w)
        else:
            heading = bearing if distance > 0.05 else (a.heading_deg or 0.0)
        if a.speed_mps is not None and b.speed_mps is not None:
            speed = a.speed_mps + w * (b.speed_mps - a.speed_mps)
        else:
            speed = distance / seconds
        return Pose(lat=lat, lon=lon, heading_deg=heading, speed_mps=speed)

    def _ahead(self, seconds: float, max_gap_s: float) -> Pose | None:
        last = self.at(self.fixes[-1].t - self.offset, max_gap_s)
        if last is None:
            return None
        lon, lat, _ = GEOD.fwd(last.lon, last.lat, last.heading_deg, last.speed_mps * seconds)
        return Pose(lat=lat, lon=lon, heading_deg=last.heading_deg, speed_mps=last.speed_mps)

    def append(self, fix: Fix, keep_s: float = 600.0) -> bool:
        """A live fix; False (and ignored) when not newer than the last or out of range. Fixes older than
        `keep_s` are let go."""
        if (self.fixes and fix.t <= self.fixes[-1].t) or not (math.isfinite(fix.lat) and math.isfinite(fix.lon)) \
                or abs(fix.lat) > 90 or abs(fix.lon) > 180:
            return False
        if fix.heading_deg is not None and not math.isfinite(fix.heading_deg):
            fix = replace(fix, heading_deg=None)  # a receiver's garbage course: the heading comes from travel
        if fix.speed_mps is not None and not (math.isfinite(fix.speed_mps) and 0 <= fix.speed_mps <= MAX_SPEED_MPS):
            fix = replace(fix, speed_mps=None)
        self.fixes.append(fix)
        self.times.append(fix.t.timestamp())
        drop = bisect.bisect_left(self.times, self.times[-1] - keep_s)
        if drop > 0:
            del self.fixes[:drop], self.times[:drop]
        return True

    @classmethod
    def live(cls, offset_s: float = 0.0) -> Track:
        """An empty track that `append()` fills from a receiver."""
        track = cls.__new__(cls)
        track.fixes, track.path, track.times = [], None, []
        track.offset = timedelta(seconds=offset_s)
        return track

    def _travel(self, i: int, j: int, max_gap_s: float) -> tuple[float, float, float]:
        """(bearing, metres, seconds) from fix i to fix j, widened on both sides until the vehicle moved
        `HEADING_BASE_M`: a metre of receiver noise on fixes 7 m apart turns the heading by 8 degrees,
        which puts an object 15 m away 2 m off."""
        while True:
            a, b = self.fixes[i], self.fixes[j]
            bearing, _, distance = GEOD.inv(a.lon, a.lat, b.lon, b.lat)
            wider = [k for k in (i - 1, j + 1) if 0 <= k < len(self.fixes)
                     and abs(self.times[k] - self.times[k + (1 if k < i else -1)]) <= max_gap_s]
            if distance >= HEADING_BASE_M or not wider or self.times[j] - self.times[i] >= HEADING_WINDOW_S:
                seconds = self.times[j] - self.times[i]
                if distance < HEADING_BASE_M:  # standing (a red light): the way it came, not the noise's
                    bearing = self._approach(j, bearing)
                return bearing % 360.0, distance, seconds
            i, j = (i - 1 if i - 1 in wider else i), (j + 1 if j + 1 in wider else j)

    def _approach(self, j: int, fallback: float) -> float:
        """The bearing from the latest fix at least `HEADING_BASE_M` before fix j (within 5 minutes) to it."""
        end = self.fixes[j]
        for k in range(j - 1, -1, -1):
            if self.times[j] - self.times[k] > 300.0:
                break
            bearing, _, distance = GEOD.inv(self.fixes[k].lon, self.fixes[k].lat, end.lon, end.lat)
            if distance >= HEADING_BASE_M:
                return bearing
        return fallback

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return start + self.offset <= self.end and end + self.offset >= self.start


def _circular(a: float, b: float, w: float) -> float:
    delta = (b - a + 180.0) % 360.0 - 180.0
    return (a + w * delta) % 360.0


def check(fixes: list[Fix], path: Path | None) -> None:
    """Empty, unsorted, repeated times, NaN or out-of-range coordinates: one line naming the fix."""
    if len(fixes) < 2:
        raise ConfigError(f"track has {len(fixes)} fixes; at least 2 are needed", path=path, fix=FIX)
    for n, f in enumerate(fixes):
        if not (math.isfinite(f.lat) and math.isfinite(f.lon)) or abs(f.lat) > 90 or abs(f.lon) > 180:
            raise ConfigError(f"fix {n + 1} has coordinates out of range (lat {f.lat}, lon {f.lon})", path=path,
                              fix="latitudes lie in [-90, 90], longitudes in [-180, 180], in degrees")
        bad = [f"{name} {v}" for name, v, top in (("heading_deg", f.heading_deg, 360.0),
                                                   ("speed_mps", f.speed_mps, MAX_SPEED_MPS))
               if v is not None and not (math.isfinite(v) and -top <= v <= top and (name != "speed_mps" or v >= 0))]
        if bad:
            raise ConfigError(f"fix {n + 1} has {', '.join(bad)}", path=path,
                              fix=f"headings in degrees within ±360, speeds from 0 to {MAX_SPEED_MPS:g} m/s; "
                              "leave a value out where it is not known")
        if n and f.t <= fixes[n - 1].t:
            what = "repeats the time of" if f.t == fixes[n - 1].t else "is earlier than"
            raise ConfigError(f"fix {n + 1} ({f.t.isoformat()}) {what} the fix before it", path=path,
                              fix="sort the fixes by time and drop repeated ones")


def read_track(path: Path, offset_s: float = 0.0) -> Track:
    """A track file by its suffix: .gpx, .nmea/.log/.txt (NMEA 0183), .csv."""
    if not path.is_file():
        raise ConfigError("track file not found", path=path, fix="pass --track with an existing GPX/NMEA/CSV file")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the track ({e})", path=path, fix=FIX) from None
    if suffix == ".gpx":
        fixes = _gpx(text, path)
    elif suffix in (".nmea", ".log", ".txt"):
        fixes = _nmea(text)
    elif suffix == ".csv":
        fixes = _csv(text, path)
    else:
        raise ConfigError(f"unknown track format {suffix!r}", path=path, fix=FIX)
    return Track(fixes, path, offset_s)


def _gpx(text: str, path: Path) -> list[Fix]:
    import gpxpy
    import gpxpy.gpx

    try:
        gpx = gpxpy.parse(text)
    except gpxpy.gpx.GPXException as e:
        raise ConfigError(f"not a GPX file ({e})", path=path, fix=FIX) from None
    points = [p for track in gpx.tracks for segment in track.segments for p in segment.points]
    if any(p.time is None for p in points):
        raise ConfigError("GPX track points without <time>", path=path, fix="record the track with timestamps")
    return [Fix(_utc(p.time), p.latitude, p.longitude, p.course, p.speed) for p in points]  # type: ignore[arg-type]


class NmeaParser:
    """NMEA 0183 line by line (a log file, or a live receiver): RMC gives date, time, position, speed and
    course; a GGA takes the date of the RMC before it, and yields only where no RMC gave that second."""

    def __init__(self) -> None:
        self.day = None
        self.last: datetime | None = None

    def feed(self, line: str) -> Fix | None:
        import pynmea2

        line = line.strip()
        if not line.startswith("$"):
            return None
        try:
            return self._fix(pynmea2.parse(line, check=True))
        except (pynmea2.ParseError, ValueError, TypeError, AttributeError):
            return None  # a torn line of a serial log, or fields that do not parse (read lazily): skip it

    def _fix(self, msg: Any) -> Fix | None:
        kind = getattr(msg, "sentence_type", "")
        if kind == "RMC" and getattr(msg, "status", "") == "A" and msg.datestamp and msg.timestamp:
            self.day = day = msg.datestamp
            t = _utc(datetime.combine(day, msg.timestamp))
            speed = float(msg.spd_over_grnd) * 0.514444 if msg.spd_over_grnd is not None else None
            course = float(msg.true_course) if msg.true_course is not None else None
            self.last = t
            return Fix(t, msg.latitude, msg.longitude, course, speed)
        if kind == "GGA" and self.day and msg.timestamp and int(msg.gps_qual or 0) > 0:
            t = _utc(datetime.combine(self.day, msg.timestamp))
            if t != self.last:
                return Fix(t, msg.latitude, msg.longitude)
        return None


def _nmea(text: str) -> list[Fix]:
    parser, fixes = NmeaParser(), {}
    for line in text.splitlines():
        fix = parser.feed(line)
        if fix is not None and (fix.t not in fixes or fix.heading_deg is not None):
            fixes[fix.t] = fix
    return [fixes[t] for t in sorted(fixes)]


def _csv(text: str, path: Path) -> list[Fix]:
    reader = csv.DictReader(text.splitlines())
    columns = {c.strip() for c in reader.fieldnames or []}
    if not {"time", "lat", "lon"} <= columns:
        raise ConfigError(f"CSV track columns {sorted(columns)} lack time, lat or lon", path=path, fix=FIX)
    fixes = []
    for n, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        try:
            fixes.append(Fix(_utc(datetime.fromisoformat(row["time"])), float(row["lat"]), float(row["lon"]),
                             float(row["heading_deg"]) if row.get("heading_deg") else None,
                             float(row["speed_mps"]) if row.get("speed_mps") else None))
        except ValueError as e:
            raise ConfigError(f"CSV line {n}: {e}", path=path,
                              fix="time as ISO 8601 with a zone (2026-12-01T08:00:00+08:00), numbers in degrees") \
                from None
    return fixes


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
