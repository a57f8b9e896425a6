"""Fine-tune a COCO YOLO on a dataset from build_dataset.py and write the model card for it.

One model sees every class streetwatch needs (garbage, bikes, and the COCO inputs of the vending rule),
so the default configuration runs ONE model per frame. The card records where the weights came from:
the base weights' hash, the training data hashes (build_dataset's manifest) and the validation metrics.

`--head-only` freezes every layer but the detection head (batch-norm statistics included), so the COCO
features that find street bikes and people stay exactly those of the base, the classes the base knows
start from its own head rows, and what ships is the head alone (a few MB, next to the card) on top of
the shared base weights. That is how the default card fine-tunes YOLOv8s, whose 22 MB could not be
committed, on a CPU (a head that learns only new classes, e.g. a dataset built with `--classes
garbage,garbage_bin,overflow`, is merged with the base classes the card lists: bikes, people, stall objects):

    python scripts/train.py --data data/streetwatch-v3/data.yaml --head-only --imgsz 512 --card-imgsz 640 \
        --epochs 12          # 96 min on 2 cores; a checkpoint per epoch: add --resume after an interruption
    python scripts/train.py --data data/streetwatch-v3/data.yaml --epochs 80 --imgsz 640 --device 0   # a GPU, full

`--branch-from N` goes deeper on the same terms: layers N and on (N=10: YOLOv8s's whole neck and a head) train
for the dataset's classes on the frozen backbone, and ship as a branch beside the base's own neck and head,
which keep giving the COCO classes exactly as before (the backbone runs once for both):

    python scripts/train.py --data data/streetwatch-v5/data.yaml --branch-from 10 --init-head \
        detector/cards/streetwatch-v4.head.pt --imgsz 640 --epochs 16 --card detector/cards/streetwatch-v5.yaml

Writes detector/cards/streetwatch-v3.yaml and either detector/cards/streetwatch-v3.head.pt (--head-only) or
detector/cards/streetwatch-v3.pt (the best epoch, optimizer stripped). `--resume` on a finished run only writes
the card.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.apps.evaluate import evaluate_dataset  # noqa: E402
from detector.errors import ConfigError, exit_code_of  # noqa: E402
from detector.learn.samples import dataset_names  # noqa: E402
from detector.model.detector import use_cores  # noqa: E402
from detector.model.weights import load_card, sha256_of  # noqa: E402

KINDS = {"garbage": "garbage", "overflow": "garbage", "bicycle": "bike", "motorcycle": "bike", "vending": "vending"}
# GB/T 30428 codes other than the kind's default: an overflowing bin is exposed garbage, not a pile.
CATEGORIES = {"overflow": "01-02"}
# What a head that learnt only new classes (e.g. garbage, garbage_bin, overflow) takes from the base's own
# head: the bikes and the vending rule's inputs (classes the base lacks are skipped).
BASE_INPUTS = ["bicycle", "motorcycle", "person", "umbrella", "dining table", "bench",
               "banana", "apple", "orange", "broccoli", "carrot"]
# Starting thresholds: those of detector/cards/coco.yaml for COCO classes; tune garbage with `streetwatch eval`.
THRESHOLDS = {"garbage": 0.35, "bicycle": 0.30, "motorcycle": 0.40, "person": 0.40, "bench": 0.40, "vending": 0.40,
              "umbrella": 0.35, "dining table": 0.35}
VENDING_RULE = {"stall_classes": ["umbrella", "dining table", "bench"],
                "produce_classes": ["banana", "apple", "orange", "broccoli", "carrot"],
                "min_produce": 3, "person_class": "person", "max_gap": 0.5}


def hardware() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    import os

    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def card_for(classes: list[str], args: argparse.Namespace, weights: dict[str, str], metrics: dict) -> dict:
    """Card dict: kinds for garbage/bikes/vending, inputs for the rest, the composite rule if no vending class."""
    overrides = dict(pair.split("=", 1) for pair in args.threshold)
    specs: dict[str, dict] = {}
    for name in classes:
        spec: dict[str, object] = {}
        if name in KINDS:
            spec["kind"] = KINDS[name]
        if name in CATEGORIES:
            spec["category"] = CATEGORIES[name]
        spec["confidence"] = float(overrides.get(name, THRESHOLDS.get(name, 0.35 if name in KINDS else 0.30)))
        specs[name] = spec
    unknown = set(overrides) - set(classes)
    if unknown:
        raise ConfigError(f"--threshold for classes the model lacks: {sorted(unknown)}", fix=f"use {classes}")
    card: dict[str, object] = {
        "name": args.card.stem,
        "description": (
            f"{args.base.stem} fine-tuned from COCO on {', '.join(args.sources) or 'the built dataset'} "
            + ("(its detection head only, on the frozen base) " if args.head_only else "")
            + f"({metrics['training']['epochs']} epochs at imgsz {args.imgsz}, {metrics['training']['hardware']}). "
            "Reports garbage, bikes, and vending through "
            + ("its vending class." if "vending" in classes else "the COCO composite rule (see the coco card).")
            + " Validation metrics below; the trashbags val split shares source clips with its train split, "
            "so garbage scores on it are optimistic."
        ),
        **weights,
        "imgsz": args.card_imgsz or args.imgsz,
        "classes": specs,
    }
    if "vending" not in classes and all(c in classes for c in [*VENDING_RULE["stall_classes"], "person"]):
        card["vending"] = {**VENDING_RULE, "produce_classes": [c for c in VENDING_RULE["produce_classes"]
                                                              if c in classes]}
    card["metrics"] = metrics
    return card


def train(args: argparse.Namespace) -> dict:
    from ultralytics import YOLO

    data_yaml = args.data / "data.yaml" if args.data.is_dir() else args.data
    if not data_yaml.exists():
        raise ConfigError("dataset not found", path=data_yaml, fix="build it with scripts/build_dataset.py")
    manifest_path = data_yaml.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    names = dataset_names(data_yaml)
    classes = [names[k] for k in sorted(names)]
    if not args.base.exists():
        raise ConfigError("base weights not found", path=args.base, fix="pass --base with a COCO YOLO .pt")
    use_cores()  # ultralytics would train on one thread of a 2-core machine
    base_classes = set(YOLO(str(args.base)).names.values())
    run = args.project.resolve() / args.card.stem
    layers = len(YOLO(str(args.base)).model.model)
    if args.branch_from is not None and not 0 < args.branch_from < layers - 1:
        raise ConfigError(f"--branch-from {args.branch_from} is not a layer before the head",
                          fix=f"give 1..{layers - 2} (10: the whole neck of YOLOv8)")
    freeze = layers - 1 if args.head_only else args.branch_from or args.freeze
    best, seconds, epochs_done = snapshot(run) if args.snapshot else fit(args, data_yaml, run, freeze)
    args.card.parent.mkdir(parents=True, exist_ok=True)
    if args.head_only or args.branch_from:
        weights_out = args.card.with_suffix(".branch.pt" if args.branch_from else ".head.pt")
        save_head(best, args.base, weights_out, start=freeze)
        # Classes the base already knows keep the base's own head (trained on far more of them than we have);
        # the new ones come from the trained head. --all-from-head uses the trained head for every class.
        new = [] if args.all_from_head else [c for c in classes if c not in base_classes]
        weights = {"weights": args.base.name, "head": weights_out.name, **({"head_classes": new} if new else {})}
        if new:  # the card also lists what comes from the base's head
            classes = classes + [c for c in BASE_INPUTS if c in base_classes and c not in classes]
    else:
        weights_out = args.card.with_suffix(".pt")
        shutil.copyfile(best, weights_out)
        weights = {"weights": weights_out.name}
    metrics = {
        "training": {
            "base": args.base.name, "base_sha256": sha256_of(args.base), "epochs": epochs_done,
            "imgsz": args.imgsz, "batch": args.batch, "fraction": args.fraction, "seconds": round(seconds),
            "frozen_layers": freeze,
            "hardware": hardware(), "data_sha256": manifest.get("sha256", {}), "data_images": manifest.get("images"),
        },
    }
    card = card_for(classes, args, weights, metrics)
    write_card(card, args.card)
    if not args.no_val:
        report = evaluate_dataset(load_card(args.card), data_yaml, split="val")
        val = {"imgsz": report["imgsz"], "all": _round(report["all"]),
               "classes": {c: _round(m) for c, m in report["classes"].items()},
               "note": "trashbags val shares source clips with train: garbage scores are optimistic"}
        card["metrics"] = {**metrics, "val": val}
        write_card(card, args.card)
    print(f"trained {epochs_done} epochs in {seconds / 60:.1f} min on {metrics['training']['hardware']}")
    print(f"wrote {weights_out} ({weights_out.stat().st_size / 1e6:.1f} MB) and {args.card}")
    return card


def fit(args: argparse.Namespace, data_yaml: Path, run: Path, freeze: int) -> tuple[Path, float, int]:
    """Train, or with --resume go on from the run's last epoch; (weights to ship, seconds, epochs done).

    Ultralytics writes `last.pt` after every epoch, so an interrupted run loses at most one; the seconds
    of every session add up in `streetwatch-time.json` beside it, for the card's record.
    """
    from ultralytics import YOLO

    last, clock = run / "weights" / "last.pt", run / "streetwatch-time.json"
    spent = json.loads(clock.read_text())["seconds"] if args.resume and clock.exists() else 0.0
    if args.resume and not last.exists():
        raise ConfigError("nothing to resume: no last.pt", path=last, fix="train without --resume first")
    started = time.monotonic()
    if not (args.resume and finished(last)):
        if args.resume:
            model = YOLO(str(last))
        else:
            model = YOLO(str(args.base if args.init_head is None else start_from_head(args, data_yaml, run)))
        model.train(
            resume=args.resume, freeze=freeze, data=str(data_yaml), epochs=args.epochs, imgsz=args.imgsz,
            batch=args.batch, device=args.device, workers=args.workers, project=str(run.parent), name=run.name,
            exist_ok=True, seed=0, deterministic=True, fraction=args.fraction, time=args.hours,
            patience=args.epochs, close_mosaic=args.close_mosaic,
            hsv_v=0.6,  # darker and brighter frames: night shots and low sun are common in street reports
            plots=False, verbose=False, val=False,  # validated once at the end, by the card (below)
        )
    spent += time.monotonic() - started
    clock.parent.mkdir(parents=True, exist_ok=True)
    clock.write_text(json.dumps({"seconds": round(spent)}) + "\n")
    best = run / "weights" / "best.pt"
    best = best if best.exists() else last
    epochs = len((run / "results.csv").read_text().splitlines()) - 1 if (run / "results.csv").exists() else 1
    return best, spent, epochs


def snapshot(run: Path) -> tuple[Path, float, int]:
    """The run as it stands, training perhaps still going: its last epoch's checkpoint (ultralytics keeps the
    EMA weights there), the seconds it took so far and the epochs done, from its results.csv."""
    import csv

    last, results = run / "weights" / "last.pt", run / "results.csv"
    if not last.exists() or not results.exists():
        raise ConfigError("no finished epoch to take a card from", path=run, fix="let the run finish an epoch")
    with results.open(newline="", encoding="utf-8") as f:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]
    return last, float(rows[-1].get("time") or 0.0), len(rows)


def start_from_head(args: argparse.Namespace, data_yaml: Path, run: Path) -> Path:
    """The base with an earlier card's head grown to this dataset's classes (`--init-head`), as a checkpoint
    ultralytics trains from: every layer matches the model it builds, so all of it carries over."""
    import torch
    from ultralytics import YOLO

    from detector.model.heads import grown_head
    from detector.model.safeload import load_checkpoint

    saved = load_checkpoint(args.init_head)
    if not isinstance(saved, dict) or "head" not in saved or saved.get("base_sha256") != sha256_of(args.base):
        raise ConfigError("not a head trained on this --base", path=args.init_head,
                          fix="pass a .head.pt written by train.py --head-only on the same --base")
    names = dataset_names(data_yaml)
    classes = [names[k] for k in sorted(names)]
    net = YOLO(str(args.base)).model.float()
    net.model[-1] = grown_head(saved["head"], {int(k): str(v) for k, v in saved["names"].items()}, classes)
    net.names, net.nc = dict(enumerate(classes)), len(classes)
    net.yaml["nc"] = len(classes)
    out = run / "init-from-head.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": net.half(), "epoch": -1, "train_args": {}}, out)
    return out


def finished(last: Path) -> bool:
    """Ultralytics marks a completed run's checkpoint with epoch -1 (and strips its optimizer)."""
    from detector.model.safeload import load_checkpoint

    return int(load_checkpoint(last).get("epoch", 0)) == -1  # type: ignore[union-attr]


