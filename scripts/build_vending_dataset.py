"""Rebuild the vending YOLO dataset (issue 19) from its manifest and the fetched source repositories.

Why: the composite vending rule over COCO classes finds almost none of the stalls, carts and spreads of goods
that fixed cameras, phones and dashcams see, so a learnt `vending` class needs real street photos. Their
rights are unclear, so the images are never committed: `data/sources/vending.csv` names each one by public
GitHub repository, commit and path (with its licence if stated, its camera type and its split) and carries
the `vending` boxes drawn by hand for this project, and this script rebuilds the same dataset from the
mirrors the `fetch` tool brings (bare git directories under /work/.mirror/OWNER+NAME/):

    python scripts/build_vending_dataset.py --out data/vending

Each file is read with `git show COMMIT:PATH`, must decode as an image, and gets a YOLO label file (empty for
a hard negative). Near-copies are left out by the same 64-bit DCT perceptual hash as scripts/build_dataset.py:
a photo within `--dup-distance` bits of a photo in ../shared/datasets is dropped (those sets train and judge
other kinds), and across splits the copy in train (then val) goes, so the held-out `test` split that nobody
tunes on shares no photo with the others. A count table per split x camera x positive/negative ends the run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import shutil
import subprocess
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
from scripts.build_dataset import IMAGE_SUFFIXES, as_array, hamming, phash  # noqa: E402

SPLITS = ("train", "val", "test")  # test: held out, nobody tunes on it
CAMERAS = ("cctv", "phone", "dashcam", "web")
COLUMNS = ("repo", "commit", "path", "license", "camera", "split", "boxes")
PRIORITY = {"test": 0, "val": 1, "train": 2}  # of near-copies across splits, the earliest here is kept


@dataclass
class Entry:
    """One manifest row, and once built, the file it became and its perceptual hash."""

    line: int
    repo: str
    commit: str
    path: str
    license: str
    camera: str
    split: str
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    name: str = ""
    image: Path | None = None
    hash: int | None = None


def parse_boxes(text: str, where: str) -> list[tuple[float, float, float, float]]:
    """`x1 y1 x2 y2;x1 y1 x2 y2` in pixels of the original image; empty for a negative."""
    boxes = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        try:
            x1, y1, x2, y2 = (float(v) for v in part.split())
        except ValueError:
            raise ConfigError(f"box {part!r} is not four numbers", path=where,
                              fix="write boxes as 'x1 y1 x2 y2;x1 y1 x2 y2' in pixels") from None
        if x2 <= x1 or y2 <= y1:
            raise ConfigError(f"box {part!r} has x2 <= x1 or y2 <= y1", path=where, fix="give the corners in order")
        boxes.append((x1, y1, x2, y2))
    return boxes


def read_manifest(manifest: Path) -> list[Entry]:
    if not manifest.is_file():
        raise ConfigError("no manifest here", path=manifest, fix="pass --manifest data/sources/vending.csv")
    with manifest.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ConfigError(f"columns are {reader.fieldnames}, not {list(COLUMNS)}", path=manifest,
                              fix="start the file with the header " + ",".join(COLUMNS))
        rows = list(reader)
    entries = []
    for n, row in enumerate(rows, start=2):
        where = f"{manifest}:{n}"
        if row["camera"] not in CAMERAS or row["split"] not in SPLITS:
            raise ConfigError(f"camera {row['camera']!r} / split {row['split']!r} unknown", path=where,
                              fix=f"camera is one of {'|'.join(CAMERAS)}, split one of {'|'.join(SPLITS)}")
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", row["repo"]) or not re.fullmatch(r"[0-9a-f]{7,40}", row["commit"]):
            raise ConfigError(f"repo {row['repo']!r} or commit {row['commit']!r} malformed", path=where,
                              fix="repo is owner/name, commit a hex commit id")
        entries.append(Entry(n, row["repo"], row["commit"], row["path"], row["license"], row["camera"],
                             row["split"], parse_boxes(row["boxes"], where)))
    return entries


def mirror_dir(mirrors: Path, repo: str) -> Path:
    """The bare git directory the `fetch` tool made for owner/name: OWNER+NAME/repo (or OWNER+NAME itself)."""
    base = mirrors / repo.replace("/", "+")
    for candidate in (base / "repo", base):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    raise ConfigError(f"{repo}: no mirror at {base}", fix=f"fetch github:{repo} (the fetch tool), or pass --mirrors")


def git_show(git_dir: Path, entry: Entry) -> bytes:
    done = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"{entry.commit}:{entry.path}"],
                          capture_output=True, check=False)
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["git show failed"]
        raise ConfigError(f"{entry.repo}@{entry.commit}: cannot read {entry.path!r} ({reason[0]})",
                          fix=f"fetch github:{entry.repo} again for a snapshot with that commit, or fix the row "
                              f"on line {entry.line} of the manifest")
    return done.stdout


def output_name(entry: Entry) -> str:
    """Stable, unique and readable: owner_name_<8 hex of commit:path>_<file name>."""
    digest = hashlib.sha1(f"{entry.repo}@{entry.commit}:{entry.path}".encode()).hexdigest()[:8]
    stem = re.sub(r"[^\w.-]+", "_", Path(entry.path).stem)[:40]
    return f"{entry.repo.replace('/', '_')}_{digest}_{stem}"


def yolo_lines(boxes: list[tuple[float, float, float, float]], width: int, height: int) -> list[str]:
    """Pixel corners -> `0 cx cy w h` normalised, clipped to the image."""
    lines = []
    for x1, y1, x2, y2 in boxes:
        x1, x2 = max(0.0, x1), min(float(width), x2)
        y1, y2 = max(0.0, y1), min(float(height), y2)
        if x2 <= x1 or y2 <= y1:
            raise ConfigError(f"box {(x1, y1, x2, y2)} lies outside the {width}x{height} image")
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        lines.append(f"0 {cx:.6f} {cy:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")
    return lines


def write_entry(entry: Entry, git_dir: Path, out: Path) -> None:
    """Decode the file, write it as a JPEG/PNG under images/SPLIT and its label under labels/SPLIT."""
    data = git_show(git_dir, entry)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ConfigError(f"{entry.repo}@{entry.commit}:{entry.path} does not decode as an image",
                          fix=f"drop line {entry.line} of the manifest, or point it at an image file")
    height, width = image.shape[:2]
    try:
        lines = yolo_lines(entry.boxes, width, height)
    except ConfigError as e:
        raise ConfigError(f"{e} (line {entry.line}, {entry.path})", fix="redraw the box on the original image") from e
    entry.name = output_name(entry)
    suffix = Path(entry.path).suffix.lower()
    if suffix in IMAGE_SUFFIXES:  # the original bytes, unchanged
        entry.image = out / "images" / entry.split / f"{entry.name}{suffix}"
        entry.image.write_bytes(data)
    else:
        entry.image = out / "images" / entry.split / f"{entry.name}.png"
        cv2.imwrite(str(entry.image), image)
    label = out / "labels" / entry.split / f"{entry.name}.txt"
    label.write_text("".join(f"{line}\n" for line in lines))
    entry.hash = phash(entry.image)


def shared_hashes(folder: Path | None) -> np.ndarray:
    """Hashes of every image under the shared datasets folder (a few thousand: a few seconds)."""
    if folder is None or not folder.is_dir():
        return as_array([])
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return as_array([h for h in map(phash, files) if h is not None])


def remove(entry: Entry, out: Path) -> None:
    if entry.image is not None:
        entry.image.unlink(missing_ok=True)
        (out / "labels" / entry.split / f"{entry.name}.txt").unlink(missing_ok=True)


def dedupe(entries: list[Entry], shared: np.ndarray, distance: int, out: Path) -> list[Entry]:
    """Leave out copies of shared photos, then near-copies across splits (keep test, then val, then train)."""
    if distance < 0:
        return entries
    kept: list[Entry] = []
    dropped = Counter()
    for entry in sorted(entries, key=lambda e: (PRIORITY[e.split], e.line)):
        h = as_array([entry.hash or 0])
        if shared.size and hamming(h, shared).min() <= distance:
            dropped["a copy of a ../shared photo"] += 1
            remove(entry, out)
            continue
        others = [k for k in kept if k.split != entry.split]
        if others and hamming(h, as_array([k.hash or 0 for k in others])).min() <= distance:
            dropped[f"{entry.split}: a copy of a photo in another split"] += 1
            remove(entry, out)
            continue
        kept.append(entry)
    for why, n in sorted(dropped.items()):
        print(f"left out {n} ({why}, phash <= {distance} bits)")
    return sorted(kept, key=lambda e: e.line)


def print_counts(entries: list[Entry]) -> None:
    counts = Counter((e.split, e.camera, bool(e.boxes)) for e in entries)
    boxes = Counter(e.split for e in entries for _ in e.boxes)
    print(f"{'split':<7}{'camera':<9}{'positive':>9}{'negative':>9}{'boxes':>7}")
    for split in SPLITS:
        for camera in CAMERAS:
            pos, neg = counts[split, camera, True], counts[split, camera, False]
            if pos or neg:
                print(f"{split:<7}{camera:<9}{pos:>9}{neg:>9}")
        pos = sum(counts[split, c, True] for c in CAMERAS)
        neg = sum(counts[split, c, False] for c in CAMERAS)
        print(f"{split:<7}{'all':<9}{pos:>9}{neg:>9}{boxes[split]:>7}")
    print(f"{'all':<16}{sum(bool(e.boxes) for e in entries):>9}{sum(not e.boxes for e in entries):>9}"
          f"{sum(boxes.values()):>7}")


def write_index(entries: list[Entry], out: Path) -> None:
    """data.yaml, sources.csv (file -> source, camera, vending yes/no), and per split a labels-SPLIT.csv
    that `streetwatch eval images/SPLIT --labels labels-SPLIT.csv` reads for image-level, per-camera rates."""
    (out / "data.yaml").write_text(yaml.safe_dump({
        "path": ".", "train": "images/train", "val": "images/val", "test": "images/test",
        "names": {0: "vending"}}, sort_keys=False))
    with (out / "sources.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["split", "file", "camera", "vending", "boxes", "repo", "commit", "path", "license"])
        for e in entries:
            writer.writerow([e.split, e.image.name if e.image else "", e.camera, "yes" if e.boxes else "no",
                             len(e.boxes), e.repo, e.commit, e.path, e.license])
    for split in SPLITS:
        with (out / f"labels-{split}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "vending", "camera"])
            for e in entries:
                if e.split == split and e.image is not None:
                    writer.writerow([e.image.name, "yes" if e.boxes else "no", e.camera])


def build(args: argparse.Namespace) -> list[Entry]:
    entries = read_manifest(args.manifest)
    if not entries:
        raise ConfigError("the manifest has no rows", path=args.manifest, fix="add one row per image")
    git_dirs = {repo: mirror_dir(args.mirrors, repo) for repo in sorted({e.repo for e in entries})}
    for sub in ("images", "labels"):
        shutil.rmtree(args.out / sub, ignore_errors=True)
        for split in SPLITS:
            (args.out / sub / split).mkdir(parents=True)
    for entry in entries:
        write_entry(entry, git_dirs[entry.repo], args.out)
    entries = dedupe(entries, shared_hashes(args.shared), args.dup_distance, args.out)
    write_index(entries, args.out)
    print_counts(entries)
    print(f"wrote {args.out / 'data.yaml'} ({len(entries)} images from {len(git_dirs)} repositories)")
    return entries


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, default=REPO / "data" / "sources" / "vending.csv")
    p.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"),
                   help="folder of fetched repositories, OWNER+NAME/ each (/work/.mirror)")
    p.add_argument("--out", type=Path, default=REPO / "data" / "vending", help="output folder (data/vending)")
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets",
                   help="leave out copies of photos in these datasets (../shared/datasets)")
    p.add_argument("--no-shared", dest="shared", action="store_const", const=None,
                   help="do not compare with the shared datasets")
    p.add_argument("--dup-distance", type=int, default=6,
                   help="phash bits within which two photos are copies (6; -1: keep all)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return exit_code_of(lambda: build(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
