"""The one batching loop: frames in, the model run on batches of them, (frame, detections) out.

`scan`, `watch`, a re-scan's detection half and `eval` all infer through `InferenceStep`, so they
batch, skip unchanged frames and time the model the same way. Frames carry a key (a camera id, or a
file) because the static-scene gate is per key: a sampled frame that has not changed since that
key's last inferred frame is not inferred (its result is None: the last detections still hold), and
the model still runs at least every `recheck_s` seconds of frame time (see `ChangeGate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Generic, TypeVar

import numpy as np

from detector.camera.scene import ChangeGate
from detector.detections import Frame
from detector.timing import Stopwatch

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class InferenceStep(Generic[R]):
    """`infer()` one batch of keyed frames, or `run()` a stream of them in batches of `batch`."""

    def __init__(self, detect: Callable[[list[np.ndarray]], list[R]], *, batch: int, recheck_s: float = 0.0,
                 watch: Stopwatch | None = None, on_batch: Callable[[int, float], None] | None = None) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.detect = detect
        self.batch = batch
        self.recheck_s = recheck_s
        self.watch = watch or Stopwatch()
        self.on_batch = on_batch  # (frames, seconds) of each model call, e.g. for a histogram
        self._gates: dict[Hashable, ChangeGate] = {}

    def gate(self, key: Hashable) -> ChangeGate:
        if key not in self._gates:
            self._gates[key] = ChangeGate(recheck_s=self.recheck_s)
        return self._gates[key]

    def counts(self, key: Hashable) -> tuple[int, int]:
        """(inferred, skipped as unchanged) sampled frames of `key`."""
        gate = self._gates.get(key)
        return (gate.inferred, gate.skipped) if gate else (0, 0)

    def infer(self, items: Sequence[tuple[K, Frame]]) -> list[tuple[K, Frame, R | None]]:
        """Results in the order given; None for a frame skipped as unchanged."""
        with self.watch.time("gate"):
            todo = [self.gate(key).needs_inference(frame.image, frame.time.timestamp())  # type: ignore[arg-type]
                    for key, frame in items]
        wanted = [frame.image for (_, frame), infer in zip(items, todo, strict=True) if infer]
        found: list[R] = []
        for start in range(0, len(wanted), self.batch):
            chunk = wanted[start:start + self.batch]
            began = time.perf_counter()
            batch = self.detect(chunk)  # type: ignore[arg-type]
            if len(batch) != len(chunk):
                raise RuntimeError(f"the detector gave {len(batch)} results for {len(chunk)} frames")
            found += batch
            seconds = time.perf_counter() - began
            self.watch.add("model", seconds)
            if self.on_batch is not None:
                self.on_batch(len(chunk), seconds)
        results = iter(found)
        return [(key, frame, next(results) if infer else None) for (key, frame), infer in zip(items, todo, strict=True)]

    def run(self, items: Iterable[tuple[K, Frame]]) -> Iterator[tuple[K, Frame, R | None]]:
        batch: list[tuple[K, Frame]] = []
        for item in items:
            batch.append(item)
            if len(batch) == self.batch:
                yield from self.infer(batch)
                batch = []
        if batch:
            yield from self.infer(batch)
