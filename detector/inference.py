"""Run a model card's weights on batches of frames and return `Detections` with kinds attached."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from detector.composites import compose_vending
from detector.errors import ConfigError, WeightsNotFound
from detector.modelcard import LoadedCard
from detector.types import Detections

if TYPE_CHECKING:
    from ultralytics import YOLO

log = logging.getLogger(__name__)


def use_cores(threads: int | None = None) -> None:
    """Let torch use every core (or `threads`), also after ultralytics sets up a predictor or trainer.

    ultralytics' `select_device` resets torch to cpu_count - 1 threads (one, on a 2-core machine) each time
    a predictor or trainer is set up; inference is the bottleneck here, so raise the number it resets to.
    Exports (OpenVINO, ONNX Runtime) size their own thread pools to the machine.
    """
    import torch
    from ultralytics.utils import torch_utils

    n = threads or os.cpu_count() or 1
    torch_utils.NUM_THREADS = n
    torch.set_num_threads(n)


def load_yolo(loaded: LoadedCard, threads: int | None = None) -> YOLO:
    """The card's model: its weights, with the card's trained head in place of theirs when it has one.

    Torch gets every core (or `threads`) for it: see `use_cores`.
    """
    from ultralytics import YOLO  # heavy import, deferred so `config check` stays fast

    weights = loaded.weights_path
    try:
        model = YOLO(str(weights), task="detect")
    except Exception as e:  # ultralytics raises many types for a bad file
        raise WeightsNotFound(
            f"cannot load weights ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})",
            path=weights,
            fix="replace the file with a valid ultralytics .pt or export folder",
        ) from None
    if loaded.head_path is not None:
        from detector.heads import attach_head

        attach_head(model, loaded)
    use_cores(threads)
    return model


class Detector:
    """The model of a card: `detect()` turns BGR images into per-image `Detections`.

    Only the classes the card lists are asked of the model, each kept at its own threshold; boxes of
    input-only classes (persons, umbrellas) are consumed by the composite vending rule and not returned.
    """

    def __init__(self, loaded: LoadedCard, *, device: str | None = None, threads: int | None = None) -> None:
        self.loaded = loaded
        self.card = loaded.card
        self.device = device
        self.model = load_yolo(loaded, threads)
        self.timings: dict[str, float] = defaultdict(float)  # seconds per stage, for run summaries
        names: dict[int, str] = self.model.names
        by_name = {name: idx for idx, name in names.items()}
        unknown = [c for c in self.card.classes if c not in by_name]
        if unknown:
            raise ConfigError(
                f"classes {unknown} are not in the model's classes",
                path=loaded.path,
                fix=f"use class names of {(loaded.head_path or loaded.weights_path).name}: "
                f"{', '.join(list(by_name)[:20])}...",
            )
        self.class_ids = sorted(by_name[c] for c in self.card.classes)
        self.names = names
        self._threshold = {by_name[c]: spec.confidence for c, spec in self.card.classes.items()}
        self._kind = {by_name[c]: (spec.kind.value if spec.kind else "") for c, spec in self.card.classes.items()}
        self._min_conf = min(self._threshold.values())

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        if not images:
            return []
        results = self.model.predict(
            list(images),
            imgsz=self.card.imgsz,
            conf=self._min_conf,
            classes=self.class_ids,
            device=self.device,
            verbose=False,
        )
        for r in results:
            for stage in ("preprocess", "inference", "postprocess"):
                self.timings[stage] += r.speed.get(stage, 0.0) / 1000
        return [self._to_detections(r) for r in results]

    def _to_detections(self, result: object) -> Detections:
        boxes = result.boxes  # type: ignore[attr-defined]
        cls = boxes.cls.cpu().numpy().astype(int)
        conf = boxes.conf.cpu().numpy().astype(np.float32)
        keep = conf >= np.array([self._threshold[c] for c in cls], dtype=np.float32)
        cls, conf = cls[keep], conf[keep]
        dets = Detections(
            xyxy=boxes.xyxy.cpu().numpy()[keep],
            confidence=conf,
            class_name=[self.names[c] for c in cls],
            kind=[self._kind[c] for c in cls],
        )
        if self.card.vending:
            dets = Detections.merge([dets, compose_vending(dets, self.card.vending)])
        return suppress_duplicates(dets[dets.kind != ""])


def suppress_duplicates(dets: Detections, iou: float = 0.5, containment: float = 0.9) -> Detections:
    """One box per object and kind.

    The model's NMS is per class at IoU 0.7, so one bike can come out twice (two overlapping bicycle
    boxes, or a bicycle and a motorcycle box); each would become its own track and its own event.
    """
    if len(dets) < 2:
        return dets
    order = np.argsort(-dets.confidence, kind="stable")
    keep: list[int] = []
    areas = (dets.xyxy[:, 2] - dets.xyxy[:, 0]) * (dets.xyxy[:, 3] - dets.xyxy[:, 1])
    for i in order:
        duplicate = False
        for j in keep:
            if dets.kind[i] != dets.kind[j]:
                continue
            w = min(dets.xyxy[i, 2], dets.xyxy[j, 2]) - max(dets.xyxy[i, 0], dets.xyxy[j, 0])
            h = min(dets.xyxy[i, 3], dets.xyxy[j, 3]) - max(dets.xyxy[i, 1], dets.xyxy[j, 1])
            inter = max(w, 0.0) * max(h, 0.0)
            union = areas[i] + areas[j] - inter
            if inter / max(union, 1e-9) >= iou or inter / max(min(areas[i], areas[j]), 1e-9) >= containment:
                duplicate = True
                break
        if not duplicate:
            keep.append(int(i))
    return dets[np.array(sorted(keep))]
