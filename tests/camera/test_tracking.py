from datetime import datetime, timedelta

import numpy as np

from detector.camera.tracking import IouTracker
from detector.detections import Detections

T0 = datetime(2026, 1, 1, 12, 0)


def dets(boxes: list[list[float]], kind: str = "bike") -> Detections:
    return Detections(xyxy=np.array(boxes, np.float32).reshape(-1, 4), confidence=[0.9] * len(boxes),
                      class_name=["x"] * len(boxes), kind=[kind] * len(boxes))


def test_identity_survives_long_gaps_and_expires_after_max_age() -> None:
    tracker = IouTracker(max_age_s={"bike": 30})
    a = tracker.update(dets([[0, 0, 10, 20], [50, 0, 60, 20]]), T0)
    assert a.track_id.tolist() == [1, 2]
    # 25 s without a detection (a bus parked in front), then seen again slightly shifted.
    assert tracker.expire(T0 + timedelta(seconds=25)) == []
    b = tracker.update(dets([[51, 1, 61, 21], [1, 0, 11, 20]]), T0 + timedelta(seconds=25))
    assert b.track_id.tolist() == [2, 1]
    gone = tracker.expire(T0 + timedelta(seconds=56))
    assert sorted(t.id for t in gone) == [1, 2] and tracker.tracks == {}


def test_kinds_do_not_share_tracks() -> None:
    tracker = IouTracker(max_age_s={"bike": 30, "garbage": 30})
    tracker.update(dets([[0, 0, 10, 20]], "bike"), T0)
    g = tracker.update(dets([[0, 0, 10, 20]], "garbage"), T0 + timedelta(seconds=1))
    assert g.track_id.tolist() == [2]


def test_each_detection_matches_at_most_one_track() -> None:
    tracker = IouTracker(max_age_s={"bike": 30})
    tracker.update(dets([[0, 0, 10, 20]]), T0)
    two = tracker.update(dets([[0, 0, 10, 20], [1, 0, 11, 20]]), T0 + timedelta(seconds=1))
    assert sorted(two.track_id.tolist()) == [1, 2]
