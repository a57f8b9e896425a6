"""The small data types that flow through the pipeline.

`Detections` is the one type every stage takes and returns (as in supervision): a batch of boxes for
one frame, stored column-wise in numpy arrays so filters are a boolean mask, not a loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

import numpy as np


class Kind(StrEnum):
    """The violation kinds streetwatch reports."""

    VENDING = "vending"
    GARBAGE = "garbage"
    BIKE = "bike"


@dataclass(frozen=True)
class Category:
    """A category of the GB/T 30428 city-management code list, as the city platform expects it."""

    code: str
    name: str


CATEGORIES: dict[str, Category] = {
    c.code: c
    for c in (
        Category("05-01", "无照经营游商"),  # street vending
        Category("01-02", "暴露垃圾"),  # exposed garbage
        Category("01-03", "积存垃圾渣土"),  # piled garbage
        Category("05-06", "非机动车乱停放"),  # misparked non-motor vehicle
    )
}

DEFAULT_CATEGORY: dict[Kind, str] = {Kind.VENDING: "05-01", Kind.GARBAGE: "01-03", Kind.BIKE: "05-06"}
"""Bags, boxes and bulky waste are piled garbage; a model card may map a class to `01-02` instead."""


@dataclass
class Detections:
    """Boxes found in one frame, column-wise.

    `xyxy` are pixels of the frame they were found in. `kind` is the violation kind each box stands for,
    `class_name` the model's own label. `track_id` is -1 until a tracker assigns one; `zone_id` is
    "" until the zone filter says which zone made the box a violation.
    """

    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.float32))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    class_name: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    track_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    zone_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(self.xyxy)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(n)
        self.class_name = _objects(self.class_name, n)
        self.kind = _objects(self.kind, n)
        if len(self.track_id) == 0 and n:
            self.track_id = np.full(n, -1, dtype=np.int64)
        self.track_id = np.asarray(self.track_id, dtype=np.int64).reshape(n)
        if len(self.zone_id) == 0 and n:
            self.zone_id = np.full(n, "", dtype=object)
        self.zone_id = _objects(self.zone_id, n)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | int) -> Detections:
        if isinstance(index, int | np.integer):
            index = slice(int(index), int(index) + 1)
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_name=self.class_name[index],
            kind=self.kind[index],
            track_id=self.track_id[index],
            zone_id=self.zone_id[index],
        )

    def with_(self, **columns: np.ndarray) -> Detections:
        """A copy with some columns replaced."""
        return replace(self, **columns)

    @classmethod
    def merge(cls, parts: list[Detections]) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls()
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_name=np.concatenate([p.class_name for p in parts]),
            kind=np.concatenate([p.kind for p in parts]),
            track_id=np.concatenate([p.track_id for p in parts]),
            zone_id=np.concatenate([p.zone_id for p in parts]),
        )


def _objects(values: object, n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    if n:
        out[:] = list(values)  # type: ignore[call-overload]
    return out


@dataclass(frozen=True)
class Frame:
    """A sampled, decoded frame and where it came from.

    `pts_s` is the presentation time in the container (seconds from the stream start); `time` is the
    wall-clock time of the frame in the camera's time zone. A camera watched on its low-resolution
    sub-stream carries its main stream's picture in `snapshot_image`: boxes stay in `image` pixels.
    """

    image: np.ndarray  # BGR, HxWx3
    pts_s: float
    time: datetime
    source_uri: str
    index: int  # ordinal of the sampled frame within its source
    snapshot_image: np.ndarray | None = None  # the camera's main stream at that moment, for snapshots

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(br - tl, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)
