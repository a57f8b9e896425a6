"""Training images of fixed street cameras with real garbage, bins and stalls pasted at a pole camera's scale.

Why: the photos the card learns from are phone, web and dashcam shots, where a bag or a stall fills a good
part of the picture; a camera on a pole sees them small, from above, among the people and cars of one
fixed view, and no labelled set of such views can be reached from here. So real cut-outs are pasted onto
real fixed-camera frames (copy-paste augmentation):

- backgrounds: frames of fixed outdoor cameras (the videos given with --video, taken apart in time, and the
  still frames of --stills, e.g. the training views of data/fixed-cameras that show neither stall nor
  garbage); each view gets a ground model from what YOLOv8s finds standing on it (people not on a bike, bikes,
  motorbikes, cars, each of a known height): where they stand (the ground hull) and how many pixels a metre
  is at each image row (a straight line fitted against the row they stand on);
- cut-outs, training splits only: trash bags along their segmentation outlines (trashbags), garbage heaps,
  plain bins and overflowing bins (cn-street-garbage, full), stalls (the vending set), each cut from its box
  by GrabCut; bins are pasted as `garbage_bin` so the card learns that a plain bin under a pole is no event;
- placing: a foot point inside the ground hull, the object's height from its real height (drawn per kind)
  against the 1.7 m person at that row, slightly squashed vertically (seen from above), its light matched to
  the spot, a soft contact shadow, then a light blur and JPEG at the camera's quality.

Composed images go to `train` only and are never evaluated on; the card records how many were used.

    python scripts/compose_fixed_views.py --out data/fixed-composed --count 600 \\
        --video ../shared/videos/vtest.avi --video ../shared/videos/intel-car-detection.mp4 \\
        --stills data/fixed-cameras/labels-train.csv
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.errors import ConfigError, exit_code_of  # noqa: E402
from scripts.build_dataset import label_boxes, read_names  # noqa: E402

CLASSES = ["garbage", "garbage_bin", "overflow", "vending"]
HEIGHT_M = {"bag": (0.35, 0.8), "garbage": (0.5, 1.2), "garbage_bin": (0.9, 1.25), "overflow": (1.0, 1.5),
            "vending": (1.3, 2.3)}  # real heights drawn per cut-out kind
PERSON_M = 1.7
STANDING_M = {0: PERSON_M, 1: 1.05, 2: 1.5, 3: 1.1}  # COCO person, bicycle, car, motorcycle: typical heights


@dataclass
class Sprite:
    """A cut-out: BGRA pixels and the class its box gets."""

    pixels: np.ndarray
    cls: str
    kind: str


@dataclass
class View:
    """A fixed camera's frames and where on them the ground is, and how tall a person stands at each row."""

    name: str
    frames: list[np.ndarray]
    hull: np.ndarray  # ground polygon (where things seen stand), pixels
    slope: float  # pixels per metre = slope * ground row + offset
    offset: float

    def person_px(self, row: float) -> float:
        return max(8.0, PERSON_M * (self.slope * row + self.offset))


def read_frames(video: Path, every_s: float) -> list[np.ndarray]:
    import av

    if not video.exists():
        raise ConfigError("video not found", path=video, fix="pass an existing file to --video")
    frames, next_t = [], 0.0
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base) if frame.pts is not None else next_t
            if t + 1e-6 >= next_t:
                frames.append(frame.to_ndarray(format="bgr24"))
                next_t = t + every_s
    return frames


