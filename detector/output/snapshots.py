"""Snapshots: per event, the annotated picture an inspector sees, the clean frame and a crop.

Files are written to a temporary name and renamed, so a crash never leaves a half-written JPEG that an
event points at.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from detector.camera.events import Event
from detector.config.base import write_bytes_atomic
from detector.config.camera import CameraConfig, ZoneType
from detector.detections import Frame
from detector.geometry import crop_box
from detector.kinds import spec_of

ZONE_COLORS = {ZoneType.ALLOWED: (0, 200, 0), ZoneType.PROHIBITED: (0, 0, 230), ZoneType.IGNORE: (140, 140, 140)}


def stored_file(out_dir: Path | None, relative: str | None) -> Path | None:
    """The file a stored row names relative to the output folder, when it exists there: a row may point
    anywhere, and nothing outside the folder is ever read or served."""
    if out_dir is None or not relative:
        return None
    root = out_dir.resolve()
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def stored_image(out_dir: Path | None, relative: str | None) -> np.ndarray | None:
    """`stored_file`'s picture, decoded (None when it is missing, outside or not a picture)."""
    path = stored_file(out_dir, relative)
    image = cv2.imread(str(path)) if path is not None else None
    return image if image is not None and image.size else None


def write_image_atomic(path: Path, image: np.ndarray, quality: int = 90) -> None:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"{path}: JPEG encoding failed")
    write_bytes_atomic(path, data.tobytes())


def _label(image: np.ndarray, text: str, org: tuple[int, int], color: tuple[int, int, int], scale: float) -> None:
    thickness = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = org
    y = max(y, th + base + 2)
    cv2.rectangle(image, (x, y - th - base - 2), (x + tw + 4, y), color, -1)
    cv2.putText(image, text, (x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)


def annotate(frame: Frame, event: Event, camera: CameraConfig) -> np.ndarray:
    """Zones, the event's box with kind and confidence, and a header with camera and local time."""
    if frame.image is None:
        raise ValueError("a frame without a picture cannot be annotated")
    image = frame.image.copy()
    width, height = frame.size
    scale = max(0.4, min(width, height) / 900)
    overlay = image.copy()
    for zone in camera.zones:
        pts = np.array(zone.to_pixels(width, height).exterior.coords, dtype=np.int32)
        color = ZONE_COLORS[zone.type]
        cv2.fillPoly(overlay, [pts], color)
        cv2.polylines(image, [pts], True, color, max(1, round(scale * 2)), cv2.LINE_AA)
    image = cv2.addWeighted(overlay, 0.18, image, 0.82, 0)
    for zone in camera.zones:
        x, y = np.array(zone.to_pixels(width, height).exterior.coords, dtype=np.int32)[0]
        _label(image, f"{zone.type.value}: {zone.id}", (int(x), int(y)), ZONE_COLORS[zone.type], scale * 0.6)
    color = spec_of(event.kind).colour
    x1, y1, x2, y2 = (round(v) for v in event.bbox)
    cv2.rectangle(image, (x1, y1), (x2, y2), color, max(2, round(scale * 3)), cv2.LINE_AA)
    _label(image, f"{event.kind} {event.confidence:.2f}", (x1, y1), color, scale * 0.7)
    local = frame.time.astimezone(camera.tz)
    header = f"{camera.id}  {local:%Y-%m-%d %H:%M:%S %Z}  {event.category['code']} {event.kind}"
    _label(image, header, (0, 0), (40, 40, 40), scale * 0.7)
    if event.vehicle:  # a patrol vehicle: where it was and which way it drove when this was seen
        v = event.vehicle
        caption = (f"vehicle {v['lat']:.6f}, {v['lon']:.6f}  heading {v['heading_deg']:.0f} deg  "
                   f"{v['speed_mps'] * 3.6:.0f} km/h")
        _label(image, caption, (0, height - 4), (40, 40, 40), scale * 0.6)
    return image


def at_snapshot_resolution(frame: Frame, event: Event) -> tuple[Frame, Event]:
    """The frame's main-stream picture, and a copy of the event with its box scaled to it."""
    main = frame.snapshot_image
    assert main is not None
    sx, sy = main.shape[1] / frame.size[0], main.shape[0] / frame.size[1]
    x1, y1, x2, y2 = event.bbox
    scaled = replace(event, bbox=[x1 * sx, y1 * sy, x2 * sx, y2 * sy])
    return replace(frame, image=main, snapshot_image=None), scaled


class SnapshotWriter:
    """Writes an event's three images under `out_dir/snapshots/` and records their relative paths."""

    def __init__(self, out_dir: Path, camera: CameraConfig) -> None:
        self.out_dir = out_dir
        self.camera = camera

    def reconfigure(self, camera: CameraConfig) -> None:
        self.camera = camera

    def write(self, event: Event) -> None:
        frame, original = event.best_frame, event
        if frame is None or frame.image is None or not event.best_dirty:
            return
        if frame.snapshot_image is not None:  # a sub-stream camera: draw on its main stream's picture
            frame, event = at_snapshot_resolution(frame, event)
        base = Path("snapshots") / event.id
        paths = {
            "snapshot": base.with_name(f"{event.id}.jpg"),
            "clean_frame": base.with_name(f"{event.id}-clean.jpg"),
            "crop": base.with_name(f"{event.id}-crop.jpg"),
        }
        picture = frame.image
        assert picture is not None  # checked above; the main stream's picture replaces it when there is one
        write_image_atomic(self.out_dir / paths["clean_frame"], picture)
        write_image_atomic(self.out_dir / paths["crop"], crop_box(picture, event.bbox))
        write_image_atomic(self.out_dir / paths["snapshot"], annotate(frame, event, self.camera))
        original.snapshots_written(*(str(p) for p in paths.values()))
