"""The one data type and the box maths every stage shares (pure logic, synthetic arrays)."""

import numpy as np
import pytest

from detector.detections import Detections, Frame
from detector.geometry import box_gap, containment_matrix, iou_matrix, union_box


def test_bad_shapes_are_rejected_not_reshaped():
    with pytest.raises(ValueError, match=r"xyxy must have shape \(n, 4\)"):
        Detections(xyxy=np.zeros(8), confidence=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"confidence has shape \(1,\), not \(2,\)"):
        Detections(xyxy=np.zeros((2, 4)), confidence=[0.5])
    with pytest.raises(ValueError, match=r"kind has shape \(3,\), not \(2,\)"):
        Detections(xyxy=np.zeros((2, 4)), confidence=[0.5, 0.5], kind=["bike"] * 3)


def test_labels_not_known_yet_are_empty_and_tracks_unassigned():
    dets = Detections(xyxy=[[0, 0, 2, 4]], confidence=[0.9])
    assert dets.kind.tolist() == [""] and dets.zone_id.tolist() == [""] and dets.track_id.tolist() == [-1]
    assert dets.anchors("bottom_center").tolist() == [[1, 4]] and dets.anchors("center").tolist() == [[1, 2]]
    assert len(Detections.merge([dets, Detections(), dets])) == 2


def test_box_maths():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [2, 2, 4, 4], [20, 20, 30, 30]], np.float32)
    assert iou_matrix(a, b)[0].tolist() == pytest.approx([50 / 150, 4 / 100, 0])
    assert containment_matrix(a, b)[0].tolist() == pytest.approx([0.5, 1.0, 0.0])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (1, 0)
    assert box_gap(a[0], b[2]) == pytest.approx(np.hypot(10, 10)) and box_gap(a[0], b[0]) == 0
    assert union_box(b).tolist() == [2, 0, 30, 30]


def test_a_frame_without_pixels_keeps_its_size():
    from datetime import UTC, datetime

    frame = Frame(image=None, shape=(640, 360), pts_s=0.0, time=datetime.now(UTC), source_uri="x", index=0)
    assert frame.size == (640, 360)
    image = np.zeros((36, 64, 3), np.uint8)
    assert Frame(image=image, pts_s=0.0, time=datetime.now(UTC), source_uri="x", index=0).size == (64, 36)
