"""`streetwatch review export`: operators' verdicts as a YOLO dataset for the next training.

Confirmed events give their clean frame with the event's box under its kind; rejected events give their
clean frame with an empty label file: a hard negative (the model saw that kind there, and was wrong).
`scripts/build_dataset.py --source DATASET` takes it (class `bike` maps to `bicycle`; COCO classes are
pseudo-labelled there). Splits are fixed by event id (one in five to val), so a re-export keeps them.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import yaml

from detector.errors import ConfigError
from detector.output.reviews import Reviews
from detector.output.store import open_store

CLASSES = ["garbage", "bike", "vending"]


def export(events: list[dict[str, Any]], events_dir: Path, out: Path) -> Counter:
    """Write the dataset; (kind, verdict, split) -> images, and ("skipped", reason, "") for the rest."""
    counts: Counter = Counter()
    for event in events:
        clean = event.get("clean_frame")
        source = (events_dir / clean) if clean else None
        image = cv2.imread(str(source)) if source and source.is_file() else None
        if image is None or event["kind"] not in CLASSES:
            counts[("skipped", "no clean frame" if image is None else "unknown kind", "")] += 1
            continue
        split = "val" if int(hashlib.sha1(event["id"].encode()).hexdigest(), 16) % 5 == 0 else "train"
        name = hashlib.sha1(event["id"].encode()).hexdigest()[:16]
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / "images" / split / f"{name}.jpg")  # type: ignore[arg-type]
        verdict = event["review"]["verdict"]
        line = _label(event, image.shape[1], image.shape[0]) if verdict == "confirmed" else ""
        (out / "labels" / split / f"{name}.txt").write_text(line)
        counts[(event["kind"], verdict, split)] += 1
    (out / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images/train", "val": "images/val",
                                                   "names": dict(enumerate(CLASSES))}, sort_keys=False))
    return counts


def _label(event: dict[str, Any], width: int, height: int) -> str:
    x1, y1, x2, y2 = (float(v) for v in event["bbox"])
    x1, x2 = max(0.0, min(x1, width)), max(0.0, min(x2, width))
    y1, y2 = max(0.0, min(y1, height)), max(0.0, min(y2, height))
    cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
    return f"{CLASSES.index(event['kind'])} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"


def run_cli(args: argparse.Namespace) -> int:
    if args.events is None and args.db is None:
        raise ConfigError("review export needs --events DIR or --db URL", fix="pass the folder the desk served")
    if args.out.exists() and any(args.out.iterdir()):
        raise ConfigError("the output folder is not empty", path=args.out, fix="give a new or empty folder")
    store = open_store(args.db or args.events / "events.sqlite")
    try:
        events = Reviews(store).reviewed(args.since)
    finally:
        store.close()
    counts = export(events, args.events or Path.cwd(), args.out)
    print(f"{'kind':<10}{'verdict':<12}{'split':<8}{'images':>7}")
    for (kind, verdict, split), n in sorted(counts.items()):
        print(f"{kind:<10}{verdict:<12}{split:<8}{n:>7}")
    print(f"{'total':<30}{sum(n for k, n in counts.items() if k[0] != 'skipped'):>7}  -> {args.out}")
    return 0
