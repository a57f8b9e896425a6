"""`scan` end to end with the real COCO weights on real video and on videos composed from real photos."""

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detector.apps.scan import scan
from detector.config.camera import CameraConfig
from detector.geometry import iou_matrix
from detector.output.store import SCHEMA_VERSION
from testkit import REPO

START = datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
BAY = [[0.52, 0.0], [1.0, 0.0], [1.0, 1.0], [0.52, 1.0]]  # the right photo of the bike scene


def bay_camera(dwell: float = 30) -> CameraConfig:
    return CameraConfig.model_validate({
        "camera": {"id": "cam-bikes", "timezone": "Europe/Amsterdam"},
        "default": "prohibited",
        "zones": [{"id": "bike-bay", "type": "allowed", "kinds": ["bike"], "polygon": BAY}],
        "rules": {"bike": {"min_dwell_s": dwell}},
    })


def run(videos: list[Path], out: Path, coco_card, detector, camera: CameraConfig | None = None):
    return scan(videos, camera or bay_camera(), coco_card, out, start=START, detector=detector)


def bikes_outside_bay(bike_scene) -> list[tuple[float, ...]]:
    return [b for b in bike_scene.bikes if (b[0] + b[2]) / 2 < 0.52 * bike_scene.image.shape[1]]


def test_parked_bikes_give_one_event_each_outside_the_bay(tmp_path, videos, coco_card, detector, bike_scene):
    result = run([videos["bikes_90s"]], tmp_path, coco_card, detector)
    expected = bikes_outside_bay(bike_scene)
    assert len(expected) == 2 and len(bike_scene.bikes) == 4
    events = result.events
    assert len(events) == len(expected), [e["bbox"] for e in events]
    ious = iou_matrix(np.array([e["bbox"] for e in events]), np.array(expected))
    # Each event is a different labelled bike outside the bay.
    assert sorted(ious.argmax(axis=1).tolist()) == [0, 1] and ious.max(axis=1).min() >= 0.35
    for event in events:
        assert event["kind"] == "bike" and event["status"] == "closed" and event["zone_id"] is None
        assert event["category"] == {"code": "05-06", "name": "非机动车乱停放"}
        first = datetime.fromisoformat(event["first_seen"])
        last = datetime.fromisoformat(event["last_seen"])
        assert first.utcoffset() == timedelta(hours=1)  # camera time zone, with offset
        assert first - START < timedelta(seconds=5)
        assert timedelta(seconds=85) <= last - START <= timedelta(seconds=90)
        assert event["dwell_s"] == pytest.approx((last - first).total_seconds(), abs=0.01)
        assert event["model"]["card"] == "coco-yolov8n" and len(event["model"]["sha256"]) == 64
        assert event["source"]["uri"] == str(videos["bikes_90s"]) and 0 <= event["source"]["pts_s"] <= 90
        for key in ("snapshot", "clean_frame", "crop"):
            image = tmp_path / event[key]
            assert image.is_file() and image.read_bytes()[:2] == b"\xff\xd8"  # a complete JPEG
    assert not list((tmp_path / "snapshots").glob(".*"))  # no temporary files left behind


def test_outputs_are_consistent_and_rerun_does_not_duplicate(tmp_path, videos, coco_card, detector):
    first = run([videos["bikes_90s"]], tmp_path, coco_card, detector)
    second = run([videos["bikes_90s"]], tmp_path, coco_card, detector)
    assert [e["id"] for e in first.events] == [e["id"] for e in second.events]
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert lines == second.events
    db = sqlite3.connect(tmp_path / "events.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT count(*), min(status), max(status) FROM events").fetchone() == (2, "closed", "closed")


def test_clip_shorter_than_dwell_gives_none(tmp_path, videos, coco_card, detector):
    assert run([videos["bikes_20s"]], tmp_path, coco_card, detector).events == []


