"""Train a card's second look (detector/model/second_look.py) on its own candidates, choose its thresholds on
validation photos, and write a card that uses it.

Why on its own candidates: the second look must learn what *this* detector mistakes for garbage. So the
card runs with its garbage classes lowered to `--floor` over the training split of a built dataset; every box
it gives is cropped and labelled by the dataset's boxes (a violation where it overlaps a garbage or overflow
box, a bin where it overlaps only a plain bin, background where it overlaps nothing labelled; unclear overlaps
are left out), and the labelled boxes themselves are added. Photos that show no garbage class (bikes, video
frames, fixed-camera frames, bins-only photos) give hard negatives wherever the card fires on them. Sources
whose garbage is not labelled (`--skip-source vending`) are left out. The crops' pooled backbone features are
computed once; the classifier trains on them in seconds.

Thresholds (the card's garbage classes and the look's) are chosen together on `--val` sets (YOLO datasets:
their val split, or image folders with a labels CSV) as the best worst-case recall with false alarms at most
`--max-false-alarm` on every set; the split nobody tuned on is judged afterwards with `streetwatch eval`.

    python scripts/train_second_look.py --card detector/cards/streetwatch-v5.yaml --data data/streetwatch-v5 \\
        --skip-source vending --val data/streetwatch-v5 --val ../shared/datasets/street-garbage-dev/images \\
        --out-card detector/cards/streetwatch-v5.yaml
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import PIL.Image
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.errors import ConfigError, exit_code_of  # noqa: E402
from detector.geometry import iou_matrix  # noqa: E402

VIOLATION, BIN, BACKGROUND = 0, 1, 2
GARBAGE_CLASSES = ("garbage", "overflow")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class Photo:
    """One photo and what is known of it: its labelled boxes (pixels) by class, or only a yes/no."""

    path: Path
    boxes: dict[str, np.ndarray]
    garbage: bool | None  # image level: None when it is left out (a `skip` label)


def yolo_photos(root: Path, split: str, skip: tuple[str, ...] = ()) -> list[Photo]:
    """A YOLO dataset split's photos with their boxes in pixels."""
    names = yaml.safe_load((root / "data.yaml").read_text(encoding="utf-8"))["names"]
    names = names if isinstance(names, dict) else dict(enumerate(names))
    photos = []
    folder = root / "images" / split
    for image in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if image.name.startswith(tuple(f"{s}__" for s in skip)):
            continue
        try:
            with PIL.Image.open(image) as im:
                w, h = im.size
        except OSError:
            continue
        boxes: dict[str, list[list[float]]] = {}
        label = root / "labels" / split / f"{image.stem}.txt"
        for line in label.read_text(encoding="utf-8").splitlines() if label.exists() else []:
            c, cx, cy, bw, bh = (float(v) for v in line.split()[:5])
            boxes.setdefault(str(names[int(c)]), []).append([(cx - bw / 2) * w, (cy - bh / 2) * h,
                                                              (cx + bw / 2) * w, (cy + bh / 2) * h])
        arrays = {k: np.array(v, np.float32) for k, v in boxes.items()}
        photos.append(Photo(image, arrays, any(k in arrays for k in GARBAGE_CLASSES)))
    return photos


def labelled_photos(folder: Path, labels: Path) -> list[Photo]:
    """Photos with an image-level `garbage` column (yes/no; anything else is left out)."""
    with labels.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    return [Photo(folder / r["file"], {}, {"yes": True, "no": False}.get(r.get("garbage", "").strip().lower()))
            for r in rows if (folder / r["file"]).exists()]


def val_sets(specs: list[Path], skip: tuple[str, ...]) -> dict[str, list[Photo]]:
    """`--val` sets: a YOLO dataset (its val split), an image folder with labels.csv beside or above it, or a
    `DIR/labels-SPLIT.csv` of the photos in `DIR/images/SPLIT` (as build_vending_dataset and build_fixed_cameras
    write them)."""
    sets = {}
    for spec in specs:
        if (spec / "data.yaml").exists():
            sets[spec.name] = yolo_photos(spec, "val", skip)
            continue
        if spec.suffix == ".csv":
            split = spec.stem.removeprefix("labels-")
            sets[f"{spec.parent.name}-{split}"] = labelled_photos(spec.parent / "images" / split, spec)
            continue
        labels = next((p for p in (spec / "labels.csv", spec.parent / "labels.csv") if p.exists()), None)
        if labels is None:
            raise ConfigError("not a YOLO dataset and no labels.csv", path=spec, fix="give a dataset or photos")
        sets[spec.parent.name if spec.name == "images" else spec.name] = labelled_photos(spec, labels)
    return sets


