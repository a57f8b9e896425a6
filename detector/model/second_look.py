"""A second look at garbage boxes: a small classifier on each box's crop, run after the detector.

Why: a detector that finds dumped waste also fires on plain bins, and under a fixed camera a bin that
fires once fires every day. The second look sees each candidate again, cut out with some context and at
the resolution of the frame itself (not the 640 px the detector saw), through the base model's own frozen
backbone (COCO features, no new network to ship), and a classifier trained on garbage, plain bin and
background crops (hard negatives mined from the bins-only photos the detector fires on) says whether it is
a violation. Only the classifier (a few hundred KB) ships with the card.

The crop network (backbone + pooling + classifier) is compiled to OpenVINO once, cached beside the card's
export (`$STREETWATCH_CACHE`), with a dynamic batch; without OpenVINO it runs on PyTorch. A crop costs about
1% of a frame's detection at 128 px, and only boxes of the looked-at classes are cropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from detector.detections import Detections
from detector.errors import WeightsError, cause
from detector.model.safeload import load_checkpoint
from detector.model.weights import LoadedCard, sha256_of

log = logging.getLogger(__name__)

LABELS = ("violation", "bin", "background")  # the classifier's outputs; the first is what is kept
CONTEXT = 0.25  # of the box's width and height added on each side: a bin's lid, the kerb around a heap


class CropNet(nn.Module):
    """Backbone layers of the base, the mean and max of the `taps` layers' outputs, then the classifier."""

    def __init__(self, backbone: nn.Sequential, taps: Sequence[int], head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.taps, self.head = backbone, list(taps), head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        pooled = []
        for i, layer in enumerate(self.backbone):
            x = layer(x)
            if i in self.taps:
                pooled += [x.mean((2, 3)), x.amax((2, 3))]
        return torch.cat(pooled, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).softmax(1)


def backbone_of(base_weights: Path, taps: Sequence[int]) -> nn.Sequential:
    """The base model's layers up to the last tap, frozen, in eval mode (fused conv+BN where it can)."""
    from ultralytics import YOLO

    from detector.model.safeload import check_checkpoint

    check_checkpoint(base_weights)
    model: Any = YOLO(str(base_weights), task="detect").model
    net = model.float().eval()
    layers = nn.Sequential(*list(net.model)[: max(taps) + 1])
    for p in layers.parameters():
        p.requires_grad_(False)
    return layers.eval()


def crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """(n, 3, size, size) float32 RGB in [0, 1]: each box with CONTEXT around it, clipped, squashed square."""
    h, w = image.shape[:2]
    out = np.zeros((len(boxes), 3, size, size), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        dx, dy = CONTEXT * (x2 - x1), CONTEXT * (y2 - y1)
        a, b = int(max(0, x1 - dx)), int(max(0, y1 - dy))
        c, d = int(min(w, np.ceil(x2 + dx))), int(min(h, np.ceil(y2 + dy)))
        if c - a < 2 or d - b < 2:
            continue
        patch = cv2.resize(image[b:d, a:c], (size, size), interpolation=cv2.INTER_AREA)
        out[k] = patch[:, :, ::-1].transpose(2, 0, 1) / 255.0
    return out


def read_look(path: Path, base_sha256: str) -> dict[str, Any]:
    """The classifier file, refused unless made on exactly these base weights."""
    fix = "restore it from the repository, or train it again with scripts/train_second_look.py"
    try:
        saved: Any = load_checkpoint(path)
        look = {k: saved[k] for k in ("head", "taps", "size", "base_sha256")}
    except WeightsError:
        raise
    except Exception as e:  # a truncated file, a pickle of something else
        raise WeightsError(f"cannot load the second look: {cause(e)}", path=path, fix=fix) from e
    if look["base_sha256"] != base_sha256:
        raise WeightsError(f"second look {path.name} was made on other base weights", path=path, fix=fix)
    look["head"] = look["head"].float().eval()
    return look


class SecondLook:
    """`filter()` drops the boxes of the looked-at classes the classifier does not call a violation."""

    def __init__(self, loaded: LoadedCard) -> None:
        spec = loaded.card.second_look
        assert spec is not None and loaded.look_path is not None
        base = loaded.look_base or loaded.weights_path
        look = read_look(loaded.look_path, sha256_of(base))
        self.classes, self.threshold, self.size = set(spec.classes), spec.threshold, int(look["size"])
        self.seconds = 0.0
        net = CropNet(backbone_of(base, look["taps"]), look["taps"], look["head"]).eval()
        self._run = _compiled(net, self.size, _key(loaded.look_path, base, look)) or _eager(net)

    def scores(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """P(violation) of each box of one image."""
        if not len(boxes):
            return np.zeros(0, np.float32)
        import time

        began = time.perf_counter()
        probs = self._run(crops(image, boxes, self.size))
        self.seconds += time.perf_counter() - began
        return np.asarray(probs[:, 0], np.float32)

    def filter(self, images: Sequence[np.ndarray], found: list[Detections]) -> list[Detections]:
        out = []
        for image, dets in zip(images, found, strict=True):
            looked = np.isin(dets.class_name.astype(str), list(self.classes))
            keep = ~looked
            keep[looked] = self.scores(image, dets.xyxy[looked]) >= self.threshold
            out.append(dets[keep])
        return out


def _eager(net: nn.Module) -> Any:
    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return np.asarray(net(torch.from_numpy(batch)).numpy())
    return run


def _key(head: Path, base: Path, look: dict[str, Any]) -> str:
    import openvino

    text = json.dumps({"head": sha256_of(head), "base": sha256_of(base), "size": look["size"], "taps": look["taps"],
                       "openvino": openvino.__version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _compiled(net: nn.Module, size: int, key: str | None) -> Any:
    """The crop network on OpenVINO (made once, cached); None where OpenVINO cannot be had (PyTorch then)."""
    try:
        import openvino as ov
    except ImportError:
        return None
    from detector.model.compiled import cache_dir

    xml = cache_dir() / f"second-look-{key}" / "look.xml"
    try:
        if not xml.exists():
            xml.parent.mkdir(parents=True, exist_ok=True)
            model = ov.convert_model(net, example_input=torch.zeros(1, 3, size, size),
                                     input=[ov.PartialShape([-1, 3, size, size])])
            tmp = xml.with_name("look.tmp.xml")
            ov.save_model(model, tmp, compress_to_fp16=False)
            tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
            tmp.replace(xml)
        compiled = ov.Core().compile_model(str(xml), "CPU")
    except Exception as e:  # an export OpenVINO cannot do: PyTorch runs it, and says so
        log.warning("second look runs on PyTorch: the OpenVINO export failed (%s)", cause(e))
        return None

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(compiled(batch)[0])
    return run