def test_scene_change_closes_events_at_the_change(tmp_path, videos, coco_card, detector):
    result = run([videos["scene_change"]], tmp_path, coco_card, detector)
    assert len(result.events) == 2
    for event in result.events:
        last = datetime.fromisoformat(event["last_seen"]) - START
        assert timedelta(seconds=49) <= last < timedelta(seconds=50)


def test_consecutive_files_continue_one_event(tmp_path, videos, coco_card, detector):
    # bikes_90s then the first 50 s of scene_change: one recording in two files.
    result = run([videos["bikes_90s"], videos["scene_change"]], tmp_path, coco_card, detector)
    assert len(result.events) == 2
    for event in result.events:
        assert datetime.fromisoformat(event["last_seen"]) - START >= timedelta(seconds=139)


def test_people_walking_give_no_bike_or_vending_event(tmp_path, shared, coco_card, detector):
    camera = CameraConfig.model_validate({
        "camera": {"id": "plaza", "timezone": "Europe/Madrid"},
        "rules": {"bike": {"min_dwell_s": 10}, "vending": {"min_dwell_s": 20}},
    })
    result = scan([shared / "videos" / "vtest.avi"], camera, coco_card, tmp_path, detector=detector)
    assert result.events == []
    assert result.reports[0].frames_sampled == 159 and result.reports[0].problems == []


def test_static_scene_economy_keeps_the_events(tmp_path, videos, coco_card, detector):
    every = scan([videos["scene_change"]], bay_camera(), coco_card, tmp_path / "every", start=START,
                 detector=detector, static_recheck_s=0)
    gated = scan([videos["scene_change"]], bay_camera(), coco_card, tmp_path / "gated", start=START,
                 detector=detector, static_recheck_s=10)
    assert every.skipped == 0 and every.inferred == 200
    assert gated.inferred + gated.skipped == 200 and gated.inferred < 0.2 * 200  # most still frames skip the model
    assert [(e["id"], e["first_seen"]) for e in gated.events] == [(e["id"], e["first_seen"]) for e in every.events]
    for a, b in zip(gated.events, every.events, strict=True):
        assert abs(datetime.fromisoformat(a["last_seen"]) - datetime.fromisoformat(b["last_seen"])) <= timedelta(
            seconds=10)


@pytest.mark.parametrize("card", ["coco-openvino", "coco11-openvino-int8"])
def test_fast_engines_give_the_same_events(tmp_path, videos, coco_card, detector, openvino_exports, card,
                                           monkeypatch):
    from detector.model.detector import Detector
    from detector.model.weights import load_card

    monkeypatch.setenv("STREETWATCH_WEIGHTS_DIR", str(openvino_exports))
    fast = load_card(card)
    fast_detector = Detector(fast)
    for name in ("bikes_90s", "scene_change"):
        # Every sampled frame inferred: the engines are compared frame by frame, not through the static-scene
        # gate, where one frame that a model misses costs a whole recheck interval (10 s).
        reference = scan([videos[name]], bay_camera(), coco_card, tmp_path / f"ref-{name}", start=START,
                         detector=detector, static_recheck_s=0).events
        events = scan([videos[name]], bay_camera(), fast, tmp_path / f"{card}-{name}", start=START,
                      detector=fast_detector, static_recheck_s=0).events
        assert len(events) == len(reference) == 2
        for a in events:  # each event with the reference event of the same object (best overlap)
            overlaps = [iou_matrix(np.array([a["bbox"]]), np.array([r["bbox"]]))[0, 0] for r in reference]
            b = reference[int(np.argmax(overlaps))]
            assert a["kind"] == b["kind"] and a["model"]["card"] == fast.card.name
            for key in ("first_seen", "last_seen"):
                gap = datetime.fromisoformat(a[key]) - datetime.fromisoformat(b[key])
                assert abs(gap) <= timedelta(seconds=2)
            assert max(overlaps) >= 0.5  # the same object


