"""The live GPS feed against small local servers: NMEA over TCP and UDP, and gpsd's JSON."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from detector.geo.feed import GpsFeed, check_url, gpsd_fix
from detector.geo.places import metres
from detector.geo.track import GEOD
from testkit.gps import GpsServer, rmc

START = (31.2304, 121.4737)


def east(t: float) -> tuple[float, float, float, float]:
    lon, lat, _ = GEOD.fwd(START[1], START[0], 90.0, 7.0 * t)
    return lat, lon, 90.0, 7.0


@pytest.mark.parametrize("kind", ["nmea-tcp", "nmea-udp", "gpsd"])
def test_a_live_feed_gives_frames_the_cars_pose(kind: str) -> None:
    server = GpsServer(kind, east, rate_hz=5.0)
    feed = GpsFeed(server.url)
    if kind == "nmea-udp":  # the feed binds the port the server sends to
        feed.start()
        server.start()
    else:
        server.start()
        feed.start()
    try:
        deadline = time.monotonic() + 10
        while feed.fixes < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert feed.fixes >= 6 and feed.connected
        pose = feed.pose_at(datetime.now(UTC), max_gap_s=5.0)  # a frame now: just ahead of the last fix
        assert pose is not None and abs(pose.heading_deg - 90.0) < 1.0 and abs(pose.speed_mps - 7.0) < 0.2
        lat, lon, *_ = east(time.monotonic() - server.started)
        assert metres((pose.lat, pose.lon), (lat, lon)) < 3.0
    finally:
        feed.stop()
        server.stop()


def test_a_feed_that_is_not_there_yet_is_retried_and_frames_get_no_pose_meanwhile() -> None:
    server = GpsServer("nmea-tcp", east, rate_hz=5.0)
    feed = GpsFeed(server.url, max_backoff_s=0.5).start()
    try:
        time.sleep(0.8)
        assert feed.pose_at(datetime.now(UTC), 5.0) is None and not feed.connected
        server.start()
        deadline = time.monotonic() + 10
        while feed.fixes < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert feed.fixes >= 3
    finally:
        feed.stop()
        server.stop()


def test_sentences_and_reports_parse_and_bad_urls_are_refused() -> None:
    t = datetime(2026, 12, 1, 1, 2, 3, tzinfo=UTC)
    assert rmc(t, 31.5, -121.25, 45.0, 5.0).startswith("$GPRMC,010203.00,A,3130.0000,N,12115.0000,W,")
    fix = gpsd_fix({"class": "TPV", "mode": 2, "time": "2026-12-01T01:02:03.000Z", "lat": 31.2, "lon": 121.4})
    assert fix is not None and fix.t == t and fix.heading_deg is None
    assert gpsd_fix({"class": "TPV", "mode": 1, "time": "2026-12-01T01:02:03Z"}) is None  # no fix yet
    assert gpsd_fix({"class": "SKY"}) is None
    for bad, why in [("http://x:1", "unknown GPS feed"), ("gpsd://", "no host"), ("nmea+tcp://h:port", "bad port")]:
        with pytest.raises(ValueError, match=why):
            check_url(bad)
