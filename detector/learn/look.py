"""Teaching a card's second look (`detector.model.second_look`) what *its* detector mistakes for garbage:
mine the card's candidates (its garbage classes lowered to a floor), crop and label them by what is known
of each photo, fit the look's classifier on the crops' pooled backbone features, and choose the thresholds.

Labels: a candidate overlapping a labelled garbage box is a violation, one overlapping only a plain bin is a
bin, one overlapping nothing labelled is background (unclear overlaps are left out), and the labelled boxes
themselves are added. A photo known only at image level gives all its candidates its verdict, as an operator
working through those events would: violations on a yes, background on a no.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detector.errors import ConfigError
from detector.geometry import iou_matrix
from detector.learn.samples import GARBAGE_CLASSES, Photo

VIOLATION, BIN, BACKGROUND = 0, 1, 2
Found = tuple[np.ndarray, np.ndarray, np.ndarray]  # per photo: boxes (n, 4), classes (n,), confidences (n,)
Scored = list[tuple[str, float, float]]  # per photo: each candidate's (class, confidence, look probability)


def _key(photo: Path, card_sha: str, floor: float) -> str:
    stat = photo.stat()
    return hashlib.sha1(f"{photo.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{card_sha}|{floor}".encode()).hexdigest()


def candidates(detect: Callable[[list[np.ndarray]], list[Any]], photos: list[Photo], *, card_sha: str = "",
               floor: float = 0.0, cache: Path | None = None, batch: int = 8,
               progress: Callable[[int], Any] | None = None) -> list[Found]:
    """The card's garbage-class detections per photo; with `cache`, kept per photo so a rerun (`--resume`)
    only detects what it has not seen."""
    out: list[Found | None] = [None] * len(photos)
    todo = []
    for i, photo in enumerate(photos):
        file = cache / f"{_key(photo.path, card_sha, floor)}.npz" if cache else None
        if file is not None and file.is_file():
            with np.load(file) as z:
                out[i] = (z["boxes"], z["classes"].astype(str), z["confidences"])
        else:
            todo.append((i, file))
    for chunk in _chunks(todo, batch):
        images = [read_image(photos[i].path) for i, _ in chunk]
        for (i, file), dets in zip(chunk, detect(images), strict=True):
            keep = np.isin(dets.class_name.astype(str), GARBAGE_CLASSES)
            found = (dets.xyxy[keep].astype(np.float32), dets.class_name[keep].astype(str),
                     dets.confidence[keep].astype(np.float32))
            out[i] = found
            if file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
                tmp = file.with_name(f".{file.stem}.tmp.npz")
                np.savez(tmp, boxes=found[0], classes=found[1], confidences=found[2])
                tmp.replace(file)
        if progress is not None:
            progress(len(chunk))
    return [f for f in out if f is not None]


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise ConfigError("not a readable image", path=path, fix="remove it or replace it with a JPEG or PNG")
    return image


def label_of(box: np.ndarray, photo: Photo) -> int | None:
    """violation / bin / background by overlap with the photo's boxes; None when unclear."""
    garbage = np.concatenate([photo.boxes[c] for c in GARBAGE_CLASSES if c in photo.boxes] or [np.zeros((0, 4))])
    bins = photo.boxes.get("garbage_bin", np.zeros((0, 4), np.float32))
    g = iou_matrix(box[None], garbage).max() if len(garbage) else 0.0
    b = iou_matrix(box[None], bins).max() if len(bins) else 0.0
    if g >= 0.4:
        return VIOLATION
    if b >= 0.4 and g < 0.2:
        return BIN
    if max(g, b) < 0.15:
        return BACKGROUND
    return None


def labelled_boxes(found: Found, photo: Photo) -> list[tuple[np.ndarray, int]]:
    """The boxes to crop from one photo and their labels (see the module's docstring)."""
    boxes, _, _ = found
    if photo.boxes or photo.garbage is None:  # boxes known (or nothing known: overlap decides, as in a dataset)
        kept = [(b, label_of(b, photo)) for b in boxes]
        kept += [(b, VIOLATION) for c in GARBAGE_CLASSES for b in photo.boxes.get(c, [])]
        kept += [(b, BIN) for b in photo.boxes.get("garbage_bin", [])]
    else:
        kept = [(b, VIOLATION if photo.garbage else BACKGROUND) for b in boxes]
    return [(b, y) for b, y in kept if y is not None and b[2] - b[0] >= 8 and b[3] - b[1] >= 8]


