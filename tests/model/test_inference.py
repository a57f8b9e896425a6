from pathlib import Path

import numpy as np
import pytest

from detector.detections import Detections
from detector.geometry import suppress_duplicates


def test_one_box_per_object_and_kind() -> None:
    dets = Detections(
        xyxy=np.array([[203, 164, 281, 423], [189, 125, 278, 413], [400, 0, 500, 100], [203, 164, 281, 423]],
                      np.float32),
        confidence=[0.52, 0.40, 0.7, 0.6],
        class_name=["bicycle", "motorcycle", "bicycle", "x"],
        kind=["bike", "bike", "bike", "garbage"],
    )
    kept = suppress_duplicates(dets)
    assert kept.confidence.tolist() == [np.float32(0.52), np.float32(0.7), np.float32(0.6)]
    assert kept.kind.tolist() == ["bike", "bike", "garbage"]


def test_real_model_on_real_frame(detector, bike_scene) -> None:
    [found] = detector.detect([bike_scene.image])
    assert set(found.kind.tolist()) == {"bike"} and len(found) == 4
    assert found.class_name.tolist() == ["bicycle"] * 4


def test_a_corrupt_weights_file_names_the_file_and_the_cause(tmp_path, shared):
    from detector.errors import WeightsError, WeightsNotFound
    from detector.model.detector import load_yolo
    from detector.model.weights import load_card

    real = (shared / "models" / "yolov8n.pt").read_bytes()
    truncated, junk = tmp_path / "cut.pt", tmp_path / "junk.pt"
    truncated.write_bytes(real[: len(real) // 2])  # a download cut short
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"cut\.pt: cannot load weights: RuntimeError: .*central directory"):
        load_yolo(load_card("coco", weights=truncated))
    with pytest.raises(WeightsError, match=r"junk\.pt: cannot load weights: ValueError: Expected input"):
        load_yolo(load_card("coco", weights=junk))
    assert not issubclass(WeightsError, WeightsNotFound)  # a damaged file is not reported as a missing one



class _RunsCode:
    """Unpickling this calls os.system: what a crafted checkpoint does."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_is_refused_before_it_can_run_code(tmp_path, shared):
    import shutil

    import torch

    from detector.errors import WeightsError
    from detector.model.detector import load_yolo
    from detector.model.weights import load_card

    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": _RunsCode(str(marker))}, evil)
    with pytest.raises(WeightsError, match=r"evil\.pt: refused: the file would call posix\.system"):
        load_yolo(load_card("coco", weights=evil))
    # The same as a card's trained head, beside a card that names it.
    cards = tmp_path / "cards"
    cards.mkdir()
    card = (Path(load_card("streetwatch-v2").path).read_text())
    (cards / "card.yaml").write_text(card.replace("streetwatch-v2.head.pt", "evil.head.pt"))
    shutil.copy(evil, cards / "evil.head.pt")
    with pytest.raises(WeightsError, match=r"evil\.head\.pt: refused: the file would call posix\.system"):
        load_yolo(load_card(cards / "card.yaml"))
    assert not marker.exists()  # nothing ran