def candidates(detector: Any, photos: list[Photo], batch: int = 8) -> list[tuple[np.ndarray, Any]]:
    """(image, the card's detections of its garbage classes) per photo."""
    out = []
    for start in range(0, len(photos), batch):
        images = [cv2.imread(str(p.path)) for p in photos[start:start + batch]]
        for image, dets in zip(images, detector.detect(images), strict=True):
            out.append((image, dets[np.isin(dets.class_name.astype(str), GARBAGE_CLASSES)]))
        print(f"  candidates {min(start + batch, len(photos))}/{len(photos)}", end="\r", flush=True)
    print()
    return out


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


def training_crops(found: list[tuple[np.ndarray, Any]], photos: list[Photo],
                   size: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops of the candidates (labelled by overlap) and of the labelled boxes themselves, and their labels."""
    from detector.model.second_look import crops

    xs, ys = [], []
    for (image, dets), photo in zip(found, photos, strict=True):
        boxes = [(b, label_of(b, photo)) for b in dets.xyxy]
        boxes += [(b, VIOLATION) for c in GARBAGE_CLASSES for b in photo.boxes.get(c, [])]
        boxes += [(b, BIN) for b in photo.boxes.get("garbage_bin", [])]
        kept = [(b, y) for b, y in boxes if y is not None and b[2] - b[0] >= 8 and b[3] - b[1] >= 8]
        if kept:
            xs.append(crops(image, np.array([b for b, _ in kept], np.float32), size))
            ys += [y for _, y in kept]
    return np.concatenate(xs), np.array(ys, np.int64)


def features(net: Any, batch: np.ndarray, chunk: int = 64) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(batch), chunk):
            out.append(net.features(torch.from_numpy(batch[start:start + chunk])).numpy())
    return np.concatenate(out)


def fit_head(x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> Any:
    """A two-layer classifier on the pooled features, classes weighted by their rarity."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    head = nn.Sequential(nn.Linear(x.shape[1], 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 3))
    with torch.no_grad():  # standardise the features inside the first layer, so the file is the whole head
        scale = torch.from_numpy(1 / std)
        head[0].weight.mul_(scale)
        head[0].bias.sub_(head[0].weight @ torch.from_numpy(mean))
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


def scored(look: Any, found: list[tuple[np.ndarray, Any]]) -> list[list[tuple[str, float, float]]]:
    """Per photo, each candidate's (class, detector confidence, second-look probability)."""
    return [list(zip(d.class_name.astype(str), d.confidence.astype(float), look.scores(image, d.xyxy).astype(float),
                     strict=True)) for image, d in found]


def rates(per_photo: list[list[tuple[str, float, float]]], photos: list[Photo], thr: dict[str, float],
          look: float) -> tuple[float | None, float]:
    raised = [any(conf >= thr[c] and p >= look for c, conf, p in cands) for cands in per_photo]
    yes = [r for r, ph in zip(raised, photos, strict=True) if ph.garbage is True]
    no = [r for r, ph in zip(raised, photos, strict=True) if ph.garbage is False]
    return (sum(yes) / len(yes) if yes else None), (sum(no) / len(no) if no else 0.0)


def choose(val: dict[str, tuple[list[Photo], list]], cap: float) -> tuple[dict[str, float], float, dict]:
    """The thresholds with the best worst-case recall, false alarms <= cap on every set (ties: fewer alarms)."""
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    best: tuple[float, float] | None = None
    chosen: tuple[dict[str, float], float, dict] = ({}, 0.5, {})
    for g, o, t in itertools.product(grid[:10], grid[1:16], grid[1:19]):
        thr = {"garbage": float(g), "overflow": float(o)}
        got = {name: rates(per, photos, thr, float(t)) for name, (photos, per) in val.items()}
        if any(fa > cap for _, fa in got.values()):
            continue
        recall = min(r for r, _ in got.values() if r is not None)
        score = (recall, -max(fa for _, fa in got.values()))
        if best is None or score > best:
            best, chosen = score, (thr, float(t), got)
    if best is None:
        raise ConfigError(f"no thresholds keep false alarms within {cap} on every set", fix="raise --max-false-alarm")
    return chosen


def run(args: argparse.Namespace) -> None:
    import torch

    from detector.apps.evaluate import sweep_card
    from detector.model.compiled import for_runtime
    from detector.model.detector import Detector, use_cores
    from detector.model.second_look import CropNet, SecondLook, backbone_of
    from detector.model.weights import load_card, sha256_of

    use_cores()
    began = time.monotonic()
    loaded = load_card(args.card)
    mining = Detector(for_runtime(sweep_card(loaded, args.floor)))  # the runtime the card will run on
    train = yolo_photos(args.data, "train", tuple(args.skip_source))
    if args.limit:  # a spread sample (every k-th photo), for a quick look
        train = train[:: max(1, len(train) // args.limit)][: args.limit]
    print(f"mining the card's candidates on {len(train)} training photos (garbage classes at {args.floor})")
    x, y = training_crops(candidates(mining, train), train, args.size)
    print(f"crops: {np.bincount(y, minlength=3).tolist()} (violation, bin, background)")
    net = CropNet(backbone_of(loaded.weights_path, args.taps), args.taps, torch.nn.Identity()).eval()
    head = fit_head(features(net, x), y, args.epochs)
    look_file = args.out_card.with_suffix(".look.pt")
    torch.save({"head": head, "taps": list(args.taps), "size": args.size, "labels": ["violation", "bin", "background"],
                "base_sha256": sha256_of(loaded.weights_path), "crops": np.bincount(y, minlength=3).tolist()},
               look_file)
    card = yaml.safe_load(args.card.read_text(encoding="utf-8"))
    card["second_look"] = {"head": look_file.name, "classes": list(GARBAGE_CLASSES), "threshold": 0.5}
    draft = args.out_card.with_suffix(".draft.yaml")
    draft.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True), encoding="utf-8")
    look = SecondLook(load_card(draft))
    sets = val_sets(args.val, tuple(args.skip_source))
    val = {name: (photos, scored(look, candidates(mining, photos))) for name, photos in sets.items()}
    thr, t, got = choose(val, args.max_false_alarm)
    draft.unlink()
    for name in GARBAGE_CLASSES:
        card["classes"][name]["confidence"] = thr[name]
    card["second_look"]["threshold"] = t
    card.setdefault("metrics", {})["second_look"] = {
        "crops": np.bincount(y, minlength=3).tolist(), "floor": args.floor, "size": args.size,
        "chosen_on": {n: {"recall": r, "false_alarms": fa} for n, (r, fa) in got.items()},
        "seconds": round(time.monotonic() - began)}
    args.out_card.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8")
    print(json.dumps({"thresholds": thr, "look": t, "val": got}, indent=1))
    print(f"wrote {look_file} and {args.out_card}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--card", type=Path, required=True, help="the card whose garbage boxes are looked at again")
    p.add_argument("--data", type=Path, required=True, help="a built dataset (its train split is mined)")
    p.add_argument("--val", type=Path, action="append", required=True, help="a set to choose thresholds on")
    p.add_argument("--out-card", type=Path, required=True, help="the card to write (its look: CARD.look.pt)")
    p.add_argument("--skip-source", action="append", default=[], help="a source whose garbage is unlabelled")
    p.add_argument("--floor", type=float, default=0.05, help="garbage classes' threshold while mining (0.05)")
    p.add_argument("--size", type=int, default=128, help="crop side in pixels (128)")
    p.add_argument("--taps", type=int, nargs="+", default=[6, 9], help="backbone layers pooled (6 9)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--limit", type=int, default=0, help="mine at most N training photos (a spread sample; 0: all)")
    p.add_argument("--max-false-alarm", type=float, default=0.08)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return exit_code_of(lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
