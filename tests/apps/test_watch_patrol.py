"""A patrol camera in `watch`: a drive-by clip played live, the car's position from a local NMEA server."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path

from detector.config.watch import WatchConfig
from detector.geo.places import metres
from testkit.driveby import DEMO_CAMERA, Drive, Street, compose
from testkit.gps import GpsServer
from testkit.worker import wait_for

SPEED_KMH = 25.0


def test_a_watched_patrol_camera_places_the_bike_it_drives_past(tmp_path: Path, shared: Path) -> None:
    from detector.apps.watch.worker import Worker
    from detector.model.detector import Detector
    from detector.model.weights import DEFAULT_CARD, load_card

    card = load_card(str(DEFAULT_CARD))  # YOLOv8s sees the bikes from far enough for parallax; v8n does not
    detector = Detector(card)
    camera = DEMO_CAMERA.__class__(**{**DEMO_CAMERA.__dict__, "width": 960, "height": 540})
    # 45 m of street, past a catalogue bike at 106 m
    drive = Drive(starts=("2026-12-01T09:00:00+08:00",), speeds_kmh=(SPEED_KMH,), fps=10, start_m=80.0, end_m=125.0)
    truth = compose(tmp_path / "media", shared, camera, drive)
    street, speed = Street(), SPEED_KMH / 3.6
    latest: dict[str, float] = {}

    def where() -> tuple[float, float, float, float]:
        """The car's receiver knows where the car is: where the clip being played shows it."""
        if not latest:
            return (*street.latlon(drive.start_m, 0.0), street.bearing_deg, 0.0)
        s = drive.start_m + speed * (latest["pts"] + time.time() - latest["wall"])
        return (*street.latlon(s, 0.0), street.bearing_deg, speed)

    gps = GpsServer("nmea-tcp", lambda _t: where(), rate_hz=4.0).start()
    patrol = {"camera": {"id": "car-right", "timezone": "Asia/Shanghai"}, "kinds": ["bike"],
              "mount": {k: getattr(camera, k) for k in ("height_m", "pitch_deg", "hfov_deg", "yaw_deg")},
              "source": str(tmp_path / "media" / "pass-1.mp4"), "gps": gps.url}
    config = WatchConfig.model_validate({"out": str(tmp_path / "out"), "http": {"port": 0}, "fps": 3,
                                         "static_recheck_s": 0, "cameras": [patrol]})
    workers: list[Worker] = []

    def run() -> None:
        worker = Worker(config, card, detector=detector)
        put = worker.slots.put

        def seen(camera_id: str, frame) -> None:
            latest.update(pts=frame.pts_s, wall=frame.time.timestamp())
            put(camera_id, frame)

        worker.slots.put = seen  # type: ignore[method-assign]
        workers.append(worker)
        worker.run()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        events = tmp_path / "out" / "events.sqlite"
        wait_for(lambda: events.exists() and _geo_events(events), 60, "a geo-tagged bike event")
    finally:
        wait_for(lambda: workers, 10, "the worker")
        workers[0].stop()
        thread.join(timeout=20)
        gps.stop()
    event = _geo_events(events)[0]
    bikes = [(o["lat"], o["lon"]) for o in truth["objects"] if o["kind"] == "bike"]
    assert min(metres((event["lat"], event["lon"]), bike) for bike in bikes) < 5.0
    geo = json.loads(event["geo"])
    assert geo["vehicle"]["speed_mps"] > 4 and geo["sightings"] >= 3
    assert datetime.fromisoformat(event["first_seen"]).year == datetime.now().year  # live: wall-clock times


def _geo_events(path: Path) -> list[dict]:
    import sqlite3

    try:
        with sqlite3.connect(path) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM events WHERE lat IS NOT NULL AND kind = 'bike'")]
    except sqlite3.OperationalError:
        return []
