"""streetwatch: street vending, piled garbage and misparked bikes from camera video.

The public API, imported on first use (so `streetwatch config check` never loads torch):
`Detections` and `Frame` (the types every stage passes), `CameraPipeline` (one camera's flow),
`load_card` and `Detector` (a model card and its model), `load_camera`, `scan`, `Kind`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "Detections": "detector.detections",
    "Frame": "detector.detections",
    "Kind": "detector.kinds",
    "StreetwatchError": "detector.errors",
    "CameraConfig": "detector.config.camera",
    "load_camera": "detector.config.camera",
    "load_card": "detector.model.weights",
    "Detector": "detector.model.detector",
    "CameraPipeline": "detector.camera.pipeline",
    "scan": "detector.apps.scan",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'detector' has no attribute {name!r}")
