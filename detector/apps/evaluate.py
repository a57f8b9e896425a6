"""Measure a model card: box metrics on a YOLO dataset, or what the pipeline would raise on labelled photos.

Box mAP says how well a model localises its classes; the question a city asks is different: "on this
photo, would streetwatch raise a garbage (or bike) detection?". The image-level mode answers it with the
pipeline's own `Detector` (the card's thresholds, the composite vending rule, duplicate suppression),
zone-free and without dwell, so it is the per-frame ceiling of what events can find.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from detector.apps.step import InferenceStep
from detector.detections import Detections, Frame
from detector.errors import ConfigError, StreetwatchError
from detector.kinds import dataset_kinds, is_kind
from detector.kinds import kinds as all_kinds
from detector.learn.samples import dataset_names
from detector.model.compiled import for_runtime
from detector.model.weights import LoadedCard, load_card

log = logging.getLogger(__name__)
SWEEP = [round(0.05 * i, 2) for i in range(1, 20)]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def is_yolo_dataset(path: Path) -> bool:
    return path.suffix in {".yaml", ".yml"} or (path / "data.yaml").exists()


def with_imgsz(loaded: LoadedCard, imgsz: int | None) -> LoadedCard:
    if imgsz is None:
        return loaded
    card = loaded.card.model_copy(update={"imgsz": imgsz})
    return loaded.model_copy(update={"card": card})


# ---- mode 1: YOLO dataset -> per-class box metrics ----------------------------------------------------------

def split_root(data_yaml: Path, split: str) -> tuple[dict[str, Any], Path]:
    """The data.yaml and its absolute root, with `split` checked to name an existing folder."""
    data = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    root = Path(data.get("path") or ".")
    root = root if root.is_absolute() else (data_yaml.parent / root).resolve()
    if not isinstance(data.get(split), str) or not (root / data[split]).is_dir():
        raise ConfigError(f"dataset has no {split!r} split at {root / str(data.get(split, split))}", path=data_yaml,
                          fix="pass --split with a split the data.yaml lists (train, val, test)")
    return data, root


def absolute_data_yaml(data_yaml: Path, split: str, tmp: Path) -> Path:
    """A copy of data.yaml whose `path` is absolute: ultralytics reads `path: .` from the working directory."""
    data, root = split_root(data_yaml, split)
    out = tmp / "data.yaml"
    out.write_text(yaml.safe_dump({**data, "path": str(root)}, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


def evaluate_dataset(loaded: LoadedCard, data: Path, *, split: str = "val", batch: int = 8) -> dict[str, Any]:
    """Per-class precision, recall, mAP50 and mAP50-95 of the card's weights on a dataset split."""
    from detector.model.detector import load_yolo

    data_yaml = data / "data.yaml" if data.is_dir() else data
    names = dataset_names(data_yaml)
    model = load_yolo(loaded)
    mismatch = [f"{i}: {n} (model: {model.names.get(i)})" for i, n in names.items() if model.names.get(i) != n]
    if mismatch:
        raise ConfigError(
            f"dataset classes do not match the model's class indices: {', '.join(mismatch[:4])}",
            path=data_yaml,
            fix="evaluate with a card whose weights were trained on this class list (e.g. streetwatch-v3 on "
                "cn-street-garbage); the image-level numbers do not need it",
        )
    with tempfile.TemporaryDirectory() as tmp:
        data_abs = absolute_data_yaml(data_yaml, split, Path(tmp))
        metrics = model.val(data=str(data_abs), split=split, imgsz=loaded.card.imgsz, batch=batch, device="cpu",
                            plots=False, verbose=False, project=tmp, name="val")
    box = metrics.box
    per_class: dict[str, dict[str, float | int]] = {}
    for i, c in enumerate(box.ap_class_index):
        per_class[names[int(c)]] = {
            "instances": int(metrics.nt_per_class[int(c)]),
            "precision": float(box.p[i]), "recall": float(box.r[i]),
            "mAP50": float(box.ap50[i]), "mAP50-95": float(box.ap[i]),
        }
    return {
        "mode": "dataset", "card": loaded.card.name, "weights_sha256": loaded.model_sha256,
        "data": str(data_yaml), "split": split, "imgsz": loaded.card.imgsz,
        "all": {"precision": float(box.mp), "recall": float(box.mr), "mAP50": float(box.map50),
                "mAP50-95": float(box.map)},
        "classes": per_class,
    }


