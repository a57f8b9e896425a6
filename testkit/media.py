"""Test videos composed from real photos, encoded with H.264 through PyAV.

A still scene is what a fixed camera sees of parked bikes: the same picture, with sensor noise on every
frame and H.264 compression on top, so the detector's confidence flickers as it does on real video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

BIKES_A = "20220818_11_47_09_054_000_sCWeXGsURpaLbQKOqWgmXSHiSAw2_F_4160_3120_jpg"  # two parked bikes
BIKES_B = "20220821_09_19_53_009_000_hZQaKn4zVMT2wlTW9KEEaSSmUWr1_F_2592_1944_jpg"  # two parked bikes
TILE = 640


@dataclass
class Scene:
    image: np.ndarray  # BGR, 1280x640: photo A on the left, photo B on the right
    bikes: list[tuple[float, float, float, float]]  # labelled bike boxes, pixels of `image`


def _photo(shared: Path, stem: str) -> Path:
    found = sorted((shared / "datasets" / "bicycles" / "images").glob(f"*/{stem}*.jpg"))
    if not found:
        raise FileNotFoundError(f"{stem} not in {shared}/datasets/bicycles")
    return found[0]


def _labels(photo: Path, x_offset: int) -> list[tuple[float, float, float, float]]:
    label = Path(str(photo).replace("/images/", "/labels/")).with_suffix(".txt")
    boxes = []
    for line in label.read_text().splitlines():
        if line.strip():
            cx, cy, w, h = (float(v) for v in line.split()[1:5])
            boxes.append(((cx - w / 2) * TILE + x_offset, (cy - h / 2) * TILE,
                          (cx + w / 2) * TILE + x_offset, (cy + h / 2) * TILE))
    return boxes


def bike_scene(shared: Path) -> Scene:
    """Two real street photos of parked bikes side by side, with their labelled bike boxes."""
    photos = [_photo(shared, BIKES_A), _photo(shared, BIKES_B)]
    tiles = [cv2.resize(cv2.imread(str(p)), (TILE, TILE), interpolation=cv2.INTER_CUBIC) for p in photos]
    bikes = [box for i, p in enumerate(photos) for box in _labels(p, i * TILE)]
    return Scene(image=np.hstack(tiles), bikes=bikes)


def other_scene(shared: Path) -> np.ndarray:
    """A different real view (the plaza of vtest.avi, no bikes), same size as the bike scene."""
    capture = cv2.VideoCapture(str(shared / "videos" / "vtest.avi"))
    ok, frame = capture.read()
    capture.release()
    assert ok, "cannot read vtest.avi"
    return cv2.resize(frame, (2 * TILE, TILE), interpolation=cv2.INTER_CUBIC)


def still_video(path: Path, scenes: list[tuple[np.ndarray, float]], fps: int = 5, noise: float = 4.0,
                seed: int = 0) -> Path:
    """Each (image, seconds) in turn, as H.264 at `fps` with a keyframe every 2 s."""
    rng = np.random.default_rng(seed)
    height, width = scenes[0][0].shape[:2]
    patterns = [rng.normal(0, noise, (height, width, 3)).astype(np.float32) for _ in range(7)]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(2 * fps), "crf": "26"}
        for image, seconds in scenes:
            for i in range(round(seconds * fps)):
                noisy = np.clip(image + patterns[i % len(patterns)], 0, 255).astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="bgr24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