def ground_of(name: str, frames: list[np.ndarray], model: object, min_seen: int = 10) -> View | None:
    """The view's ground hull and pixels-per-metre line from what stands on it; None if too little stands."""
    feet, per_metre = [], []
    for result in model.predict(frames, classes=list(STANDING_M), conf=0.4, verbose=False, device="cpu"):  # type: ignore[attr-defined]
        xyxy, cls = result.boxes.xyxy.cpu().numpy(), result.boxes.cls.cpu().numpy().astype(int)
        wheels = xyxy[np.isin(cls, (1, 3))]
        for (x1, y1, x2, y2), c in zip(xyxy, cls, strict=True):
            riding = c == 0 and any(x1 < w[2] and w[0] < x2 and y2 > w[1] for w in wheels)
            if y2 < frames[0].shape[0] - 2 and not riding:  # cut off at the bottom edge: its height is wrong
                feet.append(((x1 + x2) / 2, y2))
                per_metre.append((y2 - y1) / STANDING_M[int(c)])
    if len(feet) < min_seen:
        return None
    pts = np.array(feet, np.float32)
    slope, offset = np.polyfit(pts[:, 1], np.array(per_metre), 1)
    if slope <= 0:  # nearer rows must be larger: a fit the other way is noise
        return None
    return View(name, frames, cv2.convexHull(pts).reshape(-1, 2), float(slope), float(offset))


