"""An event changes only through its own methods: seen again (the best sighting kept), located, closed once."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detector.camera.events import Event, Status
from detector.detections import Frame

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def frame(i: int) -> Frame:
    return Frame(image=np.zeros((4, 4, 3), np.uint8), pts_s=float(i), time=T0 + timedelta(seconds=i),
                 source_uri="a.mp4", index=i)


def opened() -> Event:
    return Event.open(camera_id="cam", kind="bike", category={"code": "05-06", "name": "n"}, zone_id=None,
                      first_seen=T0, last_seen=T0, frame=frame(0), confidence=0.5, bbox=[1, 2, 3, 4], track_id=7,
                      model={"card": "c", "sha256": "s"}, origin="a.mp4")


def test_an_event_keeps_its_best_sighting_and_closes_once() -> None:
    event = opened()
    assert event.id == opened().id and event.kind == "bike" and event.best_dirty  # the same input, the same id
    assert not event.seen(frame(5).time, frame(5), 0.4, [9, 9, 9, 9])  # less sure: only last_seen moves
    assert event.last_seen == frame(5).time and event.bbox == [1, 2, 3, 4] and event.dwell_s == 5.0
    assert event.seen(frame(6).time, frame(6), 0.9, [5, 5, 6, 6])
    assert event.confidence == 0.9 and event.source == {"uri": "a.mp4", "pts_s": 6.0}
    event.snapshots_written("s.jpg", "c.jpg", "x.jpg")
    assert not event.best_dirty and event.to_dict()["snapshot"] == "s.jpg"
    event.close("cleared")
    assert event.status == Status.CLOSED and event.resolution == "cleared"
    with pytest.raises(ValueError, match="is closed"):
        event.close()
    with pytest.raises(ValueError, match="is closed"):
        event.seen(frame(9).time)


def test_no_one_assigns_an_events_fields_from_outside() -> None:
    event = opened()
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.status = Status.CLOSED  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown value 'cars'"):
        dataclasses.replace(event, kind="cars")
