import numpy as np

from detector.inference import suppress_duplicates
from detector.types import Detections


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
