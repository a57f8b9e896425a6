"""Rejections that stick: the likeness of real photo crops, and the suppressor's decisions (no model)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from detector.camera.suppress import (
    Suppression,
    Suppressor,
    box_signature,
    decode_signature,
    encode_signature,
    similarity,
)
from detector.config.camera import Suppress
from detector.detections import Detections, Frame

T0 = datetime(2026, 12, 8, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def _jpeg(image: np.ndarray, quality: int = 60) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


def _with(image: np.ndarray, box: tuple[float, ...], patch: np.ndarray) -> np.ndarray:
    """`image` with `patch` resized into `box` (another object standing where the first one was)."""
    out = image.copy()
    x1, y1, x2, y2 = (int(v) for v in box)
    out[y1:y2, x1:x2] = cv2.resize(patch, (x2 - x1, y2 - y1))
    return out


def _crop(image: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
    x1, y1, x2, y2 = (int(v) for v in box)
    return image[y1:y2, x1:x2]


def test_the_same_object_stays_alike_through_noise_compression_and_light(bike_scene) -> None:
    image, rng = bike_scene.image, np.random.default_rng(0)
    noisy = _jpeg(np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8))
    duller = np.clip(image * 0.6 + 10, 0, 255).astype(np.uint8)
    for box in bike_scene.bikes:
        sig = box_signature(image, box)
        assert similarity(sig, box_signature(noisy, box)) > 0.9
        assert similarity(sig, box_signature(duller, box)) > 0.85  # an overcast day


def test_another_object_at_the_same_place_is_not_alike(bike_scene, shared) -> None:
    image, bikes = bike_scene.image, bike_scene.bikes
    from testkit.media import other_scene

    plaza = other_scene(shared)
    for box in bikes:
        sig = box_signature(image, box)
        assert similarity(sig, box_signature(plaza, box)) < 0.5  # the bike gone: pavement and people there
    # The first photo's bikes replaced by the second photo's, box for box.
    for i in (0, 1):
        swapped = _with(image, bikes[i], _crop(image, bikes[3 - i]))
        assert similarity(box_signature(image, bikes[i]), box_signature(swapped, bikes[i])) < 0.5


def test_a_signature_survives_the_store() -> None:
    sig = box_signature(np.random.default_rng(3).integers(0, 255, (80, 80, 3), dtype=np.uint8), [10, 10, 60, 70])
    assert np.array_equal(decode_signature(encode_signature(sig)), sig)
    with pytest.raises(ValueError, match="768 bytes"):
        decode_signature(encode_signature(sig[:8]))


def _dets(boxes: list[tuple[float, ...]], track_ids: list[int], kind: str = "bike") -> Detections:
    n = len(boxes)
    return Detections(xyxy=np.array(boxes, np.float32).reshape(-1, 4), confidence=[0.8] * n,
                      class_name=["bicycle"] * n, kind=[kind] * n, track_id=track_ids)


def _frame(image: np.ndarray, seconds: float = 0.0) -> Frame:
    return Frame(image=image, pts_s=seconds, time=T0 + timedelta(seconds=seconds), source_uri="day2", index=0)


@pytest.fixture
def rejected(bike_scene) -> Suppression:
    box = bike_scene.bikes[0]
    return Suppression(id="ev-1", camera_id="cam", kind="bike", bbox=tuple(box),  # type: ignore[arg-type]
                       signature=box_signature(bike_scene.image, box), since=T0 - timedelta(days=1))


def test_a_rejected_object_is_dropped_and_counted_once_per_track(bike_scene, rejected) -> None:
    image, bikes = bike_scene.image, bike_scene.bikes
    suppressor = Suppressor(Suppress(), [rejected])
    for second in range(5):
        kept = suppressor.filter(_dets([bikes[0], bikes[1]], [7, 8]), _frame(image, second))
        assert kept.xyxy.tolist() == [list(np.float32(bikes[1]))]  # the other bike goes on to its dwell
    assert suppressor.total == 1
    hits = suppressor.drain()
    assert list(hits) == ["ev-1"] and hits["ev-1"].tracks == 1 and hits["ev-1"].last == T0 + timedelta(seconds=4)
    assert suppressor.drain() == {}


def test_what_is_not_the_rejected_object_goes_through(bike_scene, rejected) -> None:
    image, bikes = bike_scene.image, bike_scene.bikes
    suppressor = Suppressor(Suppress(), [rejected])
    swapped = _with(image, bikes[0], _crop(image, bikes[3]))  # a different bike where the rejected one stood
    assert len(suppressor.filter(_dets([bikes[0]], [1]), _frame(swapped))) == 1
    assert len(suppressor.filter(_dets([bikes[0]], [2], kind="garbage"), _frame(image))) == 1  # another kind
    moved = [bikes[0][0] + 200, bikes[0][1], bikes[0][2] + 200, bikes[0][3]]
    assert len(suppressor.filter(_dets([moved], [3]), _frame(image))) == 1  # elsewhere
    late = Frame(image=image, pts_s=0, time=T0 + timedelta(days=40), source_uri="later", index=0)
    assert len(suppressor.filter(_dets([bikes[0]], [4]), late)) == 1  # the rejection has run out (30 days)
    assert len(Suppressor(Suppress(enabled=False), [rejected]).filter(_dets([bikes[0]], [5]), _frame(image))) == 1
    assert suppressor.total == 0


def test_a_changed_object_raises_again_and_a_flicker_does_not(bike_scene, rejected) -> None:
    image, bikes = bike_scene.image, bike_scene.bikes
    rule = Suppress(min_similarity=0.9)
    suppressor = Suppressor(rule, [rejected])
    assert len(suppressor.filter(_dets([bikes[0]], [1]), _frame(image))) == 0
    # A little less alike than the threshold (but within the hysteresis): still the dropped object.
    swapped = _with(image, bikes[0], _crop(image, bikes[3]))
    blurred = cv2.addWeighted(image, 0.6, swapped, 0.4, 0)  # a passer-by half in front of it, say
    score = similarity(rejected.signature, box_signature(blurred, bikes[0]))
    assert rule.min_similarity - 0.1 <= score < rule.min_similarity
    assert len(suppressor.filter(_dets([bikes[0]], [1]), _frame(blurred, 1))) == 0
    assert len(Suppressor(rule, [rejected]).filter(_dets([bikes[0]], [1]), _frame(blurred, 1))) == 1  # new track
    assert len(suppressor.filter(_dets([bikes[0]], [1]), _frame(swapped, 2))) == 1  # changed: let go
    assert suppressor.total == 1


def test_a_frame_without_pixels_is_let_through(bike_scene, rejected) -> None:
    frame = Frame(image=None, shape=(1280, 640), pts_s=0, time=T0, source_uri="rescan", index=0)
    assert len(Suppressor(Suppress(), [rejected]).filter(_dets([bike_scene.bikes[0]], [1]), frame)) == 1


def test_hits_go_on_after_a_drain(bike_scene, rejected) -> None:
    suppressor = Suppressor(Suppress(), [rejected])
    suppressor.filter(_dets([bike_scene.bikes[0]], [1]), _frame(bike_scene.image, 0))
    assert suppressor.drain()["ev-1"].tracks == 1
    suppressor.filter(_dets([bike_scene.bikes[0]], [1]), _frame(bike_scene.image, 1))  # the same object, still
    hits = suppressor.drain()
    assert hits["ev-1"].tracks == 0 and hits["ev-1"].last == T0 + timedelta(seconds=1)
