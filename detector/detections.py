"""The small data types that flow through the pipeline.

`Detections` is the one type every stage takes and returns (as in supervision): a batch of boxes for
one frame, stored column-wise in numpy arrays so filters are a boolean mask, not a loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from detector.kinds import extra_width


@dataclass
class Detections:
    """Boxes found in one frame, column-wise.

    `xyxy` are pixels of the frame they were found in. `kind` is the violation kind each box stands for,
    `class_name` the model's own label. `track_id` is -1 until a tracker assigns one; `zone_id` is
    "" until the zone filter says which zone made the box a violation. `data` holds the per-box columns a
    kind adds of its own (its registry entry's `extras`, e.g. vending's vendor box), one row per box.
    """

    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.float32))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    class_name: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    track_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    zone_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (n, 4), got {xyxy.shape}")
        self.xyxy = xyxy
        n = len(xyxy)
        if len(self.track_id) == 0 and n:
            self.track_id = np.full(n, -1, dtype=np.int64)
        for name in ("class_name", "kind", "zone_id"):  # labels not known yet are empty strings
            if len(getattr(self, name)) == 0 and n:
                setattr(self, name, np.full(n, "", dtype=object))
        self.confidence = _column(self.confidence, n, np.float32, "confidence")
        self.class_name = _column(self.class_name, n, object, "class_name")
        self.kind = _column(self.kind, n, object, "kind")
        self.track_id = _column(self.track_id, n, np.int64, "track_id")
        self.zone_id = _column(self.zone_id, n, object, "zone_id")
        data = {}
        for name, values in self.data.items():
            column = np.asarray(values, dtype=np.float32).reshape(-1, extra_width(name))
            if len(column) != n:
                raise ValueError(f"data[{name!r}] has {len(column)} rows, not {n}: one per box")
            data[name] = column
        self.data = data

    def extra(self, name: str) -> np.ndarray:
        """A kind's per-box column (see `data`); NaN rows where no box has it."""
        found = self.data.get(name)
        return found if found is not None else np.full((len(self), extra_width(name)), np.nan, np.float32)

    @classmethod
    def from_ultralytics(cls, result: Any, names: dict[int, str]) -> tuple[Detections, np.ndarray]:
        """The boxes of one ultralytics result, with the model's class ids (to map them to kinds)."""
        boxes = result.boxes
        class_ids = boxes.cls.cpu().numpy().astype(int)
        dets = cls(xyxy=boxes.xyxy.cpu().numpy(), confidence=boxes.conf.cpu().numpy(),
                   class_name=np.array([names[int(c)] for c in class_ids], dtype=object))
        return dets, class_ids

    def anchors(self, mode: str) -> np.ndarray:
        """(n, 2) points standing for each box (see `anchor_points`)."""
        return anchor_points(self.xyxy, mode)

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
            data={name: column[index] for name, column in self.data.items()},
        )

    def with_(self, **columns: Any) -> Detections:
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
            data={name: np.concatenate([p.extra(name) for p in parts]) for name in {n for p in parts for n in p.data}},
        )


def anchor_points(xyxy: np.ndarray, mode: str) -> np.ndarray:
    """(n, 2) points standing for boxes: `bottom_center` (where an object meets the ground) or `center`."""
    x = (xyxy[:, 0] + xyxy[:, 2]) / 2
    y = xyxy[:, 3] if mode == "bottom_center" else (xyxy[:, 1] + xyxy[:, 3]) / 2
    return np.stack([x, y], axis=1)


def _column(values: Any, n: int, dtype: type | np.dtype[Any], name: str) -> np.ndarray:
    """One column of n values; a wrong length is an error, never silently reshaped."""
    if dtype is object:
        out = np.empty(len(values), dtype=np.object_)
        if len(out):
            out[:] = list(values)
    else:
        out = np.asarray(values, dtype=dtype)
    if out.shape != (n,):
        raise ValueError(f"{name} has shape {out.shape}, not ({n},): one value per box")
    return out


@dataclass(frozen=True)
class Frame:
    """A sampled, decoded frame and where it came from.

    `pts_s` is the presentation time in the container (seconds from the stream start); `time` is the
    wall-clock time of the frame in the camera's time zone. A camera watched on its low-resolution
    sub-stream carries its main stream's picture in `snapshot_image`: boxes stay in `image` pixels.
    """

    image: np.ndarray | None  # BGR, HxWx3; None for a frame known by its time and size alone (rescan)
    pts_s: float
    time: datetime
    source_uri: str
    index: int  # ordinal of the sampled frame within its source
    snapshot_image: np.ndarray | None = None  # the camera's main stream at that moment, for snapshots
    shape: tuple[int, int] = (0, 0)  # (width, height); taken from `image` when there is one

    def __post_init__(self) -> None:
        if self.image is not None:
            object.__setattr__(self, "shape", (int(self.image.shape[1]), int(self.image.shape[0])))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.shape