def save_head(best: Path, base: Path, out: Path, start: int) -> None:
    """Keep the trained layers alone (the head, or a branch of layers `start` on), after checking the frozen
    layers before them are still the base's."""
    import torch
    from ultralytics import YOLO

    from detector.model.safeload import load_checkpoint

    saved = load_checkpoint(best)
    trained = (saved.get("model") or saved["ema"]).float()  # type: ignore[union-attr]  # ema: an unfinished run
    base_net = YOLO(str(base)).model.float()
    mine, theirs = trained.state_dict(), base_net.state_dict()
    drift = max((mine[k].float() - v.float()).abs().max().item() for k, v in theirs.items()
                if int(k.split(".")[1]) < start and k in mine)
    if drift > 1e-3:  # fp16 storage rounds to the same values; more means the features moved under the head
        raise ConfigError(f"frozen layers drifted from the base by up to {drift:.2g}", path=best,
                          fix="train with --head-only from the same --base, or ship the full weights")
    tmp = out.with_suffix(".tmp")
    last = len(trained.model) - 1
    kept = ({"head": trained.model[-1].half()} if start == last else
            {"branch": torch.nn.ModuleList(trained.model[start:]).half(), "start": start})
    torch.save({**kept, "names": dict(trained.names), "base": base.name, "base_sha256": sha256_of(base)}, tmp)
    tmp.replace(out)


