"""Frames of real fixed street cameras (data/sources/fixed-cameras.csv) as a dataset split by camera view.

Why: a plain bin or a lit shopfront under a pole camera raises the same false event every day, and none of the
other sets is seen from a pole. The manifest names frames of public city traffic cameras (Ho Chi Minh City's
portal, day and night, wet roads, lit shopfronts) that were each looked at: stalls (`vending`, with rough
boxes; `uncertain` in the note where the picture is too small to be sure) and dumped garbage marked.

- Split by camera view (`scene`), never by frame: the frames of one view are one street, so a view is in
  train, val or test whole (seeded by the view's name: `--test` and `--val` shares of the views).
- The portal's black letterbox and white frame line are cut off: a camera gives the picture alone.
- `images/SPLIT` + `labels/SPLIT` (YOLO, classes garbage/garbage_bin/overflow/vending): train keeps the
  frames whose marks are sure (negatives, and stalls or garbage whose note is not `uncertain`), so a rough
  guess never teaches; `labels-SPLIT.csv` (`file,vending,garbage,camera,time`) has every frame of val and
  test for `streetwatch eval` (an uncertain mark is `skip` there: neither a hit nor a false alarm).

    python scripts/build_fixed_cameras.py --out data/fixed-cameras
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.errors import ConfigError, exit_code_of  # noqa: E402
from scripts.build_vending_dataset import Entry, git_show, mirror_dir, output_name  # noqa: E402

CLASSES = ["garbage", "garbage_bin", "overflow", "vending"]
COLUMNS = ("repo", "commit", "path", "license", "scene", "time", "vending", "garbage", "note")
BOX = re.compile(r"(\d+) (\d+) (\d+) (\d+)")


def marked_boxes(note: str, what: str) -> list[tuple[int, int, int, int]]:
    """The boxes written after `stall:` or `garbage:` in a note, up to the closing bracket of its text."""
    start = note.find(f"{what}:")
    if start < 0:
        return []
    part = note[start + len(what) + 1:].split("(", 1)[0]
    return [tuple(int(v) for v in m.groups()) for m in BOX.finditer(part)]  # type: ignore[misc]


def picture(image: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The camera's picture without the portal's letterbox and frame line; with its offset."""
    inner = image[3:-3, 3:-3].max(axis=2) > 8
    rows, cols = np.nonzero(inner.mean(axis=1) > 0.5)[0], np.nonzero(inner.mean(axis=0) > 0.5)[0]
    if len(rows) < 16 or len(cols) < 16:
        return image, 0, 0
    y0, y1, x0, x1 = rows[0] + 3, rows[-1] + 4, cols[0] + 3, cols[-1] + 4
    return image[y0:y1, x0:x1], int(x0), int(y0)


def split_of(scene: str, test: float, val: float) -> str:
    rank = int(hashlib.sha1(scene.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if rank < test else "val" if rank < test + val else "train"


def read_rows(manifest: Path) -> list[dict[str, str]]:
    if not manifest.is_file():
        raise ConfigError("no manifest here", path=manifest, fix="pass --manifest data/sources/fixed-cameras.csv")
    with manifest.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ConfigError(f"columns are {reader.fieldnames}, not {list(COLUMNS)}", path=manifest,
                              fix="start the file with the header " + ",".join(COLUMNS))
        return list(reader)


def yolo_lines(boxes: list[tuple[str, tuple[int, int, int, int]]], dx: int, dy: int, w: int, h: int) -> list[str]:
    lines = []
    for cls, (x1, y1, x2, y2) in boxes:
        x1, x2 = max(0, x1 - dx), min(w, x2 - dx)
        y1, y2 = max(0, y1 - dy), min(h, y2 - dy)
        if x2 > x1 and y2 > y1:
            lines.append(f"{CLASSES.index(cls)} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
                         f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
    return lines


def build(args: argparse.Namespace) -> dict[str, int]:
    rows = read_rows(args.manifest)
    for sub in ("images", "labels"):
        shutil.rmtree(args.out / sub, ignore_errors=True)
    index: dict[str, list[list[str]]] = {"train": [], "val": [], "test": []}
    views: dict[str, set[str]] = {s: set() for s in index}
    for n, row in enumerate(rows, start=2):
        split = split_of(row["scene"], args.test, args.val)
        unsure = "uncertain" in row["note"].lower()
        marks = {"vending": row["vending"], "garbage": row["garbage"]}
        entry = Entry(n, row["repo"], row["commit"], row["path"], row["license"], "cctv", split)
        image = cv2.imdecode(np.frombuffer(git_show(mirror_dir(args.mirrors, row["repo"]), entry), np.uint8), 1)
        if image is None:
            raise ConfigError(f"{row['path']!r} does not decode", path=f"{args.manifest}:{n}", fix="drop the row")
        pic, dx, dy = picture(image)
        labels = {k: ("skip" if unsure and v == "yes" else v) for k, v in marks.items()}
        if split == "train" and "skip" in labels.values():
            continue
        boxes = [("vending", b) for b in marked_boxes(row["note"], "stall")]
        boxes += [("garbage", b) for b in marked_boxes(row["note"], "garbage")]
        name = f"{row['scene']}-{output_name(entry)[-24:]}.jpg"
        for sub in ("images", "labels"):
            (args.out / sub / split).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.out / "images" / split / name), pic, [cv2.IMWRITE_JPEG_QUALITY, 95])
        lines = yolo_lines(boxes, dx, dy, pic.shape[1], pic.shape[0])
        (args.out / "labels" / split / f"{Path(name).stem}.txt").write_text("".join(f"{ln}\n" for ln in lines))
        index[split].append([name, labels["vending"], labels["garbage"], "cctv", row["time"]])
        views[split].add(row["scene"])
    for split, lines in index.items():
        with (args.out / f"labels-{split}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "vending", "garbage", "camera", "time"])
            writer.writerows(lines)
    (args.out / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images/train", "val": "images/val",
                                                        "test": "images/test", "names": dict(enumerate(CLASSES))},
                                                       sort_keys=False))
    counts = {s: len(v) for s, v in index.items()}
    print(f"wrote {args.out}: frames {counts}, views {({s: len(v) for s, v in views.items()})}")
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, default=REPO / "data" / "sources" / "fixed-cameras.csv")
    p.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    p.add_argument("--out", type=Path, default=REPO / "data" / "fixed-cameras")
    p.add_argument("--test", type=float, default=0.4, help="share of camera views held out for test (0.4)")
    p.add_argument("--val", type=float, default=0.2, help="share of camera views for choosing thresholds (0.2)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return exit_code_of(lambda: build(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
