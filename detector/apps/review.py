"""`streetwatch review export`: operators' verdicts as a YOLO dataset for the next training.

Confirmed events give their clean frame with the event's box under its kind; events rejected as "not a
violation" give their clean frame without that box: a hard negative (the model saw that kind there, and
was wrong). Rejections for "allowed here" or "duplicate" are left out: the object was real.
Boxes operators drew (`detector.output.marks`) go along: a confirmed event whose box was set right is
labelled with that box, and each picture with violations the model missed gives an image with those boxes.
`scripts/build_dataset.py --source DATASET` takes it (class `bike` maps to `bicycle`; COCO classes are
pseudo-labelled there). Splits are fixed by event id, or by picture for drawn boxes (one in five to val), so
a re-export keeps them.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import yaml

from detector.errors import ConfigError
from detector.kinds import export_classes
from detector.output.marks import MarkRows
from detector.output.reviews import Reviews
from detector.output.snapshots import stored_file
from detector.output.store import open_store

NEGATIVE_REASONS = {"not a violation"}  # the model was wrong about the object; "allowed here", "duplicate":
# the object is real (it just should not be reported), so its frame is no lesson; "other": unknown.


def export(events: list[dict[str, Any]], events_dir: Path, out: Path, *, missed: Sequence[dict[str, Any]] = (),
           corrections: dict[str, dict[str, Any]] | None = None) -> Counter:
    """Write the dataset; (kind, verdict, split) -> images (verdict `drawn` for missed violations), and
    ("skipped", reason, "") for the rest. Events seen in one frame (same source and time) share one image with
    every confirmed box of it; `corrections` (event id -> mark) replace confirmed events' boxes."""
    counts: Counter = Counter()
    out.mkdir(parents=True, exist_ok=True)
    classes = [k.value for k in export_classes()]
    frames: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for event in events:
        review = event["review"]
        fix = (corrections or {}).get(event["id"])
        where = (event["source"]["uri"], float(event["source"]["pts_s"]))
        if fix is not None and review["verdict"] == "confirmed":  # its box on the frame it was drawn on, alone
            event, where = {**event, "kind": fix["kind"], "bbox": fix["bbox"], "clean_frame": fix["image"]}, (
                fix["image"], 0.0)
        if review["verdict"] == "rejected" and review.get("reason") not in NEGATIVE_REASONS:
            counts[("skipped", f"rejected as {review.get('reason')}", "")] += 1
        elif event["kind"] not in classes:
            counts[("skipped", "unknown kind", "")] += 1
        else:
            frames.setdefault(where, []).append(event)
    manifest: list[dict[str, str]] = []
    for group in frames.values():
        manifest += _write_frame(group, events_dir, out, counts, classes)
    pictures: dict[str, list[dict[str, Any]]] = {}
    for mark in missed:
        pictures.setdefault(mark["image"], []).append(mark)
    for image, marks in pictures.items():
        manifest += _write_picture(image, marks, events_dir, out, counts, classes)
    _write_manifest(out / "manifest.csv", manifest)
    (out / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images/train", "val": "images/val",
                                                   "names": dict(enumerate(classes))}, sort_keys=False))
    return counts


def _write_frame(group: list[dict[str, Any]], events_dir: Path, out: Path, counts: Counter,
                 classes: list[str]) -> list[dict[str, str]]:
    """One image: the clean frame, labelled with the group's confirmed boxes (none: a hard negative); its
    manifest row."""
    source = next((p for p in (stored_file(events_dir, e.get("clean_frame")) for e in group) if p), None)
    image = cv2.imread(str(source)) if source else None
    if image is None:
        counts[("skipped", "no clean frame", "")] += len(group)
        return []
    first = min(e["id"] for e in group)
    split = "val" if int(hashlib.sha1(first.encode()).hexdigest(), 16) % 5 == 0 else "train"
    name = hashlib.sha1(first.encode()).hexdigest()[:16]
    (out / "images" / split).mkdir(parents=True, exist_ok=True)
    (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "images" / split / f"{name}.jpg")  # type: ignore[arg-type]
    confirmed = [e for e in group if e["review"]["verdict"] == "confirmed"]
    (out / "labels" / split / f"{name}.txt").write_text(
        "".join(_label(e, image.shape[1], image.shape[0], classes) for e in confirmed))
    for e in group:
        counts[(e["kind"], e["review"]["verdict"], split)] += 1
    verdicts = {v: " ".join(sorted({e["kind"] for e in group if e["review"]["verdict"] == v}))
                for v in ("confirmed", "rejected")}
    return [{"image": f"{name}.jpg", "split": split, "camera": group[0]["camera_id"],
             "day": group[0]["first_seen"][:10], **verdicts, "drawn": ""}]


def _write_picture(relative: str, marks: list[dict[str, Any]], events_dir: Path, out: Path, counts: Counter,
                   classes: list[str]) -> list[dict[str, str]]:
    """A picture with the violations operators drew on it (the model missed them); its manifest row."""
    source = stored_file(events_dir, relative)
    if source is None:
        counts[("skipped", "no picture of a drawn box", "")] += len(marks)
        return []
    digest = hashlib.sha1(relative.encode()).hexdigest()
    split = "val" if int(digest, 16) % 5 == 0 else "train"
    (out / "images" / split).mkdir(parents=True, exist_ok=True)
    (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "images" / split / f"m{digest[:15]}.jpg")
    (out / "labels" / split / f"m{digest[:15]}.txt").write_text(
        "".join(_label(m, int(m["width"]), int(m["height"]), classes) for m in marks))
    for m in marks:
        counts[(m["kind"], "drawn", split)] += 1
    return [{"image": f"m{digest[:15]}.jpg", "split": split, "camera": marks[0]["camera_id"],
             "day": marks[0]["taken_at"][:10], "confirmed": "", "rejected": "",
             "drawn": " ".join(sorted({m["kind"] for m in marks}))}]


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    """Per image: its split, camera, day and the kinds confirmed, rejected and drawn on it (`learn` splits the
    reviews by camera and day with it)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "split", "camera", "day", "confirmed", "rejected", "drawn"])
        writer.writeheader()
        writer.writerows(rows)


def _label(event: dict[str, Any], width: int, height: int, classes: list[str]) -> str:
    x1, y1, x2, y2 = (float(v) for v in event["bbox"])
    x1, x2 = max(0.0, min(x1, width)), max(0.0, min(x2, width))
    y1, y2 = max(0.0, min(y1, height)), max(0.0, min(y2, height))
    cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
    return f"{classes.index(event['kind'])} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"


def run_cli(args: argparse.Namespace) -> int:
    if args.events is None and args.db is None:
        raise ConfigError("review export needs --events DIR or --db URL", fix="pass the folder the desk served")
    if args.out.exists() and any(args.out.iterdir()):
        raise ConfigError("the output folder is not empty", path=args.out, fix="give a new or empty folder")
    store = open_store(args.db or args.events / "events.sqlite")
    folder = args.events or Path.cwd()
    try:
        events = Reviews(store).reviewed(args.since)
        marks = MarkRows(store, folder)
        missed, corrections = marks.listing(missed_only=True, since=args.since), marks.corrections()
    finally:
        store.close()
    counts = export(events, folder, args.out, missed=missed, corrections=corrections)
    print(f"{'kind':<10}{'verdict':<12}{'split':<8}{'images':>7}")
    for (kind, verdict, split), n in sorted(counts.items()):
        print(f"{kind:<10}{verdict:<12}{split:<8}{n:>7}")
    print(f"{'total':<30}{sum(n for k, n in counts.items() if k[0] != 'skipped'):>7}  -> {args.out}")
    return 0
