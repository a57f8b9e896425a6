from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

import detector.config.base as config_base
from detector.camera.events import Event
from detector.config.camera import CameraConfig
from detector.detections import Frame
from detector.geometry import crop_box
from detector.output.snapshots import SnapshotWriter, annotate, write_image_atomic

T = datetime(2026, 11, 23, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
CAMERA = CameraConfig.model_validate({
    "camera": {"id": "cam-7", "timezone": "Asia/Shanghai"},
    "zones": [{"id": "bay", "type": "allowed", "polygon": [[0.5, 0.5], [1, 0.5], [1, 1], [0.5, 1]]}],
})


def event(frame: Frame) -> Event:
    return Event(id="cam-7-x", camera_id="cam-7", kind="bike", category={"code": "05-06", "name": "n"},
                 zone_id=None, first_seen=T, last_seen=T, confidence=0.8, bbox=[10, 20, 50, 90], track_id=1,
                 source={"uri": "u", "pts_s": 0.0}, model={"card": "c", "sha256": "s"}, best_frame=frame,
                 best_dirty=True)


def test_annotate_and_write_three_images(tmp_path: Path) -> None:
    frame = Frame(image=np.zeros((200, 300, 3), np.uint8), pts_s=0, time=T, source_uri="u", index=0)
    e = event(frame)
    annotated = annotate(frame, e, CAMERA)
    assert annotated.shape == frame.image.shape and annotated.any() and not frame.image.any()
    SnapshotWriter(tmp_path, CAMERA).write(e)
    assert (e.snapshot, e.clean_frame, e.crop) == (
        "snapshots/cam-7-x.jpg", "snapshots/cam-7-x-clean.jpg", "snapshots/cam-7-x-crop.jpg")
    assert all((tmp_path / p).is_file() for p in (e.snapshot, e.clean_frame, e.crop))
    assert not e.best_dirty


def test_crop_is_clipped() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    assert crop_box(image, [90, 90, 120, 130]).shape == (16, 15, 3)  # margin, then clipped at 100
    assert crop_box(image, [20, 20, 40, 40]).shape == (27, 27, 3)


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(config_base.os, "fsync", broken_fsync)  # the one atomic write, in config/base
    with pytest.raises(OSError, match="disk full"):
        write_image_atomic(tmp_path / "a.jpg", np.zeros((10, 10, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
