"""Merge YOLO datasets into one training set with streetwatch's class list.

Why: each public dataset labels one thing (trash bags, bicycles). Fine-tuned on them alone, a model
forgets the people, bikes and stall objects the other kinds need. So every source keeps its own labels
(mapped to our names, e.g. general_trashbag -> garbage), and the COCO classes it does not label are
pseudo-labelled by the larger COCO YOLOv8s. Video frames without garbage can be added as negatives.

    python scripts/build_dataset.py --out data/streetwatch \\
        --source ../shared/datasets/trashbags --source ../shared/datasets/bicycles \\
        --frames ../shared/videos/vtest.avi --frames ../shared/videos/intel-car-detection.mp4

Images are symlinked, labels written as boxes (segmentation polygons become their bounding boxes).
The output is deterministic: same inputs, same files, same `manifest.json` hashes. A source class named
(or mapped to) `vending` adds a `vending` class, which a trained card then reports directly.

A head that only learns new classes takes `--classes` (e.g. `garbage,garbage_bin,overflow`: no COCO class,
so nothing is pseudo-labelled). Near-duplicates across splits are removed from train by perceptual hash
(public datasets ship the same photo in train and val), and `--holdout SOURCE=FRACTION` moves groups of
near-identical training photos of one source into a `test` split kept for a final check:

    python scripts/build_dataset.py --out data/streetwatch-v3 --classes garbage,garbage_bin,overflow \
        --source ../shared/datasets/cn-street-garbage --source ../shared/datasets/trashbags \
        --source ../shared/datasets/bicycles --holdout cn-street-garbage=0.12 --night-every 6 \
        --frames ../shared/videos/vtest.avi --frames ../shared/videos/intel-car-detection.mp4
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.errors import ConfigError, exit_code_of  # noqa: E402
from detector.geometry import iou_matrix  # noqa: E402
from detector.learn.samples import dataset_names  # noqa: E402
from detector.model.detector import use_cores  # noqa: E402

# Our classes: garbage, the bike classes, and every COCO class the composite vending rule of
# detector/cards/coco.yaml uses (so a trained card keeps that rule). `vending` joins when a source has it.
BASE_CLASSES = ["garbage", "bicycle", "motorcycle", "person", "umbrella", "dining table", "bench",
                "banana", "apple", "orange", "broccoli", "carrot"]
OPTIONAL_CLASSES = ["vending"]
DEFAULT_MAP = {"general_trashbag": "garbage", "other_trashbag": "garbage", "trashbag": "garbage",
               "trash": "garbage", "bike": "bicycle", "stall": "vending"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
SPLITS = ("train", "val", "test")  # test: a held-out split (--holdout) that nobody tunes on


@dataclass
class Item:
    """One output image: where it comes from, its boxes (class name, cx, cy, w, h) and what it lacks."""

    name: str
    split: str
    image: Path
    boxes: list[tuple[str, float, float, float, float]] = field(default_factory=list)
    labelled: set[str] = field(default_factory=set)  # target classes the source labels on this image


def parse_map(pairs: list[str]) -> dict[str, str]:
    mapping = dict(DEFAULT_MAP)
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--map {pair!r} is not SOURCE=TARGET", fix="e.g. --map litter=garbage")
        src, dst = pair.split("=", 1)
        mapping[src.strip()] = dst.strip()
    return mapping


def read_names(data_yaml: Path) -> list[str]:
    names = dataset_names(data_yaml)
    return [names[k] for k in sorted(names)]


def label_boxes(label: Path) -> list[tuple[int, float, float, float, float]]:
    """YOLO boxes or polygons -> (class, cx, cy, w, h); a polygon becomes its bounding box."""
    boxes = []
    if not label.exists():
        return boxes
    for line in label.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        cls, values = int(float(parts[0])), [float(v) for v in parts[1:]]
        if len(values) == 4:
            boxes.append((cls, *values))
            continue
        xs, ys = values[0::2], values[1::2]
        x1, x2, y1, y2 = max(min(xs), 0.0), min(max(xs), 1.0), max(min(ys), 0.0), min(max(ys), 1.0)
        if x2 > x1 and y2 > y1:
            boxes.append((cls, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1))
    return boxes


def pick(files: list[Path], limit: int | None) -> list[Path]:
    """A deterministic spread sample (ordered by a hash of the name), in name order."""
    if limit is None or len(files) <= limit:
        return sorted(files)
    ranked = sorted(files, key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())
    return sorted(ranked[:limit])


def read_source(root: Path, mapping: dict[str, str], targets: list[str], limit: int | None) -> list[Item]:
    data_yaml = root / "data.yaml"
    if not data_yaml.exists():
        raise ConfigError("not a YOLO dataset (no data.yaml)", path=root, fix="point --source at a dataset folder")
    names = read_names(data_yaml)
    to_target = {i: mapping.get(n, n) for i, n in enumerate(names)}
    labelled = {t for t in to_target.values() if t in targets}
    dropped = sorted({names[i] for i, t in to_target.items() if t not in targets})
    if dropped:
        more = f" and {len(dropped) - 8} more" if len(dropped) > 8 else ""
        print(f"{root.name}: dropping classes not in our list: {', '.join(dropped[:8])}{more}")
    items = []
    for split in SPLITS:
        folder = root / "images" / split
        if not folder.is_dir():
            continue
        files = pick([p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES], limit)
        for image in files:
            label = root / "labels" / split / f"{image.stem}.txt"
            boxes = [(to_target[c], *b) for c, *b in label_boxes(label) if to_target.get(c) in targets]
            items.append(Item(f"{root.name}__{image.name}", split, image, boxes, set(labelled)))  # type: ignore[arg-type]
    return items


def read_frames(video: Path, every_s: float, out: Path, val_every: int) -> list[Item]:
    """Frames of a video as negatives (no garbage); persons and bikes come from pseudo-labels."""
    import av

    if not video.exists():
        raise ConfigError("video not found", path=video, fix="pass an existing file to --frames")
    items, next_t, index = [], 0.0, 0
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base) if frame.pts is not None else index * every_s
            if t + 1e-6 < next_t:
                continue
            next_t = t + every_s
            split = "val" if val_every and index % val_every == val_every - 1 else "train"
            name = f"{video.stem}__{index:05d}.jpg"
            path = out / "frames" / name
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                frame.to_image().save(path, quality=92)
            items.append(Item(f"frames__{name}", split, path, [], {"garbage"}))
            index += 1
    return items


def night_copies(items: list[Item], every: int, out: Path) -> list[Item]:
    """Dark, noisy, blurred copies of every Nth labelled training image, with the same boxes.

    Street reports are often phone shots at night (flash or sodium light, sensor noise, shake); the public
    datasets are daylight. Copies are made after pseudo-labelling (a dark copy keeps the daylight labels)
    and seeded by the image name, so a rebuild writes the same pixels.
    """
    copies = []
    chosen = [i for i in items if i.split == "train" and i.boxes and not i.name.startswith("frames__")]
    for item in sorted(chosen, key=lambda i: i.name)[::every]:
        seed = int(hashlib.sha1(item.name.encode()).hexdigest()[:8], 16)
        path = out / "night" / f"{Path(item.name).stem}.jpg"
        if not path.exists():
            image = cv2.imread(str(item.image))
            if image is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), darken(image, np.random.default_rng(seed)), [cv2.IMWRITE_JPEG_QUALITY, 88])
        copies.append(Item(f"night__{Path(item.name).stem}.jpg", "train", path, list(item.boxes), set(item.labelled)))
    return copies


def darken(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Night look: a gamma curve and gain, a warm or flash-white cast, a light falloff, noise and blur."""
    x = image.astype(np.float32) / 255.0
    x = np.power(x, rng.uniform(1.6, 2.6)) * rng.uniform(0.35, 0.75)
    x *= np.array([0.75, 0.9, 1.1] if rng.random() < 0.5 else [1.0, 1.0, 1.0], dtype=np.float32)  # BGR: sodium
    h, w = x.shape[:2]
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    falloff = np.exp(-(((yy - cy) / h) ** 2 + ((xx - cx) / w) ** 2) / rng.uniform(0.08, 0.3))
    x *= (0.35 + 0.65 * falloff)[..., None]  # flash or street lamp: bright centre, dark edges
    x += rng.normal(0.0, rng.uniform(0.01, 0.04), x.shape).astype(np.float32)
    out = np.clip(x * 255.0, 0, 255).astype(np.uint8)
    k = int(rng.integers(0, 3)) * 2 + 1
    if k > 1:  # hand shake: a short motion blur in a random direction
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0),
                                (k, k))
        out = cv2.filter2D(out, -1, kernel / max(kernel.sum(), 1e-6))
    return out


