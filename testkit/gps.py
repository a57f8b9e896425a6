"""Small local GPS servers for tests: NMEA 0183 over TCP or UDP, and gpsd's JSON protocol over TCP.

Each replays a drive: `position(t)` gives (lat, lon, heading_deg, speed_mps) at `t` seconds since the
server started, and a fix a second (or `rate_hz`) is sent stamped with the current UTC time, as a
receiver in the car would.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import reduce

from testkit import free_port

Position = Callable[[float], tuple[float, float, float, float]]


def _checksum(body: str) -> str:
    return f"{reduce(lambda a, c: a ^ ord(c), body, 0):02X}"


def _angle(value: float, degree_digits: int) -> tuple[str, bool]:
    whole = int(abs(value))
    return f"{whole:0{degree_digits}d}{(abs(value) - whole) * 60:07.4f}", value >= 0


def rmc(t: datetime, lat: float, lon: float, heading_deg: float, speed_mps: float) -> str:
    la, north = _angle(lat, 2)
    lo, east = _angle(lon, 3)
    body = (f"GPRMC,{t:%H%M%S}.{t.microsecond // 10000:02d},A,{la},{'N' if north else 'S'},{lo},"
            f"{'E' if east else 'W'},{speed_mps / 0.514444:.2f},{heading_deg:.1f},{t:%d%m%y},,,A")
    return f"${body}*{_checksum(body)}\r\n"


class GpsServer:
    """`kind` nmea-tcp (serves sentences to whoever connects), nmea-udp (sends them to `port`), or gpsd."""

    def __init__(self, kind: str, position: Position, rate_hz: float = 2.0, port: int | None = None) -> None:
        self.kind, self.position, self.rate_hz = kind, position, rate_hz
        self.port = port or free_port(udp=kind == "nmea-udp")
        self.started = time.monotonic()
        self.sent = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: socket.socket | None = None

    @property
    def url(self) -> str:
        scheme = {"nmea-tcp": "nmea+tcp", "nmea-udp": "nmea+udp", "gpsd": "gpsd"}[self.kind]
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> GpsServer:
        self.started = time.monotonic()
        if self.kind == "nmea-udp":
            self._spawn(self._send_udp)
        else:
            self._server = socket.create_server(("127.0.0.1", self.port))
            self._server.settimeout(0.2)
            self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2.0)
        if self._server is not None:
            self._server.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _message(self) -> bytes:
        now = datetime.now(UTC)
        lat, lon, heading, speed = self.position(time.monotonic() - self.started)
        self.sent += 1
        if self.kind == "gpsd":
            report = {"class": "TPV", "mode": 3, "time": now.isoformat().replace("+00:00", "Z"), "lat": lat,
                      "lon": lon, "track": heading, "speed": speed}
            return (json.dumps(report) + "\n").encode()
        return rmc(now, lat, lon, heading, speed).encode()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            if self.kind == "gpsd":
                conn.sendall(b'{"class":"VERSION","release":"3.25","proto_major":3,"proto_minor":15}\n')
            try:
                while not self._stop.wait(1.0 / self.rate_hz):
                    conn.sendall(self._message())
            except OSError:
                return

    def _send_udp(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            while not self._stop.wait(1.0 / self.rate_hz):
                sock.sendto(self._message(), ("127.0.0.1", self.port))