def parse_kind_map(pairs: list[str]) -> dict[str, str | None]:
    """`CLASS=KIND` (or `CLASS=none`) pairs on top of the registry's dataset classes of each kind (a class in
    neither, e.g. `garbage_bin`, makes an image "no": a plain bin is not dumping)."""
    mapping: dict[str, str | None] = {name: kind.value for name, kind in dataset_kinds().items()}
    kinds = {k.value for k in all_kinds()}
    for pair in pairs:
        name, _, kind = pair.partition("=")
        if not name.strip() or kind.strip() not in kinds | {"none"}:
            raise ConfigError(f"--kind-map {pair!r} is not CLASS=KIND", fix=f"KIND is one of {sorted(kinds)} or none")
        mapping[name.strip()] = None if kind.strip() == "none" else kind.strip()
    return mapping


def dataset_rows(data_yaml: Path, split: str, kind_map: dict[str, str | None]) -> tuple[Path, list[str],
                                                                                         list[dict[str, str]]]:
    """(image folder, kinds, rows) of a split: an image is "yes" for a kind when a box's class maps to it.

    Classes mapped to none (e.g. `garbage_bin`) and classes not in the map count as "no".
    """
    names = dataset_names(data_yaml)
    data, root = split_root(data_yaml, split)
    images = root / data[split]
    parts = list(images.parts)
    at = len(parts) - 1 - parts[::-1].index("images") if "images" in parts else None
    labels = Path(*parts[:at], "labels", *parts[at + 1:]) if at is not None else images
    kinds = sorted({k for n in names.values() if (k := kind_map.get(n))})
    if not kinds:
        raise ConfigError(f"no dataset class maps to a kind ({sorted(names.values())})", path=data_yaml,
                          fix="add --kind-map CLASS=KIND, e.g. --kind-map litter=garbage")
    rows = []
    for image in sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        label = labels / f"{image.stem}.txt"
        lines = label.read_text(encoding="utf-8").splitlines() if label.exists() else []
        present = {kind_map.get(names.get(int(float(ln.split()[0])), "")) for ln in lines if ln.split()}
        rows.append({"file": image.name, **{k: "yes" if k in present else "no" for k in kinds}})
    return images, kinds, rows


def dataset_table(report: dict[str, Any]) -> str:
    lines = [f"{'class':<14}{'inst':>6}{'P':>8}{'R':>8}{'mAP50':>8}{'mAP50-95':>10}"]
    for name, m in report["classes"].items():
        lines.append(f"{name:<14}{m['instances']:>6}{m['precision']:>8.3f}{m['recall']:>8.3f}"
                     f"{m['mAP50']:>8.3f}{m['mAP50-95']:>10.3f}")
    a = report["all"]
    lines.append(f"{'all':<14}{'':>6}{a['precision']:>8.3f}{a['recall']:>8.3f}{a['mAP50']:>8.3f}{a['mAP50-95']:>10.3f}")
    return "\n".join(lines)


# ---- mode 2: photos + image-level labels -> "would the pipeline raise this kind here?" ----------------------

CAMERAS = ("cctv", "phone", "dashcam", "web")
TIMES = ("day", "night")
GROUPS = {"camera": CAMERAS, "time": TIMES}  # optional columns whose values get every kind's numbers apart