class Crops:
    """Pooled backbone features of boxes' crops, through a card's frozen base (the look's own input)."""

    def __init__(self, base: Path, taps: tuple[int, ...], size: int) -> None:
        import torch

        from detector.model.second_look import CropNet, backbone_of

        self.size = size
        self.net = CropNet(backbone_of(base, taps), taps, torch.nn.Identity()).eval()

    def features(self, photo: Photo, boxes: np.ndarray) -> np.ndarray:
        import torch

        from detector.model.second_look import crops

        if not len(boxes):
            return np.zeros((0, 0), np.float32)
        batch = crops(read_image(photo.path), np.asarray(boxes, np.float32), self.size)
        with torch.no_grad():
            return np.concatenate([self.net.features(torch.from_numpy(batch[s:s + 64])).numpy()
                                   for s in range(0, len(batch), 64)])


def training_set(crops: Crops, photos: list[Photo], found: list[Found]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per photo: the features of its labelled boxes and their labels."""
    out = []
    for photo, f in zip(photos, found, strict=True):
        kept = labelled_boxes(f, photo)
        boxes = np.array([b for b, _ in kept], np.float32).reshape(-1, 4)
        out.append((crops.features(photo, boxes), np.array([y for _, y in kept], np.int64)))
    return out


def stack(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The photos' features and labels as one training set."""
    parts = [(x, y) for x, y in parts if len(y)]
    if not parts:
        raise ConfigError("no crop to learn from: the card found no garbage candidate in these photos",
                          fix="give more reviews or photos, or a lower --floor")
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def fit_head(x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> Any:
    """A two-layer classifier on the pooled features, classes weighted by their rarity."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    first = nn.Linear(x.shape[1], 128)
    head = nn.Sequential(first, nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 3))
    with torch.no_grad():  # standardise the features inside the first layer, so the file is the whole head
        first.weight.mul_(torch.from_numpy(1 / std))
        first.bias.sub_(first.weight @ torch.from_numpy(mean))
    counts = np.bincount(y, minlength=3).astype(np.float32)
    loss = nn.CrossEntropyLoss(weight=torch.from_numpy(counts.sum() / np.maximum(counts, 1) / 3))
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        order = torch.randperm(len(xt))
        for start in range(0, len(order), 256):
            idx = order[start:start + 256]
            opt.zero_grad()
            loss(head(xt[idx]), yt[idx]).backward()
            opt.step()
    return head.eval()


def scored(found: list[Found], look: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
           photos: list[Photo]) -> list[Scored]:
    """Per photo, each candidate's (class, confidence, look probability); no look: probability 1."""
    out = []
    for (boxes, classes, confs), photo in zip(found, photos, strict=True):
        probs = look(read_image(photo.path), boxes) if look is not None and len(boxes) else np.ones(len(boxes))
        out.append(list(zip(classes.tolist(), confs.astype(float).tolist(), np.asarray(probs, float).tolist(),
                            strict=True)))
    return out


def rates(per_photo: list[Scored], photos: list[Photo], thr: dict[str, float],
          look: float) -> tuple[float | None, float]:
    """(recall on garbage photos, false alarms on the others) at these thresholds; photos unknown left out."""
    raised = [any(conf >= thr.get(c, 1.1) and p >= look for c, conf, p in cands) for cands in per_photo]
    yes = [r for r, ph in zip(raised, photos, strict=True) if ph.garbage is True]
    no = [r for r, ph in zip(raised, photos, strict=True) if ph.garbage is False]
    return (sum(yes) / len(yes) if yes else None), (sum(no) / len(no) if no else 0.0)


def choose(val: dict[str, tuple[list[Photo], list[Scored]]], cap: float | dict[str, float],
           ) -> tuple[dict[str, float], float, dict[str, tuple[float | None, float]]]:
    """The thresholds with the best worst-case recall, false alarms <= cap on every set (ties: fewer alarms)."""
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    caps = cap if isinstance(cap, dict) else dict.fromkeys(val, cap)
    best: tuple[float, float] | None = None
    chosen: tuple[dict[str, float], float, dict[str, tuple[float | None, float]]] = ({}, 0.5, {})
    for g, o, t in itertools.product(grid[:10], grid[1:16], grid[1:19]):
        thr = {"garbage": float(g), "overflow": float(o)}
        got = {name: rates(per, photos, thr, float(t)) for name, (photos, per) in val.items()}
        if any(fa > caps[name] + 1e-9 for name, (_, fa) in got.items()):
            continue
        recall = min((r for r, _ in got.values() if r is not None), default=0.0)
        score = (recall, -max(fa for _, fa in got.values()))
        if best is None or score > best:
            best, chosen = score, (thr, float(t), got)
    if best is None:
        raise ConfigError(f"no thresholds keep false alarms within {cap} on every set", fix="raise --max-false-alarm")
    return chosen
