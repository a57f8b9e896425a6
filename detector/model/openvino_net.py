"""A compiled card's network on OpenVINO with numpy and OpenCV only: no torch, no ultralytics at run time.

Importing torch and ultralytics costs a scan seconds of start-up and hundreds of MB it does not use once the
network is an OpenVINO export. This runs the export the way ultralytics' predictor does, step for step, so
the detections are the same box for box (tests compare them): letterbox to the smallest stride multiple
(a dynamic export), BGR to RGB in [0, 1], the network, best class per box above the threshold, the asked
classes only, class-offset NMS at IoU 0.7 (up to 300 boxes), boxes back to the frame and clipped.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from detector.errors import WeightsError, cause

IOU = 0.7
MAX_DET = 300
MAX_NMS = 30000
MAX_WH = 7680  # class offset of boxes, so that NMS keeps classes apart
PAD = 114


@dataclass(frozen=True)
class Boxes:
    """One image's boxes: (n, 4) xyxy in frame pixels, (n,) confidence, (n,) model class ids."""

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray


def is_openvino_folder(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*.xml")) and (path / "metadata.yaml").exists()


class OpenVinoNet:
    """An ultralytics OpenVINO export folder (`*.xml`, `*.bin`, `metadata.yaml`), run on the CPU."""

    def __init__(self, folder: Path, imgsz: int | tuple[int, int]) -> None:
        """Read the network now (a damaged export is an error here); compile it for the CPU in a thread, so
        the first frame is being decoded meanwhile (`predict` waits for it)."""
        import openvino as ov

        self.folder = folder
        try:
            xml = next(folder.glob("*.xml"))
            meta = yaml.safe_load((folder / "metadata.yaml").read_text())
            core = ov.Core()
            model = core.read_model(model=str(xml), weights=str(xml.with_suffix(".bin")))
        except Exception as e:  # a folder cut short, or not an export at all
            raise _damaged(folder, e) from e
        self._compiling = ThreadPoolExecutor(1, thread_name_prefix="ov-compile").submit(
            core.compile_model, model, "CPU", {"PERFORMANCE_HINT": "LATENCY"})
        self._compiled: Any = None
        self.names: dict[int, str] = {int(k): str(v) for k, v in meta["names"].items()}
        self.stride = int(meta.get("stride", 32))
        self.dynamic = bool((meta.get("args") or {}).get("dynamic"))
        self.size = (imgsz, imgsz) if isinstance(imgsz, int) else (int(imgsz[0]), int(imgsz[1]))  # (h, w)

    def predict(self, image: np.ndarray, conf: float, classes: list[int]) -> Boxes:
        """One BGR frame's boxes with a confidence above `conf` whose best class is one of `classes`."""
        tensor, shape = self._letterbox(image)
        out = next(iter(self.compiled()(tensor).values()))[0]  # (4 + classes, anchors)
        return self._boxes(out, conf, classes, shape, image.shape[:2])

    def compiled(self) -> Any:
        """The network compiled for the CPU (waiting for the compiling thread the first time)."""
        if self._compiled is None:
            try:
                self._compiled = self._compiling.result()
            except Exception as e:
                raise _damaged(self.folder, e) from e
        return self._compiled

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """The network's input (1, 3, h, w) float32 RGB in [0, 1], and (h, w)."""
        h0, w0 = image.shape[:2]
        r = min(self.size[0] / h0, self.size[1] / w0)
        w, h = max(round(w0 * r), 1), max(round(h0 * r), 1)
        dw, dh = self.size[1] - w, self.size[0] - h
        if self.dynamic:  # the smallest rectangle the stride allows
            dw, dh = dw % self.stride, dh % self.stride
        if (w, h) != (w0, h0):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        top, left = round(dh / 2 - 0.1), round(dw / 2 - 0.1)
        bottom, right = round(dh / 2 + 0.1), round(dw / 2 + 0.1)
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD, PAD, PAD))
        tensor = image[None, :, :, ::-1].transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
        return np.ascontiguousarray(tensor), image.shape[:2]

    def _boxes(self, out: np.ndarray, conf: float, classes: list[int], shape: tuple[int, int],
               frame: tuple[int, int]) -> Boxes:
        scores = out[4:]
        best = scores.max(0)
        x = out[:, best > conf].T  # (n, 4 + classes)
        if not len(x):
            return _empty()
        cls = x[:, 4:].argmax(1)
        score = x[np.arange(len(x)), 4 + cls]
        keep = (score > conf) & np.isin(cls, classes)
        x, cls, score = x[keep], cls[keep], score[keep]
        if len(x) > MAX_NMS:
            top = np.argsort(-score, kind="stable")[:MAX_NMS]
            x, cls, score = x[top], cls[top], score[top]
        xyxy = _xywh_to_xyxy(x[:, :4])
        kept = nms(xyxy + (cls[:, None] * MAX_WH).astype(np.float32), score, IOU)[:MAX_DET]
        return Boxes(_to_frame(xyxy[kept], shape, frame), score[kept].astype(np.float32), cls[kept])


def _damaged(folder: Path, error: BaseException) -> WeightsError:
    return WeightsError(f"cannot load the OpenVINO export: {cause(error)}", path=folder,
                        fix="delete the folder: the card is compiled again on its next use")


def _empty() -> Boxes:
    return Boxes(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int))


def _xywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    half = b[:, 2:4] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy NMS, highest score first (torchvision's rule: drop IoU > `iou`)."""
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while len(order):
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        order = rest[inter / (area[i] + area[rest] - inter) <= iou]
    return np.array(keep, dtype=int)


def _to_frame(xyxy: np.ndarray, shape: tuple[int, int], frame: tuple[int, int]) -> np.ndarray:
    """Boxes of the letterboxed input back in the frame's pixels, clipped to it (ultralytics' scale_boxes)."""
    gain = min(shape[0] / frame[0], shape[1] / frame[1])
    new_h, new_w = (max(round(x * gain), 1) for x in frame)
    pad_x, pad_y = round((shape[1] - new_w) / 2 - 0.1), round((shape[0] - new_h) / 2 - 0.1)
    out = (xyxy - np.array([pad_x, pad_y, pad_x, pad_y], np.float32)) / np.array(
        [new_w / frame[1], new_h / frame[0]] * 2, np.float32)
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, frame[1])
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, frame[0])
    return out.astype(np.float32)