def grabcut(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """BGRA cut-out of the object in `box`, or None when GrabCut finds too little or nearly all of it."""
    x1, y1, x2, y2 = box
    H, W = image.shape[:2]
    pad_x, pad_y = max(4, (x2 - x1) // 8), max(4, (y2 - y1) // 8)
    cx1, cy1, cx2, cy2 = max(0, x1 - pad_x), max(0, y1 - pad_y), min(W, x2 + pad_x), min(H, y2 + pad_y)
    crop = image[cy1:cy2, cx1:cx2]
    mask = np.zeros(crop.shape[:2], np.uint8)
    rect = (x1 - cx1, y1 - cy1, x2 - x1, y2 - y1)
    try:
        cv2.grabCut(crop, mask, rect, np.zeros((1, 65)), np.zeros((1, 65)), 3, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return None
    fg = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    fg = fg[rect[1]:rect[1] + rect[3], rect[0]:rect[0] + rect[2]]
    if not 0.25 <= fg.mean() <= 0.95:
        return None
    alpha = cv2.GaussianBlur(fg * 255, (3, 3), 0)
    return np.dstack([image[y1:y2, x1:x2], alpha])


def sprites_from_boxes(root: Path, wanted: dict[str, str], limit: int, min_px: int) -> list[Sprite]:
    """GrabCut cut-outs of a dataset's training boxes of the wanted classes (source name -> our class)."""
    names = read_names(root / "data.yaml")
    found: list[Sprite] = []
    per_class: Counter[str] = Counter()
    for label in sorted((root / "labels" / "train").glob("*.txt")):
        image = None
        for cls, cx, cy, w, h in label_boxes(label):
            ours = wanted.get(names[cls])
            if ours is None or per_class[ours] >= limit:
                continue
            if image is None:
                image = cv2.imread(str(next((root / "images" / "train").glob(f"{label.stem}.*"))))
            H, W = image.shape[:2]
            box = (int((cx - w / 2) * W), int((cy - h / 2) * H), int((cx + w / 2) * W), int((cy + h / 2) * H))
            if box[2] - box[0] < min_px or box[3] - box[1] < min_px:
                continue
            cut = grabcut(image, box)
            if cut is not None:
                found.append(Sprite(cut, ours, ours))
                per_class[ours] += 1
    return found


def bag_sprites(root: Path, limit: int) -> list[Sprite]:
    """Trash bags cut along their outlines; all bags of one photo form one pile."""
    found = []
    for label in sorted((root / "labels" / "train").glob("*.txt"))[::3]:
        lines = [ln.split() for ln in label.read_text(encoding="utf-8").splitlines()]
        polygons = [np.array(p[1:], np.float32).reshape(-1, 2) for p in lines if len(p) >= 7]
        if not polygons:
            continue
        image = cv2.imread(str(next((root / "images" / "train").glob(f"{label.stem}.*"))))
        H, W = image.shape[:2]
        pts = [np.round(p * (W, H)).astype(np.int32) for p in polygons]
        x, y, w, h = cv2.boundingRect(np.vstack(pts))
        if w < 60 or h < 60 or w * h > 0.8 * W * H:  # tiny, or the bag fills the photo (nothing to cut)
            continue
        mask = np.zeros((H, W), np.uint8)
        cv2.fillPoly(mask, pts, 255)
        found.append(Sprite(np.dstack([image[y:y + h, x:x + w], cv2.GaussianBlur(mask[y:y + h, x:x + w], (3, 3), 0)]),
                            "garbage", "bag"))
        if len(found) == limit:
            break
    return found


def paste(image: np.ndarray, sprite: Sprite, foot: tuple[float, float], height_px: float,
          rng: np.random.Generator) -> tuple[int, int, int, int] | None:
    """Blend the sprite standing on `foot` with a contact shadow and matched light; its box, or None."""
    squash = rng.uniform(0.8, 1.0)  # seen from above: a little less tall than wide
    h = round(height_px * squash)
    w = round(height_px * sprite.pixels.shape[1] / sprite.pixels.shape[0])
    if h < 8 or w < 8:
        return None
    x0, y0 = round(foot[0] - w / 2), round(foot[1] - h)
    H, W = image.shape[:2]
    if x0 < 0 or y0 < 0 or x0 + w > W or y0 + h > H:
        return None
    scaled = cv2.resize(sprite.pixels, (w, h), interpolation=cv2.INTER_AREA)
    region = image[y0:y0 + h, x0:x0 + w].astype(np.float32)
    rgb, alpha = scaled[:, :, :3].astype(np.float32), scaled[:, :, 3:4].astype(np.float32) / 255.0
    gain = (region.mean() + 1.0) / (rgb[alpha[:, :, 0] > 0.5].mean() + 1.0) if (alpha > 0.5).any() else 1.0
    rgb = np.clip(rgb * np.clip(gain, 0.6, 1.4) ** 0.5, 0, 255)  # halfway to the spot's light
    shadow = np.zeros(image.shape[:2], np.float32)
    cv2.ellipse(shadow, (round(foot[0]), round(foot[1])), (max(2, w // 2), max(1, h // 10)), 0, 0, 360, 1.0, -1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), max(1.0, h / 20))[:, :, None]
    image[:] = np.clip(image.astype(np.float32) * (1 - 0.35 * shadow), 0, 255).astype(np.uint8)
    region = image[y0:y0 + h, x0:x0 + w].astype(np.float32)
    image[y0:y0 + h, x0:x0 + w] = (alpha * rgb + (1 - alpha) * region).astype(np.uint8)
    ys, xs = np.nonzero(alpha[:, :, 0] > 0.5)
    return x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1


def compose_one(view: View, sprites: list[Sprite], rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """One composed frame: 1-3 cut-outs on the ground, farther ones first, not overlapping."""
    image = view.frames[int(rng.integers(len(view.frames)))].copy()
    y_lo, y_hi = float(view.hull[:, 1].min()), float(view.hull[:, 1].max())
    boxes: list[tuple[str, tuple[int, int, int, int]]] = []
    feet = []
    for _ in range(int(rng.integers(1, 4))):
        foot = roadside(view.hull, float(rng.uniform(y_lo, y_hi)), rng)
        if foot is not None:
            feet.append(foot)
    for foot in sorted(feet, key=lambda f: f[1]):
        sprite = sprites[int(rng.integers(len(sprites)))]
        lo, hi = HEIGHT_M[sprite.kind]
        box = paste(image, sprite, foot, view.person_px(foot[1]) * rng.uniform(lo, hi) / PERSON_M, rng)
        if box is not None and all(_apart(box, b) for _, b in boxes):
            boxes.append((sprite.cls, box))
    image = cv2.GaussianBlur(image, (3, 3), rng.uniform(0.3, 0.8))
    _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(60, 90))])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR), boxes


def roadside(hull: np.ndarray, row: float, rng: np.random.Generator) -> tuple[float, float] | None:
    """A point on `row` in the outer thirds of the ground hull: kerbs and pavements lie at the sides of a
    street view, the traffic in its middle."""
    xs = []
    for (x1, y1), (x2, y2) in zip(hull, np.roll(hull, -1, axis=0), strict=True):
        if (y1 - row) * (y2 - row) <= 0 and y1 != y2:
            xs.append(x1 + (row - y1) * (x2 - x1) / (y2 - y1))
    if len(xs) < 2:
        return None
    left, right = min(xs), max(xs)
    band = (right - left) / 3
    x = rng.uniform(left, left + band) if rng.random() < 0.5 else rng.uniform(right - band, right)
    return float(x), row


def _apart(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def build(args: argparse.Namespace) -> dict:
    from ultralytics import YOLO

    from detector.model.detector import use_cores

    use_cores()
    rng = np.random.default_rng(args.seed)
    model = YOLO(str(args.weights))
    videos = [ground_of(v.stem, read_frames(v, args.every_s), model) for v in args.video]
    frames = [ground_of(p.stem, [cv2.imread(str(p))], model, min_seen=6) for p in stills(args.stills)]
    pools = [pool for pool in ([v for v in videos if v], [v for v in frames if v]) if pool]  # half each
    if not pools:
        raise ConfigError("no background with a ground model", fix="give --video or --stills of fixed cameras")
    print(f"views with a ground model: {sum(map(len, pools))} ({len(args.video)} videos, {len(frames)} stills)")
    sprites = (bag_sprites(args.trashbags, args.per_class)
               + sprites_from_boxes(args.garbage, {"garbage": "garbage", "garbage_bin": "garbage_bin",
                                                   "overflow": "overflow"}, args.per_class, 60)
               + sprites_from_boxes(args.vending, {"vending": "vending"}, args.per_class, 40))
    print("cut-outs:", dict(Counter(s.kind for s in sprites)))
    for sub in ("images", "labels"):
        folder = args.out / sub / "train"
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
    counts: Counter[str] = Counter()
    for k in range(args.count):
        pool = pools[k % len(pools)]
        view = pool[(k // len(pools)) % len(pool)]
        image, boxes = compose_one(view, sprites, rng)
        H, W = image.shape[:2]
        name = f"{view.name}-{k:04d}"
        cv2.imwrite(str(args.out / "images" / "train" / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        lines = [f"{CLASSES.index(c)} {(x1 + x2) / 2 / W:.6f} {(y1 + y2) / 2 / H:.6f} {(x2 - x1) / W:.6f} "
                 f"{(y2 - y1) / H:.6f}" for c, (x1, y1, x2, y2) in boxes]
        (args.out / "labels" / "train" / f"{name}.txt").write_text("".join(ln + "\n" for ln in lines))
        counts.update(c for c, _ in boxes)
    summary = {"images": args.count, "boxes": dict(counts), "views": [v.name for pool in pools for v in pool],
               "cut_outs": dict(Counter(s.kind for s in sprites)), "seed": args.seed}
    (args.out / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images/train",
                                                        "names": dict(enumerate(CLASSES))}, sort_keys=False))
    (args.out / "composed.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.count} composed images to {args.out}: {dict(counts)}")
    return summary


def stills(specs: list[Path]) -> list[Path]:
    """Frames of a labels CSV (`DIR/labels-train.csv`) marked with neither vending nor garbage."""
    import csv

    found = []
    for labels in specs:
        with labels.open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r.get("vending") == "no" and r.get("garbage") == "no"]
        found += [labels.parent / "images" / labels.stem.removeprefix("labels-") / r["file"] for r in rows]
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    shared = REPO.parent / "shared"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--video", type=Path, action="append", default=[], help="a fixed outdoor camera's video")
    p.add_argument("--stills", type=Path, action="append", default=[],
                   help="a labels-SPLIT.csv of fixed-camera frames (its no/no frames are backgrounds)")
    p.add_argument("--count", type=int, default=400)
    p.add_argument("--every-s", type=float, default=6.0, help="seconds between background frames")
    p.add_argument("--per-class", type=int, default=120, help="cut-outs per class at most")
    p.add_argument("--trashbags", type=Path, default=shared / "datasets" / "trashbags")
    p.add_argument("--garbage", type=Path, default=REPO / "data" / "cn-street-garbage-full")
    p.add_argument("--vending", type=Path, default=REPO / "data" / "vending")
    p.add_argument("--weights", type=Path, default=shared / "models" / "yolov8s.pt", help="people, for the ground")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return exit_code_of(lambda: build(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
