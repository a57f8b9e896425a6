"""Box maths in one home: overlap matrices, duplicate suppression, gaps, unions and crops.

Boxes are float arrays of `[x1, y1, x2, y2]` pixels; every stage (tracking, dwell, resume, the
composite vending rule, the detector's duplicate suppression) measures overlap here and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from detector.detections import Detections


def areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2:] - boxes[:, :2]).clip(0).prod(axis=1)


def intersection_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection areas of two sets of boxes."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.clip(br - tl, 0, None).prod(axis=2)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of xyxy boxes."""
    a, b = np.asarray(a, dtype=np.float32).reshape(-1, 4), np.asarray(b, dtype=np.float32).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    inter = intersection_matrix(a, b)
    union = areas(a)[:, None] + areas(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def containment_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over the smaller box's area: 1 when one box lies inside the other."""
    a, b = np.asarray(a, dtype=np.float32).reshape(-1, 4), np.asarray(b, dtype=np.float32).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    smaller = np.minimum(areas(a)[:, None], areas(b)[None, :])
    return (intersection_matrix(a, b) / np.maximum(smaller, 1e-9)).astype(np.float32)


def suppress_duplicates(dets: Detections, iou: float = 0.5, containment: float = 0.9) -> Detections:
    """One box per object and kind, the most confident one kept.

    The model's NMS is per class at IoU 0.7, so one bike can come out twice (two overlapping bicycle
    boxes, or a bicycle and a motorcycle box); each would become its own track and its own event.
    """
    if len(dets) < 2:
        return dets
    order = np.argsort(-dets.confidence, kind="stable")
    boxes, kinds = dets.xyxy[order], dets.kind[order]
    same = (iou_matrix(boxes, boxes) >= iou) | (containment_matrix(boxes, boxes) >= containment)
    same &= kinds[:, None] == kinds[None, :]
    keep: list[int] = []
    for i in range(len(order)):
        if not any(same[i, j] for j in keep):
            keep.append(i)
    return dets[np.sort(order[keep])]


def box_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Distance between two boxes' edges; 0 when they touch or overlap."""
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return float(np.hypot(dx, dy))


def union_box(boxes: np.ndarray) -> np.ndarray:
    """The smallest box holding every box."""
    return np.array([boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()], np.float32)


def crop_box(image: np.ndarray, bbox: list[float], margin: float = 0.15) -> np.ndarray:
    """The box with some context around it, clipped to the image."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = bbox
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = max(int(x1 - mx), 0), max(int(y1 - my), 0)
    right, bottom = min(int(x2 + mx) + 1, w), min(int(y2 + my) + 1, h)
    return image[top:bottom, left:right]
