"""Boxes operators draw: checked against the picture, kept with it, taken back, set right once per event."""

from datetime import UTC, datetime

import numpy as np
import pytest

from detector.output.marks import MarkRows, checked_box
from detector.output.store import EventStore


def test_a_box_is_clipped_to_the_picture_and_ordered() -> None:
    assert checked_box([120, 90, -10, 10], 100, 80) == [0.0, 10.0, 100.0, 80.0]
    for bad in ([1, 2, 3], [0, 0, float("nan"), 5], [200, 200, 300, 300], [10, 10, 12, 40]):
        with pytest.raises(ValueError):
            checked_box(bad, 100, 80)


def test_missed_marks_share_their_picture_and_corrections_replace_each_other(tmp_path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    rows = MarkRows(store, tmp_path)
    picture = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    at = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    marks = rows.missed("cam", picture, at, [("garbage", [1, 1, 30, 30]), ("bike", [40, 10, 70, 50])], "ann")
    assert len({m["image"] for m in marks}) == 1 and (tmp_path / marks[0]["image"]).is_file()
    with pytest.raises(ValueError, match="unknown value 'dragon'"):
        rows.missed("cam", picture, at, [("dragon", [1, 1, 30, 30])], "ann")
    assert rows.remove(marks[0]["id"], "bob") and not rows.remove(marks[0]["id"], "bob")
    assert [m["kind"] for m in rows.listing(camera="cam", missed_only=True)] == ["bike"]
    event = {"id": "cam-e1", "camera_id": "cam", "clean_frame": "snapshots/cam-e1-clean.jpg",
             "source": {"uri": "/v.mp4", "pts_s": 3.0}, "first_seen": at.isoformat()}
    rows.correct(event, "bike", [5, 5, 50, 50], picture, "ann")
    rows.correct(event, "garbage", [6, 6, 40, 40], picture, "bob")
    [fix] = rows.corrections().values()
    assert fix["kind"] == "garbage" and fix["bbox"] == [6, 6, 40, 40] and fix["reviewer"] == "bob"
    assert fix["image"].startswith("marks/fix-") and (tmp_path / fix["image"]).is_file()  # the frame drawn on
    assert [m["removed_by"] for m in rows.listing(camera="cam", missed_only=True)] == [None]
    assert rows.listing(event_id="cam-e1") == [fix]
    store.close()
