"""Run a model card's weights on batches of frames and return `Detections` with kinds attached."""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detector.config.card import ModelCard, VendingRule
from detector.detections import Detections
from detector.errors import ConfigError, WeightsError, WeightsNotFound, cause
from detector.geometry import suppress_duplicates
from detector.model.composites import attach_vendors, pool_vending
from detector.model.openvino_net import OpenVinoNet, is_openvino_folder
from detector.model.weights import DOWNLOAD_ENV, LoadedCard

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

    from detector.model.safeload import check_checkpoint

    weights = loaded.weights_path
    if not weights.exists() and os.environ.get(DOWNLOAD_ENV) == "1" and len(weights.parts) == 1:
        from ultralytics.utils.downloads import attempt_download_asset

        weights = Path(attempt_download_asset(str(weights)))  # official weights by name, then checked as any
    if not weights.exists():
        raise WeightsNotFound("weights not found", path=weights, fix="pass an existing file to --weights")
    check_checkpoint(weights)  # before ultralytics unpickles it
    try:
        model = YOLO(str(weights), task="detect")
    except Exception as e:  # ultralytics raises many types for a bad file; the cause goes into the message
        raise WeightsError(
            f"cannot load weights: {cause(e)}",
            path=weights,
            fix="replace the file with a valid ultralytics .pt or export folder (a download may have been cut short)",
        ) from e
    if loaded.head_path is not None:
        from detector.model.heads import attach_head

        attach_head(model, loaded)
    use_cores(threads)
    return model


def _vendor_search(card: ModelCard) -> tuple[str, float] | None:
    """Among whom, and how near, a vending box's vendor is looked for: the composite rule's person class and
    gap, or for a learnt stall class alone `person` at the rule's default gap; None if the card has no persons."""
    rule = card.vending or VendingRule(stall_classes=[])  # a learnt class alone: the rule's defaults
    return (rule.person_class, rule.max_gap) if rule.person_class in card.classes else None


def native_export(loaded: LoadedCard) -> bool:
    """A compiled card that runs without torch: an OpenVINO export folder, with no second look (which pools
    the PyTorch base's features) and unless $STREETWATCH_NATIVE=0 asks for ultralytics' own runner."""
    return (loaded.is_export and loaded.card.second_look is None and os.environ.get(NATIVE_ENV) != "0"
            and is_openvino_folder(loaded.weights_path))


NATIVE_ENV = "STREETWATCH_NATIVE"


class Detector:
    """The model of a card: `detect()` turns BGR images into per-image `Detections`.

    Only the classes the card lists are asked of the model, each kept at its own threshold; boxes of
    input-only classes (persons, umbrellas) are consumed by the composite vending rule and not returned.
    """

    def __init__(self, loaded: LoadedCard, *, device: str | None = None, threads: int | None = None) -> None:
        self.loaded = loaded
        self.card = loaded.card
        self.device = device
        self.net: OpenVinoNet | None = None  # a compiled card runs here, without torch or ultralytics
        self.model: YOLO | None = None
        if native_export(loaded):
            self.net = OpenVinoNet(loaded.weights_path, self.card.imgsz)
        else:
            self.model = load_yolo(loaded, threads)
        self.timings: dict[str, float] = defaultdict(float)  # seconds per stage, for run summaries
        names: dict[int, str] = self.net.names if self.net else self.model.names  # type: ignore[union-attr]
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
        self._vendor = _vendor_search(self.card)
        self._one_at_a_time = loaded.is_export
        self.look = None
        if self.card.second_look is not None:
            from detector.model.second_look import SecondLook

            self.look = SecondLook(loaded)

    @property
    def runtime(self) -> str:
        """What runs the network, for run summaries."""
        if self.net is not None:
            return "OpenVINO, compiled"
        return "OpenVINO through ultralytics" if self.loaded.is_export else "PyTorch"

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Per-image detections. An export (OpenVINO) is fed one image at a time: each new batch size makes
        it compile the network again for that shape (hundreds of MB and half a second each), and on a CPU
        one at a time is as fast (27 ms against 32 ms per 1080p frame in batches of 4, YOLOv8s)."""
        if not images:
            return []
        found = self._native(images) if self.net is not None else self._ultralytics(images)
        if self.look is None:
            return found
        before = self.look.seconds
        found = self.look.filter(images, found)
        self.timings["second_look"] += self.look.seconds - before
        return found

    def detect_one(self, image: np.ndarray) -> Detections:
        return self.detect([image])[0]

    def _native(self, images: Sequence[np.ndarray]) -> list[Detections]:
        assert self.net is not None
        began = time.perf_counter()
        found = []
        for image in images:
            boxes = self.net.predict(image, self._min_conf, self.class_ids)
            dets = Detections(xyxy=boxes.xyxy, confidence=boxes.confidence,
                              class_name=np.array([self.names[int(c)] for c in boxes.class_id], dtype=object))
            found.append(self._to_detections(dets, boxes.class_id))
        self.timings["inference"] += time.perf_counter() - began
        return found

    def _ultralytics(self, images: Sequence[np.ndarray]) -> list[Detections]:
        assert self.model is not None
        batches = [[image] for image in images] if self._one_at_a_time else [list(images)]
        results: list[Any] = [r for batch in batches for r in self.model.predict(
            batch, imgsz=self.card.imgsz, conf=self._min_conf, classes=self.class_ids, device=self.device,
            verbose=False)]
        for r in results:
            for stage in ("preprocess", "inference", "postprocess"):
                self.timings[stage] += r.speed.get(stage, 0.0) / 1000
        return [self._to_detections(*Detections.from_ultralytics(r, self.names)) for r in results]

    def _to_detections(self, dets: Detections, class_ids: np.ndarray) -> Detections:
        keep = dets.confidence >= np.array([self._threshold[c] for c in class_ids], dtype=np.float32)
        dets = dets[keep].with_(kind=np.array([self._kind[c] for c in class_ids[keep]], dtype=object))
        if self.card.vending:
            dets = pool_vending(dets, self.card.vending)
        if self._vendor is not None:
            dets = attach_vendors(dets, *self._vendor)
        return suppress_duplicates(dets[dets.kind != ""])
