"""Rejections that stick: an object an operator rejected raises no new event while it is the same object.

A rejected event leaves a `Suppression` (camera, kind, box, and a small picture of what was in the box).
The `Suppressor` drops a tracked detection of that kind at that place (boxes overlapping by `min_iou`) as
long as its picture still looks like the rejected one (`min_similarity`) and the rejection is younger than
`for_days`. When the picture changes (more garbage dumped on the rejected bags, a cart where a bench's
shadow was), the track goes on to the dwell rule and raises its event as usual. A track once dropped stays
dropped while its likeness stays within `HYSTERESIS` of the threshold, so a flickering likeness cannot let
a rejected object through every other frame.

The likeness compares 16x16 pictures of the box with its margin (the crop a snapshot writes): the lightness
pattern by normalised correlation (so a brighter or duller day still matches) times how close the mean
colours are, which is what changes when, say, grey bags become blue ones.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import cv2
import numpy as np

from detector.config.camera import Suppress
from detector.detections import Detections, Frame
from detector.geometry import crop_box, iou_matrix

SIDE = 16  # the picture compared, in pixels a side
HYSTERESIS = 0.1  # a dropped track is let go only below min_similarity - this
COLOUR_SCALE = 60.0  # Lab units of mean chroma difference at which colour likeness reaches 0


def signature(crop: np.ndarray) -> np.ndarray:
    """A crop's picture to compare: SIDE x SIDE in Lab, uint8 (768 bytes)."""
    if crop.size == 0:
        raise ValueError("an empty crop has no picture")
    small = cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.cvtColor(small, cv2.COLOR_BGR2LAB))


def box_signature(image: np.ndarray, bbox: Sequence[float] | np.ndarray) -> np.ndarray:
    """The picture of a box in a frame, cropped as the snapshot's crop is (with its margin)."""
    return signature(crop_box(image, [float(v) for v in bbox]))


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """1: the same picture; about 0: unrelated. Lightness correlation times mean-colour closeness."""
    la, lb = a[..., 0].astype(np.float32).ravel(), b[..., 0].astype(np.float32).ravel()
    la, lb = la - la.mean(), lb - lb.mean()
    norm = float(np.linalg.norm(la) * np.linalg.norm(lb))
    pattern = float(la @ lb) / norm if norm > 1e-6 else (1.0 if np.allclose(la, lb, atol=2.0) else 0.0)
    chroma = np.linalg.norm(a[..., 1:].reshape(-1, 2).mean(0).astype(np.float32)
                            - b[..., 1:].reshape(-1, 2).mean(0).astype(np.float32))
    return max(0.0, pattern) * max(0.0, 1.0 - float(chroma) / COLOUR_SCALE)


def encode_signature(sig: np.ndarray) -> str:
    return base64.b64encode(sig.tobytes()).decode("ascii")


def decode_signature(text: str) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(text.encode("ascii")), dtype=np.uint8)
    if raw.size != SIDE * SIDE * 3:
        raise ValueError(f"a signature has {SIDE * SIDE * 3} bytes, not {raw.size}")
    return raw.reshape(SIDE, SIDE, 3)


@dataclass(frozen=True)
class Suppression:
    """What an operator rejected: `id` is the rejected event's; `since` when they rejected it."""

    id: str
    camera_id: str
    kind: str
    bbox: tuple[float, float, float, float]
    signature: np.ndarray
    since: datetime


@dataclass
class Hits:
    """A suppression's work since the last `drain()`: objects (tracks) it dropped, and when last."""

    tracks: int
    last: datetime


class Suppressor:
    """`filter()` drops the tracked detections that are a rejected object again; `drain()` says which."""

    def __init__(self, rule: Suppress, suppressions: Sequence[Suppression] = ()) -> None:
        self.rule = rule
        self.suppressions = list(suppressions)
        self._dropped: dict[int, str] = {}  # track id -> the suppression that drops it
        self._hits: dict[str, Hits] = {}
        self.total = 0  # objects dropped so far

    def reconfigure(self, rule: Suppress) -> None:
        self.rule = rule

    def replace(self, suppressions: Sequence[Suppression]) -> None:
        """The store's current list (a rejection made or undone meanwhile); dropped tracks are re-judged."""
        self.suppressions = list(suppressions)
        known = {s.id for s in self.suppressions}
        self._dropped = {t: s for t, s in self._dropped.items() if s in known}

    def filter(self, dets: Detections, frame: Frame) -> Detections:
        """`dets` (tracked) without the rejected objects. A frame without a picture is let through whole."""
        if not self.rule.enabled or not self.suppressions or not len(dets) or frame.image is None:
            return dets
        keep = np.ones(len(dets), dtype=bool)
        for i in range(len(dets)):
            track = int(dets.track_id[i])
            held = self._dropped.get(track)
            match = self.match(str(dets.kind[i]), dets.xyxy[i], frame.image, frame.time, held=held)
            if match is None:
                self._dropped.pop(track, None)
                continue
            keep[i] = False
            hits = self._hits.setdefault(match.id, Hits(0, frame.time))
            hits.last = frame.time
            if held != match.id:
                self._dropped[track] = match.id
                self.total += 1
                hits.tracks += 1
        return dets if keep.all() else dets[keep]

    def match(self, kind: str, box: Sequence[float] | np.ndarray, image: np.ndarray, at: datetime, *,
              held: str | None = None) -> Suppression | None:
        """The rejection in force at `at` that this box of `image` is, if any: same kind, overlapping, alike
        (`held`: the one already dropping this object, which needs HYSTERESIS less likeness)."""
        near = self.near(kind, box, at)
        if not near:
            return None
        crop = crop_box(image, [float(v) for v in box])
        if crop.size == 0:  # a box with nothing of it inside the frame is nobody's picture
            return None
        sig = signature(crop)
        score, best = max(((similarity(sig, s.signature), s) for s in near), key=lambda p: p[0])
        needed = self.rule.min_similarity - (HYSTERESIS if held == best.id else 0.0)
        return best if score >= needed else None

    def near(self, kind: str, box: Sequence[float] | np.ndarray, at: datetime) -> list[Suppression]:
        """The rejections in force at `at` of this kind whose box this one overlaps enough (worth a look)."""
        live = [s for s in self.suppressions if s.kind == kind and at - s.since <= timedelta(days=self.rule.for_days)]
        if not self.rule.enabled or not live:
            return []
        ious = iou_matrix(np.asarray(box, dtype=np.float32)[None], np.array([s.bbox for s in live], dtype=np.float32))
        return [s for s, iou in zip(live, ious[0], strict=True) if iou >= self.rule.min_iou]

    def drain(self) -> dict[str, Hits]:
        """The hits since the last call, per suppression id (for the store and the desk)."""
        hits, self._hits = self._hits, {}
        return hits

    def forget(self, track_ids: Sequence[int]) -> None:
        """Tracks that ended."""
        for track in track_ids:
            self._dropped.pop(track, None)