def test_one_file_spelled_two_ways_is_one_input(tmp_path, videos, coco_card, detector, monkeypatch):
    video = videos["bikes_90s"]
    monkeypatch.chdir(video.parent)
    first = run([Path(video.name)], tmp_path, coco_card, detector)  # relative, as typed in a shell
    second = run([video.parent / ".." / video.parent.name / video.name], tmp_path, coco_card, detector)
    assert [e["id"] for e in first.events] == [e["id"] for e in second.events] and len(first.events) == 2
    assert second.events[0]["source"]["uri"] == str(video.resolve())
    db = sqlite3.connect(tmp_path / "events.sqlite")
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 2  # not four


def test_a_vendor_staying_by_a_parasol_is_vending_and_people_passing_one_are_not(tmp_path, shared):
    """The composed plaza (testkit/stalls.py): two parasols, a vendor staying by the left one, a stream of
    people passing the right one, through the card with both the learnt vending class and the composite
    rule (a parasol is the rule's stall). Without `vendor_stays` both become events; with it only the
    staffed one does."""
    from detector.model.detector import Detector
    from detector.model.weights import load_card
    from testkit import stalls

    clip = tmp_path / "plaza.mp4"
    truth = stalls.compose(clip, shared, START)
    card = load_card(REPO / "detector" / "cards" / "streetwatch-v4-union.yaml")
    detector = Detector(card)

    def vending_events(stay: dict | None) -> list[dict]:
        rule = {"min_dwell_s": 20, **({"vendor_stays": stay} if stay is not None else {})}
        camera = CameraConfig.model_validate({"camera": {"id": "plaza", "timezone": "Europe/Amsterdam"},
                                              "rules": {"vending": rule}})
        out = tmp_path / ("stay" if stay is not None else "plain")
        return scan([clip], camera, card, out, start=START, detector=detector).events

    def parasol(event: dict) -> str:
        ious = {k: iou_matrix(np.array([event["bbox"]]), np.array([truth[k]]))[0, 0] for k in ("staffed", "passed")}
        best = max(ious, key=ious.get)
        return best if ious[best] > 0.7 else "elsewhere"

    assert sorted(parasol(e) for e in vending_events(None)) == ["passed", "staffed"]
    events = vending_events({})
    assert [parasol(e) for e in events] == ["staffed"] and events[0]["dwell_s"] >= 20


def test_a_rejected_false_alarm_raises_no_event_the_next_day_until_undone(tmp_path, videos, coco_card, detector):
    from detector.output.reviews import Reviews
    from detector.output.store import open_store
    from detector.output.suppressions import SuppressionRows

    day = timedelta(days=1)
    first = scan([videos["bikes_90s"]], bay_camera(), coco_card, tmp_path, start=START, detector=detector)
    assert len(first.events) == 2
    wrong = min(first.events, key=lambda e: e["bbox"][0])  # the operator: that one is not a violation
    store = open_store(tmp_path / "events.sqlite")
    try:
        verdict = Reviews(store, tmp_path).review(wrong["id"], "rejected", "not a violation", "ops")
        assert verdict["sticks"] is True
        second = scan([videos["bikes_90s"]], bay_camera(), coco_card, tmp_path, start=START + day, detector=detector)
        assert second.suppressed == 1
        assert len(second.events) == 1 and second.events[0]["id"] not in {e["id"] for e in first.events}
        ious = iou_matrix(np.array([second.events[0]["bbox"]]), np.array([e["bbox"] for e in first.events]))[0]
        assert ious[[e["id"] for e in first.events].index(wrong["id"])] < 0.3  # the other bike's event
        [kept] = SuppressionRows(store).listing()
        assert kept["id"] == wrong["id"] and kept["tracks"] == 1 and kept["reviewer"] == "ops"
        assert kept["last_hit"].startswith((START + day).astimezone(UTC).date().isoformat())

        assert SuppressionRows(store).undo(wrong["id"], "ops") is True
        third = scan([videos["bikes_90s"]], bay_camera(), coco_card, tmp_path, start=START + 2 * day,
                     detector=detector)
        assert third.suppressed == 0 and len(third.events) == 2
        assert SuppressionRows(store).listing() == [] and len(SuppressionRows(store).listing(lifted=True)) == 1
    finally:
        store.close()
