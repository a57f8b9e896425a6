"""What a site teaches: photos with what is known of them, from review exports, labelled photo folders and
YOLO datasets, each in a group (camera and day) that is never split between training and holdout.

A review export (`streetwatch review export`) is a YOLO dataset with a `manifest.csv` saying, per image, its
camera, day and verdicts: confirmed and drawn garbage boxes are violations; an image whose garbage event
was rejected (and holds no confirmed one) shows no garbage. Labelled photos (`streetwatch eval`'s CSV: file,
garbage yes/no; optional `camera` and `day` columns) are judged at image level.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from detector.errors import ConfigError

GARBAGE_CLASSES = ("garbage", "overflow")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class Photo:
    """One photo and what is known of it: labelled boxes (pixels) by class, and garbage yes/no (None: unknown)."""

    path: Path
    boxes: dict[str, np.ndarray] = field(default_factory=dict)
    garbage: bool | None = None
    group: str = ""  # camera|day: photos of one group stay on one side of a split

    @property
    def day(self) -> str:
        return self.group.rpartition("|")[2]

    @property
    def camera(self) -> str:
        return self.group.rpartition("|")[0]


def dataset_names(data_yaml: Path) -> dict[int, str]:
    """A YOLO dataset's class names by index, from its data.yaml (a list or a mapping)."""
    data = yaml.safe_load(data_yaml.read_text(encoding="utf-8")) if data_yaml.exists() else None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict):
        raise ConfigError("not a YOLO data.yaml with names", path=data_yaml, fix="give a dataset's data.yaml")
    return {int(k): str(v) for k, v in names.items()}


def _boxes(label: Path, names: dict[int, str], w: int, h: int) -> dict[str, np.ndarray]:
    boxes: dict[str, list[list[float]]] = {}
    for line in label.read_text(encoding="utf-8").splitlines() if label.exists() else []:
        c, cx, cy, bw, bh = (float(v) for v in line.split()[:5])
        boxes.setdefault(names[int(c)], []).append([(cx - bw / 2) * w, (cy - bh / 2) * h,
                                                    (cx + bw / 2) * w, (cy + bh / 2) * h])
    return {k: np.array(v, np.float32) for k, v in boxes.items()}


def _size(image: Path) -> tuple[int, int] | None:
    import PIL.Image  # (here: `streetwatch eval` imports this module, and runs where pillow is not installed)

    try:
        with PIL.Image.open(image) as im:
            return im.size
    except OSError:
        return None


def yolo_photos(root: Path, split: str, skip: tuple[str, ...] = ()) -> list[Photo]:
    """A YOLO dataset split's photos with their boxes in pixels (`skip`: sources `NAME__*` left out)."""
    names = dataset_names(root / "data.yaml")
    photos = []
    folder = root / "images" / split
    for image in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        size = _size(image)
        if image.name.startswith(tuple(f"{s}__" for s in skip)) or size is None:
            continue
        arrays = _boxes(root / "labels" / split / f"{image.stem}.txt", names, *size)
        photos.append(Photo(image, arrays, any(k in arrays for k in GARBAGE_CLASSES), group=f"{root.name}|{split}"))
    return photos


def labelled_photos(folder: Path, labels: Path) -> list[Photo]:
    """Photos with an image-level `garbage` column (yes/no; anything else: unknown), and their group from the
    optional `camera` and `day` columns."""
    if not labels.is_file():
        raise ConfigError("no such labels file", path=labels, fix="give the CSV of file,garbage (yes/no)")
    with labels.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if rows and "file" not in rows[0]:
        raise ConfigError("a labels CSV needs a `file` column", path=labels, fix="file,garbage[,camera,day]")
    return [Photo(folder / r["file"], {}, {"yes": True, "no": False}.get((r.get("garbage") or "").strip().lower()),
                  group=f"{r.get('camera') or folder.name}|{r.get('day') or ''}")
            for r in rows if (folder / r["file"]).exists()]


def export_photos(root: Path) -> list[Photo]:
    """A review export's images (both splits), their confirmed and drawn boxes, their camera and day."""
    manifest = root / "manifest.csv"
    if not (root / "data.yaml").is_file() or not manifest.is_file():
        raise ConfigError("not a review export (data.yaml and manifest.csv)", path=root,
                          fix="give a folder `streetwatch review export` wrote")
    names = dataset_names(root / "data.yaml")
    photos = []
    with manifest.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            image = root / "images" / row["split"] / row["image"]
            size = _size(image)
            if size is None:
                continue
            boxes = _boxes(root / "labels" / row["split"] / f"{image.stem}.txt", names, *size)
            confirmed = set(row["confirmed"].split()) | set(row["drawn"].split())
            garbage = True if "garbage" in confirmed else (False if "garbage" in row["rejected"].split() else None)
            photos.append(Photo(image, boxes, garbage, group=f"{row['camera']}|{row['day']}"))
    return photos


def spread(photos: list[Photo], limit: int) -> list[Photo]:
    """At most `limit` photos, every k-th (a sample that covers the whole set)."""
    return photos if not limit or len(photos) <= limit else photos[:: max(1, len(photos) // limit)][:limit]


def split_groups(photos: list[Photo], holdout_share: float = 0.25) -> tuple[list[Photo], list[Photo]]:
    """(train, holdout): per camera, its latest days (about `holdout_share` of them, at least one when it has
    two or more) are held out, so no neighbouring frames sit on both sides and the holdout is "the next day"."""
    days: dict[str, set[str]] = defaultdict(set)
    for p in photos:
        days[p.camera].add(p.day)
    held: set[str] = set()
    for camera, seen in days.items():
        ordered = sorted(seen)
        n = max(1, round(len(ordered) * holdout_share)) if len(ordered) >= 2 else 0
        held |= {f"{camera}|{d}" for d in ordered[len(ordered) - n:]}
    return [p for p in photos if p.group not in held], [p for p in photos if p.group in held]


def photo_sets(specs: list[Path], skip: tuple[str, ...] = ()) -> dict[str, list[Photo]]:
    """Sets to judge on, by name: a YOLO dataset (its val split), an image folder with labels.csv beside or
    above it, or a `DIR/labels-SPLIT.csv` of the photos in `DIR/images/SPLIT`."""
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
