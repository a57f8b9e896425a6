"""The event lifecycle on synthetic detection sequences (pure logic: no model, no video)."""

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detector.camera.events import Event
from detector.camera.pipeline import CameraPipeline
from detector.config.camera import CameraConfig
from detector.config.card import ModelCard
from detector.detections import Detections, Frame

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TEXTURE = np.random.default_rng(1).integers(0, 255, (360, 640, 3), dtype=np.uint8)
BIKE = [100.0, 100.0, 160.0, 220.0]


class RecordingSink:
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.closed_events: list[Event] = []

    def opened(self, event: Event) -> None:
        self.log.append(("opened", event.id))

    def updated(self, event: Event) -> None:
        self.log.append(("updated", event.id))

    def closed(self, event: Event) -> None:
        self.log.append(("closed", event.id))
        self.closed_events.append(event)

    def flush(self) -> None:
        pass

    @property
    def opened_ids(self) -> list[str]:
        return [i for what, i in self.log if what == "opened"]


@pytest.fixture
def pipeline(tmp_path: Path) -> tuple[CameraPipeline, RecordingSink]:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights")
    card = ModelCard.model_validate({"name": "test", "weights": str(weights),
                                     "classes": {"bicycle": {"kind": "bike"}}})
    camera = CameraConfig.model_validate({
        "camera": {"id": "cam", "timezone": "Asia/Shanghai"},
        "zones": [{"id": "bay", "type": "allowed", "kinds": ["bike"],
                   "polygon": [[500, 0], [640, 0], [640, 360], [500, 360]]}],
        "rules": {"bike": {"min_dwell_s": 60, "close_after_s": 30}},
    })
    sink = RecordingSink()
    return CameraPipeline(camera, card, sink), sink


def feed(pipeline: CameraPipeline, boxes_per_frame: list[list[list[float]]], fps: float = 2.0,
         start_s: float = 0.0) -> float:
    t = start_s
    for i, boxes in enumerate(boxes_per_frame):
        t = start_s + i / fps
        frame = Frame(image=TEXTURE, pts_s=t, time=T0 + timedelta(seconds=t), source_uri="synthetic", index=i)
        n = len(boxes)
        dets = Detections(xyxy=np.array(boxes, np.float32).reshape(-1, 4), confidence=[0.8] * n,
                          class_name=["bicycle"] * n, kind=["bike"] * n)
        pipeline.process(frame, dets)
    return t


def test_bike_passing_through_gives_no_event(pipeline) -> None:
    pipe, sink = pipeline
    # Wheeled across the frame at walking pace (about 1 box width per second) for two minutes, wrapping.
    frames = [[[x, 100, x + 60, 220]] for x in (np.arange(240) * 30.0) % 420]
    feed(pipe, frames)
    pipe.end()
    assert sink.log == []


def test_bike_staying_twice_the_dwell_with_missed_detections(pipeline) -> None:
    pipe, sink = pipeline
    rng = np.random.default_rng(7)
    seen = rng.random(240) >= 0.3  # 120 s at 2 fps, 30 % missed
    jitter = rng.normal(0, 2, (240, 4))
    frames = [[list(np.array(BIKE) + jitter[i])] if seen[i] else [] for i in range(240)]
    last_seen_s = np.flatnonzero(seen)[-1] / 2.0
    first_seen_s = np.flatnonzero(seen)[0] / 2.0
    feed(pipe, frames + [[]] * 120)  # then gone for 60 s
    assert len(sink.opened_ids) == 1
    assert len(sink.closed_events) == 1
    event = sink.closed_events[0]
    assert event.kind == "bike" and event.category == {"code": "05-06", "name": "非机动车乱停放"}
    assert event.first_seen == T0 + timedelta(seconds=first_seen_s)
    assert event.last_seen == T0 + timedelta(seconds=last_seen_s)
    assert event.dwell_s == pytest.approx(last_seen_s - first_seen_s)
    # Closed after close_after_s of absence, not at the end of the input.
    assert ("closed", event.id) in sink.log and pipe.open_events() == []


def test_shorter_than_dwell_gives_no_event(pipeline) -> None:
    pipe, sink = pipeline
    feed(pipe, [[BIKE]] * 100)  # 50 s < 60 s
    pipe.end()
    assert sink.log == []