def phash(path: Path) -> int | None:
    """64-bit DCT perceptual hash: resized, recompressed or lightly edited copies land a few bits apart."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return None
    small = cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def hash_items(items: list[Item]) -> dict[str, int]:
    hashes = {}
    for item in items:
        h = phash(item.image)
        if h is not None:
            hashes[item.name] = h
    return hashes


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise bit distances between two arrays of 64-bit hashes."""
    x = a[:, None] ^ b[None, :]
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(-1)


def as_array(hashes: list[int]) -> np.ndarray:
    return np.array(hashes, dtype=np.uint64).reshape(-1)


def hold_out(items: list[Item], hashes: dict[str, int], source: str, fraction: float, distance: int) -> int:
    """Move a seeded share of one source's training photos to `test`, near-identical shots together.

    Photos of one scene a moment apart would leak between the splits if split one by one, so photos
    within `distance` bits join one group (union-find) and whole groups move.
    """
    pool = sorted((i for i in items if i.split == "train" and i.name.startswith(f"{source}__") and i.name in hashes),
                  key=lambda i: i.name)
    if not pool:
        raise ConfigError(f"--holdout {source}: no training images of that source", fix="name a --source folder")
    near = hamming(as_array([hashes[i.name] for i in pool]), as_array([hashes[i.name] for i in pool])) <= distance
    parent = list(range(len(pool)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in zip(*np.nonzero(np.triu(near, 1)), strict=True):
        parent[root(int(a))] = root(int(b))
    groups: dict[int, list[Item]] = {}
    for k, item in enumerate(pool):
        groups.setdefault(root(k), []).append(item)
    ranked = sorted(groups.values(), key=lambda g: hashlib.sha1(g[0].name.encode()).hexdigest())
    moved, target = 0, round(fraction * len(pool))
    for group in ranked:
        if moved >= target:
            break
        for item in group:
            item.split = "test"
        moved += len(group)
    return moved


def drop_duplicates(items: list[Item], hashes: dict[str, int], distance: int, against: str) -> list[Item]:
    """Training images within `distance` bits of an image of split `against` are left out (they would leak)."""
    held = [hashes[i.name] for i in items if i.split == against and i.name in hashes]
    if not held:
        return items
    held_array, keep, dropped = as_array(held), [], Counter()
    for start in range(0, len(items), 512):
        chunk = items[start : start + 512]
        train = [(i, hashes[i.name]) for i in chunk if i.split == "train" and i.name in hashes]
        close = set()
        if train:
            dist = hamming(as_array([h for _, h in train]), held_array).min(axis=1)
            close = {item.name for (item, _), d in zip(train, dist, strict=True) if d <= distance}
        for item in chunk:
            if item.name in close:
                dropped[item.name.split("__", 1)[0]] += 1
            else:
                keep.append(item)
    for source, n in sorted(dropped.items()):
        print(f"{source}: {n} training images left out, near-duplicates of {against} images (phash <= {distance})")
    return keep


def pseudo_label(items: list[Item], targets: list[str], weights: Path, conf: float, imgsz: int) -> int:
    """Add COCO YOLOv8s boxes for the COCO classes a source does not label; skip boxes on labelled ones."""
    from ultralytics import YOLO

    model = YOLO(str(weights), task="detect")
    use_cores()  # labelling is CPU-bound
    coco = {name: idx for idx, name in model.names.items()}
    added = 0
    groups: dict[frozenset[str], list[Item]] = {}
    for item in items:
        missing = frozenset(t for t in targets if t in coco and t not in item.labelled)
        if missing:
            groups.setdefault(missing, []).append(item)
    for missing, group in sorted(groups.items(), key=lambda kv: sorted(kv[0])):
        classes = sorted(coco[t] for t in missing)
        for start in range(0, len(group), 16):
            batch = group[start : start + 16]
            results = model.predict([str(i.image) for i in batch], imgsz=imgsz, conf=conf, classes=classes,
                                    device="cpu", verbose=False)
            for item, result in zip(batch, results, strict=True):
                xywhn = result.boxes.xywhn.cpu().numpy()
                for cls, box in zip(result.boxes.cls.cpu().numpy().astype(int), xywhn, strict=True):
                    cand = (model.names[cls], *(round(float(v), 6) for v in box))
                    overlap = iou_matrix(xywh_to_xyxy([cand[1:]]), xywh_to_xyxy([b[1:] for b in item.boxes]))
                    if not (overlap >= 0.6).any():  # e.g. a bike already labelled as bicycle
                        item.boxes.append(cand)  # type: ignore[arg-type]
                        added += 1
            print(f"  pseudo-labelled {min(start + 16, len(group))}/{len(group)} images "
                  f"({', '.join(sorted(missing))})", end="\r", flush=True)
        print()
    return added


def xywh_to_xyxy(boxes: list[tuple[float, ...]]) -> np.ndarray:
    xywh = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    return np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(items: list[Item], classes: list[str], out: Path) -> dict[str, object]:
    """Write symlinks, label files, data.yaml and a manifest whose hashes identify the training data."""
    index = {c: i for i, c in enumerate(classes)}
    digests = {s: hashlib.sha256() for s in SPLITS}
    for split in SPLITS:
        for sub in ("images", "labels"):
            folder = out / sub / split
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.iterdir():  # a rebuild must not keep images of a previous run
                old.unlink()
    for item in sorted(items, key=lambda i: (i.split, i.name)):
        link = out / "images" / item.split / item.name
        link.symlink_to(item.image.resolve())
        lines = [f"{index[c]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}" for c, cx, cy, w, h in item.boxes]
        text = "\n".join(lines) + ("\n" if lines else "")
        (out / "labels" / item.split / f"{Path(item.name).stem}.txt").write_text(text, encoding="utf-8")
        digests[item.split].update(f"{item.name}\0{file_sha256(item.image)}\0{text}\0".encode())
    used = [s for s in SPLITS if s != "test" or any(i.split == s for i in items)]
    data = {"path": str(out.resolve()), **{s: f"images/{s}" for s in used}, "names": dict(enumerate(classes))}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    manifest = {"classes": classes, "sha256": {s: digests[s].hexdigest() for s in used},
                "images": {s: sum(i.split == s for i in items) for s in used}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def print_counts(items: list[Item], classes: list[str]) -> None:
    boxes = Counter((i.split, b[0]) for i in items for b in i.boxes)
    images = Counter((i.split, c) for i in items for c in {b[0] for b in i.boxes})
    totals = Counter(i.split for i in items)
    empty = Counter(i.split for i in items if not i.boxes)
    print(f"{'class':<14}" + "".join(f"{s + ' boxes':>12}{s + ' imgs':>11}" for s in SPLITS))
    for c in classes:
        print(f"{c:<14}" + "".join(f"{boxes[s, c]:>12}{images[s, c]:>11}" for s in SPLITS))
    print(f"{'(no boxes)':<14}" + "".join(f"{'':>12}{empty[s]:>11}" for s in SPLITS))
    print(f"{'images':<14}" + "".join(f"{'':>12}{totals[s]:>11}" for s in SPLITS))


def split_and_dedupe(items: list[Item], args: argparse.Namespace) -> list[Item]:
    """Hold out what --holdout asks for, then leave out training images that are near-copies of held ones."""
    if args.dup_distance < 0 and not args.holdout:
        return items
    hashes = hash_items(items)
    if args.dup_distance >= 0:  # first against val, so that no copy of a val photo is held out either
        items = drop_duplicates(items, hashes, args.dup_distance, "val")
    for spec in args.holdout:
        source, _, share = spec.partition("=")
        try:
            fraction = float(share)
        except ValueError:
            fraction = -1.0
        if not 0 < fraction < 1:
            raise ConfigError(f"--holdout {spec!r} is not SOURCE=FRACTION", fix="e.g. --holdout cn-street-garbage=0.12")
        moved = hold_out(items, hashes, source, fraction, max(args.dup_distance, 0))
        print(f"{source}: {moved} training images held out as the test split")
    return drop_duplicates(items, hashes, args.dup_distance, "test") if args.dup_distance >= 0 else items


def repeats(items: list[Item], specs: list[str]) -> list[Item]:
    """Extra copies of a small source's training images (`--repeat SOURCE=N`): a class with a few dozen photos
    beside thousands of others is otherwise seen too rarely in an epoch to be learnt (ultralytics has no
    sampling weights). Mosaic and flips make each copy a different picture."""
    extra: list[Item] = []
    sources = [spec.partition("=")[0] for spec in specs]
    if len(set(sources)) < len(sources):
        raise ConfigError(f"--repeat names a source twice: {specs}", fix="give each source one --repeat SOURCE=N")
    for spec in specs:
        source, _, count = spec.partition("=")
        if not count.isdigit() or int(count) < 2:
            raise ConfigError(f"--repeat {spec!r} is not SOURCE=N with N >= 2", fix="e.g. --repeat vending=4")
        chosen = [i for i in items if i.split == "train" and i.name.startswith(f"{source}__")]
        if not chosen:
            raise ConfigError(f"--repeat {source}: no training images of that source", fix="name a --source folder")
        extra += [Item(f"{source}__copy{k}_{i.name.split('__', 1)[1]}", i.split, i.image, list(i.boxes),
                       set(i.labelled)) for k in range(1, int(count)) for i in chosen]
    return extra


def build(args: argparse.Namespace) -> dict[str, object]:
    mapping = parse_map(args.map)
    chosen = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    known = chosen or BASE_CLASSES + OPTIONAL_CLASSES
    items: list[Item] = []
    for source in args.source:
        items += read_source(source, mapping, known, args.limit)
    for video in args.frames:
        items += read_frames(video, args.frame_every, args.out, args.frames_val_every)
    if not items:
        raise ConfigError("no images found in the sources", fix="pass --source DATASET folders with images/train")
    present = {b[0] for i in items for b in i.boxes} | {c for i in items for c in i.labelled}
    classes = chosen or BASE_CLASSES + [c for c in OPTIONAL_CLASSES if c in present]
    for item in items:
        item.labelled &= set(classes)
        if chosen and item.name.startswith("frames__"):
            item.labelled = set(classes)  # a street video shows none of the chosen classes
    items = split_and_dedupe(items, args)
    if not args.no_pseudo:
        added = pseudo_label(items, classes, args.pseudo_weights, args.pseudo_conf, args.pseudo_imgsz)
        print(f"pseudo-labels added: {added} (COCO {args.pseudo_weights.name}, conf >= {args.pseudo_conf})")
    items += repeats(items, args.repeat)
    if args.night_every:
        night = night_copies(items, args.night_every, args.out)
        items += night
        print(f"night copies: {len(night)} (1 in {args.night_every} labelled training images)")
    manifest = write(items, classes, args.out)
    print_counts(items, classes)
    digests = ", ".join(f"{s} {d[:12]}" for s, d in manifest["sha256"].items())  # type: ignore[attr-defined]
    print(f"wrote {args.out / 'data.yaml'} ({digests})")
    return manifest


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    shared = REPO.parent / "shared"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output folder (outside the repository, or data/)")
    p.add_argument("--source", type=Path, action="append", default=[], help="a YOLO dataset folder (repeatable)")
    p.add_argument("--map", action="append", default=[], metavar="SRC=DST",
                   help="extra source class -> our class (general_trashbag/other_trashbag -> garbage built in)")
    p.add_argument("--frames", type=Path, action="append", default=[], help="a video whose frames are negatives")
    p.add_argument("--frame-every", type=float, default=4.0, help="seconds between frames taken from --frames (4)")
    p.add_argument("--frames-val-every", type=int, default=5, help="every Nth frame goes to val (5; 0: none)")
    p.add_argument("--night-every", type=int, default=0, metavar="N",
                   help="add a dark, noisy, blurred copy of every Nth labelled training image (0: none)")
    p.add_argument("--limit", type=int, help="at most N images per source split (a deterministic sample)")
    p.add_argument("--pseudo-weights", type=Path, default=shared / "models" / "yolov8s.pt")
    p.add_argument("--pseudo-conf", type=float, default=0.4, help="confidence of kept pseudo-labels (0.4)")
    p.add_argument("--pseudo-imgsz", type=int, default=512, help="pseudo-labelling image size (512)")
    p.add_argument("--no-pseudo", action="store_true", help="skip pseudo-labelling (tests, quick looks)")
    p.add_argument("--classes", help="the class list, comma-separated (default: garbage, bikes, vending-rule "
                   "classes); e.g. garbage,garbage_bin,overflow for a head that learns only those")
    p.add_argument("--holdout", action="append", default=[], metavar="SOURCE=FRACTION",
                   help="move this share of a source's training photos (near-identical ones together) to test")
    p.add_argument("--repeat", action="append", default=[], metavar="SOURCE=N",
                   help="use a source's training images N times (a small class among large ones)")
    p.add_argument("--dup-distance", type=int, default=6,
                   help="phash bits within which a training image is a near-copy of a val/test one (6; -1: keep)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return exit_code_of(lambda: build(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
