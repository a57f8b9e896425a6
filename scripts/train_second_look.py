"""Train a card's second look (detector/model/second_look.py) on its own candidates, choose its thresholds on
validation photos, and write a card that uses it.

Why on its own candidates: the second look must learn what *this* detector mistakes for garbage. So the
card runs with its garbage classes lowered to `--floor` over the training split of a built dataset; every box
it gives is cropped and labelled by the dataset's boxes (a violation where it overlaps a garbage or overflow
box, a bin where it overlaps only a plain bin, background where it overlaps nothing labelled; unclear overlaps
are left out), and the labelled boxes themselves are added. Photos that show no garbage class (bikes, video
frames, fixed-camera frames, bins-only photos) give hard negatives wherever the card fires on them. Sources
whose garbage is not labelled (`--skip-source vending`) are left out. The crops' pooled backbone features are
computed once; the classifier trains on them in seconds.

Thresholds (the card's garbage classes and the look's) are chosen together on `--val` sets (YOLO datasets:
their val split, or image folders with a labels CSV) as the best worst-case recall with false alarms at most
`--max-false-alarm` on every set; the split nobody tuned on is judged afterwards with `streetwatch eval`.

    python scripts/train_second_look.py --card detector/cards/streetwatch-v5.yaml --data data/streetwatch-v5 \\
        --skip-source vending --val data/streetwatch-v5 --val ../shared/datasets/street-garbage-dev/images \\
        --out-card detector/cards/streetwatch-v5.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.errors import exit_code_of  # noqa: E402
from detector.learn.look import Crops, candidates, choose, fit_head, scored, stack, training_set  # noqa: E402
from detector.learn.samples import GARBAGE_CLASSES, photo_sets, spread, yolo_photos  # noqa: E402


def run(args: argparse.Namespace) -> None:
    import torch

    from detector.model.compiled import for_runtime
    from detector.model.detector import Detector, use_cores
    from detector.model.second_look import SecondLook
    from detector.model.weights import load_card, sha256_of

    use_cores()
    began = time.monotonic()
    loaded = load_card(args.card)
    mining = Detector(for_runtime(loaded.lowered(args.floor)))  # the runtime the card will run on
    train = yolo_photos(args.data, "train", tuple(args.skip_source))
    train = spread(train, args.limit)  # (a spread sample, every k-th photo, for a quick look)
    print(f"mining the card's candidates on {len(train)} training photos (garbage classes at {args.floor})")
    crops = Crops(loaded.weights_path, tuple(args.taps), args.size)
    x, y = stack(training_set(crops, train, candidates(mining.detect, train)))
    print(f"crops: {np.bincount(y, minlength=3).tolist()} (violation, bin, background)")
    head = fit_head(x, y, args.epochs)
    look_file = args.out_card.with_suffix(".look.pt")
    torch.save({"head": head, "taps": list(args.taps), "size": args.size, "labels": ["violation", "bin", "background"],
                "base_sha256": sha256_of(loaded.weights_path), "crops": np.bincount(y, minlength=3).tolist()},
               look_file)
    card = yaml.safe_load(args.card.read_text(encoding="utf-8"))
    card["second_look"] = {"head": look_file.name, "classes": list(GARBAGE_CLASSES), "threshold": 0.5}
    draft = args.out_card.with_suffix(".draft.yaml")
    draft.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True), encoding="utf-8")
    look = SecondLook(load_card(draft))
    sets = photo_sets(args.val, tuple(args.skip_source))
    val = {name: (photos, scored(candidates(mining.detect, photos), look.scores, photos))
           for name, photos in sets.items()}
    thr, t, got = choose(val, args.max_false_alarm)
    draft.unlink()
    for name in GARBAGE_CLASSES:
        card["classes"][name]["confidence"] = thr[name]
    card["second_look"]["threshold"] = t
    card.setdefault("metrics", {})["second_look"] = {
        "crops": np.bincount(y, minlength=3).tolist(), "floor": args.floor, "size": args.size,
        "chosen_on": {n: {"recall": r, "false_alarms": fa} for n, (r, fa) in got.items()},
        "seconds": round(time.monotonic() - began)}
    args.out_card.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8")
    print(json.dumps({"thresholds": thr, "look": t, "val": got}, indent=1))
    print(f"wrote {look_file} and {args.out_card}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--card", type=Path, required=True, help="the card whose garbage boxes are looked at again")
    p.add_argument("--data", type=Path, required=True, help="a built dataset (its train split is mined)")
    p.add_argument("--val", type=Path, action="append", required=True, help="a set to choose thresholds on")
    p.add_argument("--out-card", type=Path, required=True, help="the card to write (its look: CARD.look.pt)")
    p.add_argument("--skip-source", action="append", default=[], help="a source whose garbage is unlabelled")
    p.add_argument("--floor", type=float, default=0.05, help="garbage classes' threshold while mining (0.05)")
    p.add_argument("--size", type=int, default=128, help="crop side in pixels (128)")
    p.add_argument("--taps", type=int, nargs="+", default=[6, 9], help="backbone layers pooled (6 9)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--limit", type=int, default=0, help="mine at most N training photos (a spread sample; 0: all)")
    p.add_argument("--max-false-alarm", type=float, default=0.08)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return exit_code_of(lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