def test_rarely_seen_object_is_not_confirmed(pipeline) -> None:
    pipe, sink = pipeline
    feed(pipe, [[BIKE] if i % 5 == 0 else [] for i in range(300)])  # seen in 20 % of frames
    pipe.end()
    assert sink.log == []


def test_bike_in_bay_gives_no_event(pipeline) -> None:
    pipe, sink = pipeline
    feed(pipe, [[[520, 100, 580, 220]]] * 300)
    pipe.end()
    assert sink.log == []


def test_moved_bike_is_a_new_violation(pipeline) -> None:
    pipe, sink = pipeline
    feed(pipe, [[BIKE]] * 180 + [[[300, 100, 360, 220]]] * 180)
    pipe.end()
    assert len(sink.closed_events) == 2
    first, second = sorted(sink.closed_events, key=lambda e: e.first_seen)
    assert first.last_seen == T0 + timedelta(seconds=89.5)
    assert second.first_seen == T0 + timedelta(seconds=90)


def test_one_event_per_object_with_updates(pipeline) -> None:
    pipe, sink = pipeline
    other = [300.0, 150.0, 380.0, 260.0]
    feed(pipe, [[BIKE, other]] * 240)
    pipe.end()
    assert len(sink.opened_ids) == 2 and len(sink.closed_events) == 2
    assert all(e.status == "closed" for e in sink.closed_events)
    updates = [i for what, i in sink.log if what == "updated"]
    assert len(updates) == 2 * (240 - 121)  # every frame after the dwell was reached


def test_end_closes_open_events_at_last_sighting(pipeline) -> None:
    pipe, sink = pipeline
    feed(pipe, [[BIKE]] * 150)
    assert len(pipe.open_events()) == 1
    pipe.end()
    assert sink.closed_events[0].last_seen == T0 + timedelta(seconds=74.5)


def test_a_prohibited_zone_with_a_dwell_of_its_own_raises_sooner_there_only(tmp_path: Path) -> None:
    """A hospital entrance (prohibited, 10 s) on a pavement where bikes may stand 60 s."""
    card = ModelCard.model_validate({"name": "test", "weights": "w.pt", "classes": {"bicycle": {"kind": "bike"}}})
    camera = CameraConfig.model_validate({
        "camera": {"id": "cam", "timezone": "Asia/Shanghai"},
        "zones": [{"id": "entrance", "type": "prohibited", "min_dwell_s": 10,
                   "polygon": [[0, 0], [300, 0], [300, 360], [0, 360]]}],
        "rules": {"bike": {"min_dwell_s": 60, "close_after_s": 30}},
    })
    sink = RecordingSink()
    pipe = CameraPipeline(camera, card, sink)
    outside = [400.0, 100.0, 460.0, 220.0]
    feed(pipe, [[BIKE, outside]] * 40)  # 20 s: past the entrance's 10 s, not the pavement's 60 s
    assert len(sink.opened_ids) == 1 and "cam-" in sink.opened_ids[0]
    pipe.end()
    assert sink.closed_events[0].zone_id == "entrance"
    with pytest.raises(ValueError, match="min_dwell_s is for prohibited zones"):
        CameraConfig.model_validate({"camera": {"id": "c", "timezone": "UTC"}, "zones": [
            {"id": "bay", "type": "allowed", "min_dwell_s": 5, "polygon": [[0, 0], [1, 0], [1, 1]]}]})
    from detector.video.sampling import sampling_rate

    assert "zone entrance 10 s" in sampling_rate(camera, None)[1]


def test_an_object_back_after_a_gap_longer_than_close_after_is_a_new_event(pipeline) -> None:
    pipe, sink = pipeline
    end = feed(pipe, [[BIKE]] * 240)  # 120 s: one event
    feed(pipe, [[BIKE]] * 240, start_s=end + 3600)  # the next recording, an hour later: the bike again
    pipe.end()
    assert len(sink.opened_ids) == 2 and len(sink.closed_events) == 2
    first, second = sink.closed_events
    assert first.last_seen == T0 + timedelta(seconds=end)  # closed at its last sighting before the gap
    assert second.first_seen >= T0 + timedelta(seconds=end + 3600)