def _round(m: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}


def write_card(card: dict, path: Path) -> None:
    header = ("# Written by scripts/train.py; thresholds may be tuned by hand with `streetwatch eval`.\n"
              "# ONE model per frame: garbage, bikes and the vending rule's inputs come from these weights.\n")
    text = yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=110)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(header + text, encoding="utf-8")
    tmp.replace(path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="data.yaml (or its folder) from build_dataset.py")
    p.add_argument("--base", type=Path, default=REPO.parent / "shared" / "models" / "yolov8s.pt")
    p.add_argument("--init-head", type=Path, default=None,
                   help="start from this earlier head (e.g. streetwatch-v3.head.pt), grown to the "
                        "dataset's classes, instead of the base's COCO head")
    p.add_argument("--card", type=Path, default=REPO / "detector" / "cards" / "streetwatch-v3.yaml",
                   help="card to write; the weights go beside it as CARD.pt (CARD.head.pt with --head-only)")
    p.add_argument("--head-only", action="store_true",
                   help="train the detection head alone on the frozen base and ship just the head")
    p.add_argument("--branch-from", type=int, metavar="N",
                   help="train layers N and on (10: YOLOv8's neck and head) on the frozen backbone and ship them as "
                   "a branch beside the base's own neck and head")
    p.add_argument("--all-from-head", action="store_true",
                   help="with --head-only: every class from the trained head (default: only classes the base lacks)")
    p.add_argument("--freeze", type=int, default=0, help="freeze the first N layers (ignored with --head-only)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--close-mosaic", type=int, default=10,
                   help="the last N epochs train without mosaic (10, ultralytics' default)")
    p.add_argument("--hours", type=float, help="training time budget in hours (stops early; overrides epochs)")
    p.add_argument("--imgsz", type=int, default=416, help="training size (416 on CPU; 640 on a GPU)")
    p.add_argument("--card-imgsz", type=int, help="inference size written to the card (default: --imgsz)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--fraction", type=float, default=1.0, help="fraction of the training images to use")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threshold", action="append", default=[], metavar="CLASS=CONF", help="card threshold override")
    p.add_argument("--source", dest="sources", action="append", default=[], help="source names for the description")
    p.add_argument("--project", type=Path, default=REPO / "runs" / "train", help="ultralytics run folder")
    p.add_argument("--no-val", action="store_true", help="skip validation (smoke runs)")
    p.add_argument("--snapshot", action="store_true",
                   help="write the card from the run's last finished epoch without training (the run may go on)")
    p.add_argument("--resume", action="store_true",
                   help="go on from the last epoch of the run in --project/CARD (after an interruption); on a "
                   "finished run, only write the card")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return exit_code_of(lambda: train(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
