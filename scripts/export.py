"""Export a card's weights for speed (ONNX; OpenVINO FP32 and INT8) and write a card for each export.

INT8 is calibrated on training images of the dataset the model was trained on (never on the evaluation
photos). `--val` measures every export on the dataset's val split, so the accuracy INT8 costs is on record.

    python scripts/export.py --card detector/cards/streetwatch-v3.yaml --data data/streetwatch-v3/data.yaml --val
    python -m detector.cli eval ../shared/datasets/street-garbage-dev --model exports/streetwatch-v3-openvino-int8.yaml

Exports and their cards go to --out (exports/, not committed); a card points at its export by a path
relative to the card, so the folder can be moved as a whole. TensorRT (`--formats engine`) needs a GPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.apps.evaluate import evaluate_dataset  # noqa: E402
from detector.errors import ConfigError, exit_code_of  # noqa: E402
from detector.model.detector import load_yolo  # noqa: E402
from detector.model.weights import load_card, sha256_of  # noqa: E402

FORMATS = {  # name -> ultralytics export arguments
    "onnx": {"format": "onnx", "simplify": False, "dynamic": True},
    "openvino": {"format": "openvino", "half": False, "dynamic": True},
    "openvino-int8": {"format": "openvino", "int8": True, "dynamic": True},
    "engine": {"format": "engine", "half": True},
}


def export(args: argparse.Namespace) -> dict[str, Path]:
    from ultralytics import YOLO

    loaded = load_card(args.card)
    imgsz = args.imgsz or loaded.card.imgsz
    args.out.mkdir(parents=True, exist_ok=True)
    stem = loaded.card.name
    unknown = [f for f in args.formats if f not in FORMATS]
    if unknown:
        raise ConfigError(f"unknown formats {unknown}", fix=f"choose from {', '.join(FORMATS)}")
    if "openvino-int8" in args.formats and not args.data:
        raise ConfigError("INT8 needs calibration images", fix="pass --data DATASET/data.yaml (its train split)")
    merged = load_yolo(loaded) if loaded.head_path is not None else None  # base + trained head, as one model
    cards: dict[str, Path] = {}
    for fmt in args.formats:
        work = args.out / f"{stem}-{fmt}"  # each export in its own folder: ultralytics names outputs after the .pt
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        source = work / f"{stem}.pt"
        if merged is not None:
            merged.save(source)
        else:
            shutil.copyfile(loaded.weights_path, source)
        options = dict(FORMATS[fmt])
        if options.get("int8"):
            options.update(data=str(args.data), split="train", fraction=args.calib_images)
        started = time.monotonic()
        produced = Path(YOLO(str(source)).export(imgsz=imgsz, device=args.device, **options))
        source.unlink()
        card = loaded.card.model_dump(mode="json", exclude_defaults=False)
        card.update(name=f"{stem}-{fmt}", weights=str(produced.relative_to(args.out)), imgsz=imgsz,
                    head=None, head_classes=[], more_heads=[])  # the export is base and head as one network
        made_from = " + ".join(p.name for p in (loaded.weights_path, loaded.head_path, *loaded.more_head_paths)
                               if p is not None)
        card["description"] = f"{fmt} export of {loaded.card.name} ({made_from}); " + card["description"]
        card["metrics"] = {"export": {"format": fmt, "from_sha256": loaded.model_sha256,
                                      "seconds": round(time.monotonic() - started),
                                      **({"calibration": f"{args.calib_images} train images of {args.data}"}
                                         if options.get("int8") else {})},
                           "source_val": loaded.card.metrics.get("val", {})}  # the .pt's; see --val for this export
        path = args.out / f"{stem}-{fmt}.yaml"
        path.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8")
        cards[fmt] = path
        print(f"{fmt}: {produced} (card {path}, sha256 {sha256_of(produced)[:12]})")
    if args.val:
        compare(args, loaded, cards)
    return cards


def compare(args: argparse.Namespace, loaded: object, cards: dict[str, Path]) -> None:
    """mAP of the source weights and every export on the same val split, side by side."""
    data = args.data or Path(str(loaded.card.metrics.get("training", {}).get("data", "")))  # type: ignore[attr-defined]
    if not data or not Path(data).exists():
        raise ConfigError("--val needs the dataset", fix="pass --data DATASET/data.yaml")
    rows = {"pt": evaluate_dataset(loaded, data)}  # type: ignore[arg-type]
    for fmt, card in cards.items():
        rows[fmt] = evaluate_dataset(load_card(card), data, batch=1)
    names = list(rows["pt"]["classes"])
    print(f"{'weights':<15}{'mAP50':>8}{'mAP50-95':>10}" + "".join(f"{c[:10] + ' 50':>14}" for c in names))
    for fmt, report in rows.items():
        per_class = "".join(f"{report['classes'].get(c, {}).get('mAP50', 0.0):>14.3f}" for c in names)
        print(f"{fmt:<15}{report['all']['mAP50']:>8.3f}{report['all']['mAP50-95']:>10.3f}{per_class}")
    out = args.out / f"{loaded.card.name}-compare.json"  # type: ignore[attr-defined]
    out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"report: {out}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--card", type=Path, default=REPO / "detector" / "cards" / "streetwatch-v4.yaml")
    p.add_argument("--formats", nargs="+", default=["onnx", "openvino", "openvino-int8"], help=", ".join(FORMATS))
    p.add_argument("--data", type=Path, help="data.yaml of the training set: INT8 calibration (train split), --val")
    p.add_argument("--calib-images", type=int, default=300, help="training images for INT8 calibration (300)")
    p.add_argument("--imgsz", type=int, help="export size (default: the card's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=REPO / "exports")
    p.add_argument("--val", action="store_true", help="measure every export on the val split of --data")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return exit_code_of(lambda: export(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
