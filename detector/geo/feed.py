"""A live GPS feed for a patrol camera watched by `streetwatch watch`: gpsd's JSON over TCP, or NMEA 0183
over TCP or UDP, read in a thread into a `Track` that frames ask for their pose.

    gpsd://127.0.0.1:2947        gpsd: ?WATCH={"enable":true,"json":true}, TPV reports (mode 2 or 3)
    nmea+tcp://192.168.1.20:10110 a receiver or a bridge serving NMEA sentences on a TCP port
    nmea+udp://0.0.0.0:10110      NMEA sentences sent as UDP datagrams to this port

A feed that drops is reconnected with a capped backoff; frames meanwhile get no pose (they are counted,
not placed), as in a gap of a recorded track.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from detector.config.patrol import GPS_SCHEMES as SCHEMES
from detector.config.patrol import check_gps_url as check_url
from detector.geo.track import Fix, NmeaParser, Pose, Track

log = logging.getLogger(__name__)
def gpsd_fix(report: dict) -> Fix | None:
    """A gpsd TPV report with a 2D or 3D fix; other classes and no-fix reports give None."""
    if report.get("class") != "TPV" or int(report.get("mode", 0)) < 2 or "lat" not in report:
        return None
    try:
        t = datetime.fromisoformat(str(report["time"]).replace("Z", "+00:00")).astimezone(UTC)
        return Fix(t, float(report["lat"]), float(report["lon"]),
                   float(report["track"]) if "track" in report else None,
                   float(report["speed"]) if "speed" in report else None)
    except (KeyError, ValueError, TypeError):
        return None


class GpsFeed:
    """`start()` reads the feed into `track` until `stop()`; `fixes`, `connected`, `last_fix` for /healthz."""

    def __init__(self, url: str, *, keep_s: float = 600.0, max_backoff_s: float = 10.0) -> None:
        self.url, self.parts = check_url(url), urlsplit(url)
        self.track = Track.live()
        self.keep_s, self.max_backoff_s = keep_s, max_backoff_s
        self.fixes = 0
        self.connected = False
        self.last_fix: datetime | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> GpsFeed:
        self._thread = threading.Thread(target=self._run, name=f"gps {self.url}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def pose_at(self, t: datetime, max_gap_s: float) -> Pose | None:
        with self._lock:
            return self.track.at(t, max_gap_s, ahead_s=max_gap_s / 2)

    def _add(self, fix: Fix | None) -> None:
        if fix is None:
            return
        with self._lock:
            if self.track.append(fix, self.keep_s):
                self.fixes += 1
                self.last_fix = fix.t

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if self.parts.scheme == "nmea+udp":
                    self._udp()
                else:
                    self._tcp()
                backoff = 0.5
            except OSError as e:
                log.warning("GPS feed %s: %s; retrying in %.1fs", self.url, e, backoff)
            self.connected = False
            self._stop.wait(backoff)
            backoff = min(self.max_backoff_s, backoff * 2)

    def _tcp(self) -> None:
        port = self.parts.port or SCHEMES[self.parts.scheme]
        with socket.create_connection((self.parts.hostname, port), timeout=5.0) as sock:
            sock.settimeout(1.0)
            self.connected = True
            gpsd = self.parts.scheme == "gpsd"
            if gpsd:
                sock.sendall(b'?WATCH={"enable":true,"json":true};\n')
            parser, buffer, quiet_since = NmeaParser(), b"", time.monotonic()
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    if time.monotonic() - quiet_since > 10.0:
                        raise OSError("no data for 10 s") from None
                    continue
                if not data:
                    raise OSError("connection closed")
                quiet_since = time.monotonic()
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._line(line.decode("ascii", "replace"), parser, gpsd)

    def _line(self, line: str, parser: NmeaParser, gpsd: bool) -> None:
        if not gpsd:
            self._add(parser.feed(line))
            return
        try:
            report = json.loads(line)
        except ValueError:
            return
        if isinstance(report, dict):
            self._add(gpsd_fix(report))

    def _udp(self) -> None:
        port = self.parts.port or SCHEMES["nmea+udp"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.parts.hostname, port))
            sock.settimeout(1.0)
            self.connected = True
            parser = NmeaParser()
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                for line in data.decode("ascii", "replace").splitlines():
                    self._line(line, parser, gpsd=False)
