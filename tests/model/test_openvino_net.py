"""The compiled card's own runner (OpenVINO, numpy, OpenCV): ultralytics' boxes, box for box, without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.errors import WeightsError
from detector.model.compiled import for_runtime
from detector.model.detector import Detector
from detector.model.openvino_net import OpenVinoNet, nms
from detector.model.weights import DEFAULT_CARD, load_card
from testkit import REPO


def _photos(shared: Path, per_set: int = 6) -> list[np.ndarray]:
    """Real photos of every kind, of several sizes and aspect ratios, and frames of the real videos."""
    sets = ["trashbags", "bicycles", "cn-street-garbage", "street-garbage-dev"]
    paths = [p for name in sets for p in sorted((shared / "datasets" / name).rglob("*.jpg"))[:per_set]]
    images = [cv2.imread(str(p)) for p in paths]
    for video in ("vtest.avi", "intel-car-detection.mp4"):
        capture = cv2.VideoCapture(str(shared / "videos" / video))
        ok, frame = capture.read()
        capture.release()
        assert ok, video
        images.append(frame)
    return images


def test_the_native_runner_gives_ultralytics_boxes_box_for_box(shared: Path, bike_scene, monkeypatch) -> None:
    loaded = for_runtime(load_card(str(DEFAULT_CARD)), "openvino")
    native = Detector(loaded)
    monkeypatch.setenv("STREETWATCH_NATIVE", "0")
    reference = Detector(loaded)
    assert native.net is not None and reference.model is not None and reference.net is None
    assert native.runtime == "OpenVINO, compiled"
    images = [*_photos(shared), bike_scene.image, cv2.resize(bike_scene.image, (333, 777))]
    boxes = 0
    for image in images:
        got, want = native.detect_one(image), reference.detect_one(image)
        assert list(got.class_name) == list(want.class_name) and list(got.kind) == list(want.kind)
        np.testing.assert_allclose(got.xyxy, want.xyxy, atol=0.01)
        np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-5)
        boxes += len(got)
    assert boxes >= 50, boxes  # the comparison saw real detections of every kind, not empty frames


def test_nms_keeps_what_torchvision_keeps() -> None:
    import torch
    import torchvision

    rng = np.random.default_rng(7)
    for _ in range(20):
        xy = rng.uniform(0, 200, (300, 2)).astype(np.float32)
        boxes = np.concatenate([xy, xy + rng.uniform(5, 80, (300, 2)).astype(np.float32)], axis=1)
        scores = rng.uniform(0.1, 1.0, 300).astype(np.float32)
        want = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.7).numpy()
        assert nms(boxes, scores, 0.7).tolist() == want.tolist()


def test_a_damaged_export_is_one_error_naming_the_folder_and_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "card_openvino_model"
    folder.mkdir()
    (folder / "card.xml").write_text("<net>cut short")
    (folder / "metadata.yaml").write_text("names: {0: bike}\n")
    with pytest.raises(WeightsError, match="cannot load the OpenVINO export") as error:
        OpenVinoNet(folder, 640)
    assert str(folder) in str(error.value) and "compiled again" in str(error.value)


def test_a_compiled_scan_loads_neither_torch_nor_ultralytics(tmp_path: Path, videos) -> None:
    for_runtime(load_card(str(DEFAULT_CARD)), "openvino")  # compiled first (the first use may need torch)
    code = ("import sys; from detector.cli import main; "
            f"rc = main(['scan', {str(videos['bikes_20s'])!r}, '--camera', 'zones/demo-bikes.yaml', "
            f"'--out', {str(tmp_path / 'out')!r}, '--runtime', 'auto']); "
            "print('loaded:', sorted(m for m in ('torch', 'ultralytics', 'torchvision') if m in sys.modules)); "
            "sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "loaded: []" in done.stdout, done.stdout + done.stderr
    assert "model: streetwatch-v4-openvino on OpenVINO, compiled (torch not imported)" in done.stdout
