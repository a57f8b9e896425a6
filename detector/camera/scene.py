"""Scene-change detection: a PTZ camera that turns, or a cut between clips, shows a new scene.

Objects of the old scene are gone at that instant; closing their events then (rather than after
`close_after_s`) keeps a new object that happens to overlap an old box from inheriting its event.
Normalised cross-correlation of tiny grey thumbnails ignores lighting changes and people walking by.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB = (64, 36)


def thumbnail(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Zero-mean, unit-norm grey thumbnail (all zeros for a flat image) and its mean brightness."""
    grey = cv2.cvtColor(cv2.resize(image, THUMB, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    values = grey.astype(np.float32).ravel()
    mean = float(values.mean())
    values -= mean
    norm = float(np.linalg.norm(values))
    return (values / norm if norm > 1.0 else np.zeros_like(values)), mean


class SceneChangeDetector:
    """`update()` says whether this frame shows a different scene from the previous one."""

    def __init__(self, threshold: float = 0.5, flat_brightness_jump: float = 40.0) -> None:
        self.threshold = threshold
        self.flat_brightness_jump = flat_brightness_jump
        self._previous: tuple[np.ndarray, float] | None = None

    def update(self, image: np.ndarray) -> bool:
        current = thumbnail(image)
        previous, self._previous = self._previous, current
        if previous is None:
            return False
        if not previous[0].any() or not current[0].any():  # a flat picture has no structure to compare
            return abs(previous[1] - current[1]) > self.flat_brightness_jump
        return float(np.dot(previous[0], current[0])) < self.threshold


class ChangeGate:
    """Static-scene economy: skip inference on a sampled frame that has not changed since the last
    inferred one, but infer at least every `recheck_s` so a static violation is never missed.

    The frame is compared with the last *inferred* frame (not the previous one), block by block on a
    grey thumbnail: block means average sensor noise and compression flicker away, while a person or a
    bag entering a block moves its mean. Slow drift (dusk) adds up until it triggers an inference.
    """

    def __init__(self, recheck_s: float = 10.0, threshold: float = 6.0, grid: tuple[int, int] = (16, 9)) -> None:
        self.recheck_s = recheck_s
        self.threshold = threshold
        self.grid = grid
        self._blocks: np.ndarray | None = None
        self._time_s = 0.0
        self.inferred = 0
        self.skipped = 0

    def _block_means(self, image: np.ndarray) -> np.ndarray:
        cols, rows = self.grid
        grey = cv2.cvtColor(cv2.resize(image, (cols * 8, rows * 8), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_BGR2GRAY).astype(np.float32)
        means: np.ndarray = grey.reshape(rows, 8, cols, 8).mean(axis=(1, 3))
        return means

    def reset(self) -> None:
        """Forget the last inferred frame: the next one is inferred (a new file starts)."""
        self._blocks = None

    def needs_inference(self, image: np.ndarray, time_s: float) -> bool:
        if self.recheck_s <= 0:
            self.inferred += 1
            return True
        blocks = self._block_means(image)
        changed = (
            self._blocks is None
            or time_s - self._time_s >= self.recheck_s
            or time_s < self._time_s
            or float(np.abs(blocks - self._blocks).max()) > self.threshold
        )
        if changed:
            self._blocks, self._time_s = blocks, time_s
            self.inferred += 1
        else:
            self.skipped += 1
        return changed
