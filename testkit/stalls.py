"""A fixed camera over a plaza with two parasols, composed from real photos: a vendor stays, people pass.

The plaza is the real video vtest.avi (people walking across it). On it stand two parasols cut from a
COCO photo (the canopy of 000000000036): by the left one a vendor stands all along, shifting a little;
past the right one a stream of people walks, one every `walker_every_s`, so somebody is beside it in
most frames but nobody stays. The composite vending rule sees "a parasol with a person by it" at both;
only the stay rule (`vendor_stays`) tells them apart. `truth` says where each parasol stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from testkit.driveby import encode, feather, paste

SIZE = (768, 576)  # vtest.avi's, and the clip's
VIEW = (192, 288, 576, 576)  # the lawn below the plaza that the clip shows, zoomed 2x (people ~160 px tall)
PEOPLE = ((100, (376, 176, 409, 255)), (100, (347, 198, 381, 274)), (0, (253, 219, 282, 308)),
          (300, (313, 207, 344, 295)), (0, (640, 240, 683, 322)))  # (frame, box) of people in vtest.avi


@dataclass(frozen=True)
class Plaza:
    """Where things stand, in pixels of vtest.avi (the clip shows VIEW of it)."""

    seconds: float = 40.0
    fps: int = 5
    walker_every_s: float = 3.0
    walker_speed_px_s: float = 45.0  # about 1.4 m/s for a person 80 px tall
    parasol_px: float = 50.0  # canopy height (about 155 px wide)
    parasols: tuple[tuple[float, float], ...] = ((280.0, 420.0), (490.0, 420.0))  # canopy bottom centres
    vendor_at: tuple[float, float] = (350.0, 492.0)  # feet of the vendor, under the left parasol's edge
    walk_y: float = 515.0  # walkers pass just in front of the right parasol, right to left
    walk_x: tuple[float, float] = (600.0, 400.0)


def parasol_sprite(shared: Path) -> np.ndarray:
    """The canopy of the umbrella in COCO 000000000036 (above the head of the woman holding it)."""
    photo = cv2.imread(str(shared / "datasets" / "coco8" / "images" / "val" / "000000000036.jpg"))
    if photo is None:
        raise FileNotFoundError(f"{shared}/datasets/coco8/images/val/000000000036.jpg")
    crop = photo[55:200, 4:452]
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    pink = cv2.inRange(hsv, (140, 40, 60), (180, 255, 255))  # the canopy, without the sky behind it
    pink = cv2.morphologyEx(pink, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    return np.dstack([crop, feather(pink, 2)])


def people_sprites(shared: Path) -> list[np.ndarray]:
    """People cut from vtest.avi itself, so they match the plaza's light and scale."""
    capture = cv2.VideoCapture(str(shared / "videos" / "vtest.avi"))
    sprites = []
    for index, (x1, y1, x2, y2) in PEOPLE:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if not ok:
            raise FileNotFoundError(f"{shared}/videos/vtest.avi: no frame {index}")
        crop = frame[y1:y2, x1:x2]
        sprites.append(np.dstack([crop, feather(np.full(crop.shape[:2], 255, np.uint8), 2)]))
    capture.release()
    return sprites


def compose(out: Path, shared: Path, start: datetime, plaza: Plaza = Plaza(), seed: int = 0) -> dict:
    """Write the clip to `out` (H.264, creation_time `start`); return the parasols' boxes in clip pixels."""
    rng = np.random.default_rng(seed)
    vendor, *walkers = people_sprites(shared)
    parasol = parasol_sprite(shared)
    capture = cv2.VideoCapture(str(shared / "videos" / "vtest.avi"))
    step = max(1, round(capture.get(cv2.CAP_PROP_FPS) / plaza.fps))
    frames = []
    for i in range(round(plaza.seconds * plaza.fps)):
        for _ in range(step):
            ok, image = capture.read()
        if not ok:
            break
        t = i / plaza.fps
        for u, v in plaza.parasols:
            paste(image, parasol, u, v, plaza.parasol_px)
        dx, dy = rng.normal(0, 2, 2)  # a vendor is not a statue
        paste(image, vendor, plaza.vendor_at[0] + dx, plaza.vendor_at[1] + dy, vendor.shape[0])
        for k in range(int(t / plaza.walker_every_s) + 1):
            x = plaza.walk_x[0] - (t - k * plaza.walker_every_s) * plaza.walker_speed_px_s
            if x > plaza.walk_x[1]:
                walker = walkers[k % len(walkers)]
                paste(image, walker, x, plaza.walk_y, walker.shape[0])
        x1, y1, x2, y2 = VIEW
        frames.append(cv2.resize(image[y1:y2, x1:x2], SIZE, interpolation=cv2.INTER_CUBIC))
    capture.release()
    encode(out, frames, plaza.fps, start, SIZE)
    width = plaza.parasol_px * parasol.shape[1] / parasol.shape[0]
    zoom = SIZE[0] / (VIEW[2] - VIEW[0])
    boxes = [tuple(zoom * v for v in (u - width / 2 - VIEW[0], v - plaza.parasol_px - VIEW[1],
                                      u + width / 2 - VIEW[0], v - VIEW[1])) for u, v in plaza.parasols]
    return {"staffed": boxes[0], "passed": boxes[1], "seconds": len(frames) / plaza.fps}
