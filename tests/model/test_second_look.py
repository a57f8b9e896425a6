"""The second look: crops, and a tiny real training through scripts/train_second_look.py whose card runs in the
Detector, on PyTorch and on OpenVINO alike (labels and the threshold choice: tests/learn/test_look.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from detector.model.second_look import CONTEXT, crops
from testkit import REPO, script

look = script("train_second_look")


def test_a_crop_carries_context_and_stays_inside_the_picture() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 80:120] = (0, 0, 255)  # a red box in BGR
    out = crops(image, np.array([[80, 40, 120, 60], [190, 90, 260, 140]], np.float32), 32)
    assert out.shape == (2, 3, 32, 32) and out.dtype == np.float32 and out.max() <= 1.0
    red = out[0, 0]  # RGB: channel 0 is red
    margin = round(32 * CONTEXT / (1 + 2 * CONTEXT))  # the context around the box, in crop pixels
    assert red[16, 16] == pytest.approx(1.0) and red[1, 1] == 0.0 and red[16, margin + 2] > 0.9
    assert out[1].max() == 0.0  # the part inside the picture is black; the rest is clipped away


def tiny_dataset(root: Path, shared: Path) -> Path:
    """Six cn-street-garbage photos (garbage, bins, overflow) as a YOLO dataset, four to train, two to validate."""
    src = shared / "datasets" / "cn-street-garbage"
    images = sorted((src / "images" / "val").iterdir())[:6]
    for split, chosen in (("train", images[:4]), ("val", images[4:])):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for image in chosen:
            (root / "images" / split / image.name).symlink_to(image.resolve())
            label = src / "labels" / "val" / f"{image.stem}.txt"
            (root / "labels" / split / f"{image.stem}.txt").write_text(label.read_text())
    (root / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images/train", "val": "images/val",
                                                    "names": {0: "garbage", 1: "garbage_bin", 2: "overflow"}}))
    return root


def test_a_second_look_trains_on_the_cards_candidates_and_runs_in_its_card(tmp_path: Path, shared: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from detector.model.compiled import for_runtime
    from detector.model.detector import Detector
    from detector.model.weights import load_card

    monkeypatch.setenv("STREETWATCH_CACHE", str(tmp_path / "cache"))
    data = tiny_dataset(tmp_path / "data", shared)
    cards = tmp_path / "cards"
    cards.mkdir()
    for name in ("streetwatch-v4.yaml", "streetwatch-v3.head.pt", "streetwatch-v4.head.pt"):
        (cards / name).write_bytes((REPO / "detector" / "cards" / name).read_bytes())
    out = cards / "tiny-look.yaml"
    assert look.main(["--card", str(cards / "streetwatch-v4.yaml"), "--data", str(data), "--val", str(data),
                      "--out-card", str(out), "--epochs", "3", "--size", "64", "--max-false-alarm", "1.0"]) == 0
    loaded = load_card(out)
    spec = loaded.card.second_look
    assert spec is not None and spec.classes == ["garbage", "overflow"] and 0 < spec.threshold < 1
    assert loaded.look_path.stat().st_size < 2e6 and loaded.card.metrics["second_look"]["crops"][0] > 0
    image = cv2.imread(str(next((data / "images" / "val").iterdir())))
    eager, compiled = Detector(loaded), Detector(for_runtime(loaded, "openvino"))
    assert eager.look is not None and compiled.look is not None
    boxes = np.array([[10, 10, 120, 140], [200, 150, 400, 380]], np.float32)
    probs = eager.look.scores(image, boxes)
    assert probs.shape == (2,) and ((probs >= 0) & (probs <= 1)).all()
    assert np.abs(probs - compiled.look.scores(image, boxes)).max() < 1e-3  # OpenVINO gives PyTorch's answer
    looked = [eager.detect([image])[0], compiled.detect([image])[0]]
    assert all(set(d.kind.tolist()) <= {"garbage", "bike", "vending"} for d in looked)
    assert len(looked[0]) == len(looked[1])  # the same boxes kept, whichever runtime