def read_labels(csv_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """`file` plus one column per kind; values yes/no (anything else, e.g. skip, is left out); optional
    `camera` (cctv, phone, dashcam, web) and `time` (day, night) columns report every kind per value too."""
    if not csv_path.exists():
        raise ConfigError("label CSV not found", path=csv_path, fix="pass --labels FILE.csv (file,garbage,bike,...)")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        rows = [{(k or "").strip(): v for k, v in row.items() if isinstance(v, str)} for row in reader]
    if "file" not in columns:
        raise ConfigError("label CSV has no 'file' column", path=csv_path, fix="first row: file,garbage,bike")
    kinds = [c for c in columns if c not in ("file", *GROUPS)]
    unknown = [c for c in kinds if not is_kind(c)]
    if unknown or not kinds:
        raise ConfigError(f"label columns {unknown or '(none)'} are not kinds", path=csv_path,
                          fix=f"use columns named after kinds: {', '.join(k.value for k in all_kinds())}")
    clean = [{k: v.strip() if k == "file" else v.strip().lower() for k, v in row.items()} for row in rows]
    for column, values in GROUPS.items():
        odd = sorted({r.get(column, "") for r in clean} - {*values, ""})
        if odd:
            raise ConfigError(f"{column} values {odd} are not among {', '.join(values)}", path=csv_path,
                              fix=f"write one of {', '.join(values)} (or leave it empty) in the {column} column")
    return kinds, clean


def _scores(dets: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind, conf in zip(dets.kind, dets.confidence, strict=True):
        out[str(kind)] = max(out.get(str(kind), 0.0), float(conf))
    return out


def _class_scores(dets: Any) -> dict[str, float]:
    """The best confidence of each kind-reporting class, for tuning classes of one kind apart."""
    out: dict[str, float] = {}
    for name, conf in zip(dets.class_name, dets.confidence, strict=True):
        out[str(name)] = max(out.get(str(name), 0.0), float(conf))
    return out


def _why(dets: Any) -> dict[str, str]:
    """The class behind each raised kind's best box (for vending: which stall objects plus a person)."""
    best: dict[str, tuple[float, str]] = {}
    for kind, conf, name in zip(dets.kind, dets.confidence, dets.class_name, strict=True):
        if float(conf) > best.get(str(kind), (-1.0, ""))[0]:
            best[str(kind)] = (float(conf), str(name))
    return {k: v[1] for k, v in best.items()}


def _rates(truth: list[bool], raised: list[bool], n_no: int) -> dict[str, Any]:
    tp = sum(t and r for t, r in zip(truth, raised, strict=True))
    fp = sum(r and not t for t, r in zip(truth, raised, strict=True))
    fn = sum(t and not r for t, r in zip(truth, raised, strict=True))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "tn": n_no - fp, "precision": precision, "recall": recall, "f1": f1,
            "false_alarm_rate": fp / n_no if n_no else None}


def evaluate_images(loaded: LoadedCard, images: Path, labels: Path, *, batch: int = 4) -> dict[str, Any]:
    """Per kind: image-level P/R/F1/false alarms at the card's thresholds, and over a threshold sweep."""
    kinds, rows = read_labels(labels)
    return {**evaluate_rows(loaded, images, kinds, rows, batch=batch), "labels": str(labels)}


def evaluate_rows(loaded: LoadedCard, images: Path, kinds: list[str], rows: list[dict[str, str]], *,
                  batch: int = 4) -> dict[str, Any]:
    """The image-level measurement of `rows` (`file` + a yes/no per kind) of photos in `images`."""
    from detector.model.detector import Detector

    exact, loose = Detector(loaded), Detector(loaded.lowered(SWEEP[0]))
    card_kinds = {k.value for k in loaded.card.kinds()}
    skipped: list[str] = []
    notes: list[str] = []

    def both(frames: list[np.ndarray]) -> list[tuple[Detections, Detections]]:
        return list(zip(exact.detect(frames), loose.detect(frames), strict=True))

    step = InferenceStep(both, batch=batch)  # photos, not a video: no static-scene gate
    records: list[dict[str, Any]] = []
    for i, _, found in step.run(_photos(rows, images, skipped, notes)):
        at_card, low = found  # type: ignore[misc]
        records.append({"file": rows[i]["file"], **{g: rows[i].get(g, "") for g in GROUPS},
                        "labels": {k: rows[i].get(k, "") for k in kinds},
                        "raised": _scores(at_card), "raised_by": _why(at_card), "score": _scores(low),
                        "class_score": _class_scores(low)})
    result = {kind: _kind_rates(kind, records, kind in card_kinds) for kind in kinds}
    groups = {f"by_{g}": {value: {kind: _kind_rates(kind, [r for r in records if r[g] == value], kind in card_kinds)
                                  for kind in kinds} for value in sorted({r[g] for r in records if r[g]})}
              for g in GROUPS}
    return {"mode": "images", "card": loaded.card.name, "weights_sha256": loaded.model_sha256,
            "imgsz": loaded.card.imgsz, "images": str(images), "evaluated": len(records),
            "skipped": skipped, "notes": notes, "kinds": result, **groups, "per_image": records}


def _photos(rows: list[dict[str, str]], images: Path, skipped: list[str],
            notes: list[str]) -> Iterator[tuple[int, Frame]]:
    """The labelled photos that can be read, as frames keyed by their row; the others into `skipped`."""
    by_lower = {p.name.lower(): p for p in images.iterdir()}  # labels written on case-insensitive systems
    now = datetime.now(UTC)
    for i, row in enumerate(rows):
        path = images / row.get("file", "")
        if row.get("file") and not path.is_file() and row["file"].lower() in by_lower:
            notes.append(f"{row['file']}: matched {by_lower[row['file'].lower()].name} ignoring case")
            path = by_lower[row["file"].lower()]
        image = cv2.imread(str(path)) if row.get("file") and path.is_file() else None
        if image is None:
            skipped.append(f"{path}: missing or unreadable")
            continue
        yield i, Frame(image=image, pts_s=0.0, time=now, source_uri=str(path), index=i)


def _kind_rates(kind: str, records: list[dict[str, Any]], detectable: bool) -> dict[str, Any]:
    labelled = [r for r in records if r["labels"][kind] in ("yes", "no")]
    truth = [r["labels"][kind] == "yes" for r in labelled]
    n_no = truth.count(False)
    at_card = _rates(truth, [kind in r["raised"] for r in labelled], n_no)
    sweep = []
    for t in SWEEP:
        rates = _rates(truth, [r["score"].get(kind, 0.0) >= t for r in labelled], n_no)
        sweep.append({"threshold": t, **{k: rates[k] for k in ("precision", "recall", "f1", "false_alarm_rate")}})
    return {"detectable": detectable, "yes": truth.count(True), "no": n_no,
            "left_out": len(records) - len(labelled), **at_card, "sweep": sweep}


def _fmt(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def images_table(report: dict[str, Any]) -> str:
    lines = [f"at the card's thresholds ({report['card']}, imgsz {report['imgsz']}, {report['evaluated']} images):",
             f"{'kind':<9}{'yes':>5}{'no':>5}{'TP':>5}{'FP':>5}{'FN':>5}{'precision':>11}{'recall':>8}{'F1':>7}"
             f"{'false-alarm':>13}"]
    for kind, m in report["kinds"].items():
        note = "" if m["detectable"] else "   (the card has no class for this kind)"
        lines.append(f"{kind:<9}{m['yes']:>5}{m['no']:>5}{m['tp']:>5}{m['fp']:>5}{m['fn']:>5}"
                     f"{_fmt(m['precision']):>11}{_fmt(m['recall']):>8}{m['f1']:>7.3f}"
                     f"{_fmt(m['false_alarm_rate']):>13}{note}")
    for group in GROUPS:
        for value, kinds in report.get(f"by_{group}", {}).items():
            cells = [f"{kind} {_fmt(m['recall'])} / {_fmt(m['false_alarm_rate'])} ({m['yes']} yes, {m['no']} no)"
                     for kind, m in kinds.items()]
            lines.append(f"{group} {value:<8} recall / false-alarm: " + "; ".join(cells))
    detectable = [k for k, m in report["kinds"].items() if m["detectable"]]
    if detectable:
        lines.append("threshold sweep (all classes of a kind at the threshold), recall / false-alarm:")
        lines.append(f"{'thr':<6}" + "".join(f"{k:>18}" for k in detectable))
        for i, t in enumerate(SWEEP):
            cells = []
            for k in detectable:
                s = report["kinds"][k]["sweep"][i]
                cells.append(f"{_fmt(s['recall'])} / {_fmt(s['false_alarm_rate'])}")
            lines.append(f"{t:<6.2f}" + "".join(f"{c:>18}" for c in cells))
    for note in report.get("notes", []):
        lines.append(f"note: {note}")
    for problem in report["skipped"]:
        lines.append(f"skipped: {problem}")
    return "\n".join(lines)


def evaluate_both(loaded: LoadedCard, data: Path, split: str, kind_map: dict[str, str | None]) -> tuple[dict, str]:
    """A YOLO dataset: box metrics where the model has the dataset's classes, and always the image-level
    "would it raise this kind" numbers its boxes imply, so it is measured like the labelled photos."""
    data_yaml = data / "data.yaml" if data.is_dir() else data
    images, kinds, rows = dataset_rows(data_yaml, split, kind_map)
    try:
        report = evaluate_dataset(loaded, data_yaml, split=split)
        table = dataset_table(report)
    except ConfigError as e:  # other class indices: the image level still means something
        report = {"mode": "dataset", "card": loaded.card.name, "weights_sha256": loaded.model_sha256,
                  "data": str(data_yaml), "split": split, "imgsz": loaded.card.imgsz, "box_metrics_skipped": str(e)}
        table = f"box metrics skipped: {e}"
    image_level = evaluate_rows(loaded, images, kinds, rows)
    report["image_level"] = image_level
    mapped = ", ".join(f"{n}->{kind_map.get(n) or 'no'}" for n in dataset_names(data_yaml).values())
    return report, f"{table}\nimage level, from the boxes ({mapped}):\n{images_table(image_level)}"


def run_cli(args: argparse.Namespace) -> int:
    """`streetwatch eval`: box metrics on a YOLO dataset, or image-level "would it raise this kind" on
    labelled photos; exit 1 when some labelled images were missing."""
    loaded = with_imgsz(load_card(args.model, weights=args.weights), args.imgsz)
    loaded.weights_path  # noqa: B018 - a missing file is an error before any work
    loaded = for_runtime(loaded, args.runtime)
    if is_yolo_dataset(args.data):
        report, table = evaluate_both(loaded, args.data, args.split, parse_kind_map(args.kind_map))
    else:
        images = args.data / "images" if (args.data / "images").is_dir() else args.data
        if not images.is_dir():
            raise StreetwatchError("not a folder of images nor a YOLO dataset", path=args.data,
                                   fix="pass a dataset folder with data.yaml, or an image folder with labels.csv")
        report = evaluate_images(loaded, images, args.labels or args.data / "labels.csv")
        table = images_table(report)
    out = args.out or Path("out") / "eval" / f"{loaded.card.name}-{args.data.resolve().name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{table}\nreport: {out}")
    return 1 if report.get("skipped") or report.get("image_level", {}).get("skipped") else 0
