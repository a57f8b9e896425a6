"""`streetwatch learn`: the card learns on its own city's cameras, on this machine's CPU.

From review exports (confirmed, rejected, corrected and drawn boxes) and photos with image-level labels, it
teaches the card's second look (`detector.learn.look`) what this card mistakes for garbage here, together
with a sample of older data (`--keep`, e.g. the card's own training set) so old skills stay, and chooses the
garbage thresholds again. The detector and its heads stay as they are: a second look trains in seconds on
the crops' features, where the detector's head takes hours on CPU.

The reviews are split by camera and day (`detector.learn.samples.split_groups`): the latest days are the
holdout, so no neighbouring frames sit on both sides. Thresholds are chosen on out-of-fold scores of the
training days (no more false alarms there than the old card's), never on the holdout; the report gives
recall and false alarms of the old card against the new on the holdout and on the reference sets.
Resumable: the card's candidates are cached per photo under `OUT/cache`, so a rerun only detects what is new.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from detector.errors import ConfigError, StreetwatchError
from detector.learn.look import Crops, Found, Scored, candidates, choose, fit_head, rates, scored, stack, training_set
from detector.learn.samples import (
    GARBAGE_CLASSES,
    Photo,
    export_photos,
    labelled_photos,
    photo_sets,
    split_groups,
    spread,
)
from detector.learn.samples import yolo_photos as dataset_photos
from detector.model.weights import CARDS_DIR, LoadedCard, load_card, resolve_weights, sha256_of

log = logging.getLogger(__name__)
FOLDS = 4
SIZE, TAPS = 128, (6, 9)  # the look's crop side and pooled backbone layers (as scripts/train_second_look.py)


def site_photos(reviews: list[Path], photos: list[tuple[Path, Path]]) -> list[Photo]:
    found = [p for export in reviews for p in export_photos(export)]
    found += [p for folder, labels in photos for p in labelled_photos(folder, labels)]
    if not found:
        raise ConfigError("nothing to learn from", fix="give --reviews EXPORT and/or --photos DIR --labels CSV")
    return found


def probabilities(head: Any, x: np.ndarray) -> np.ndarray:
    import torch

    if not len(x):
        return np.zeros(0, np.float32)
    with torch.no_grad():
        return head(torch.from_numpy(x)).softmax(1)[:, 0].numpy()


def per_photo(found: list[Found], probs: list[np.ndarray]) -> list[Scored]:
    return [list(zip(f[1].tolist(), f[2].astype(float).tolist(), p.astype(float).tolist(), strict=True))
            for f, p in zip(found, probs, strict=True)]


def mine(loaded: LoadedCard, sets: dict[str, list[Photo]], out: Path, floor: float,
         show_progress: bool) -> dict[str, list[Found]]:
    """The card's candidates on every set, its garbage classes lowered to `floor` and without its own look."""
    from tqdm import tqdm

    from detector.model.compiled import for_runtime
    from detector.model.detector import Detector

    lowered = loaded.lowered(floor)
    bare = lowered.model_copy(update={"card": lowered.card.model_copy(update={"second_look": None})})
    detector = Detector(for_runtime(bare))
    total = sum(len(p) for p in sets.values())
    with tqdm(total=total, desc="the card's candidates", unit="photo", disable=not show_progress) as bar:
        return {name: candidates(detector.detect, photos, card_sha=loaded.model_sha256, floor=floor,
                                 cache=out / "cache", progress=bar.update) for name, photos in sets.items()}


def folds_of(photos: list[Photo]) -> list[int]:
    """Each photo's fold: by its camera and day when a set has enough of them (neighbouring frames stay in one
    fold), else by photo (independent photos, as labelled folders and datasets hold)."""
    groups = sorted({p.group for p in photos})
    if len(groups) >= FOLDS:
        return [groups.index(p.group) % FOLDS for p in photos]
    return [i % FOLDS for i in range(len(photos))]


def train_look(crops: Crops, sets: dict[str, tuple[list[Photo], list[Found]]],
               epochs: int) -> tuple[Any, dict[str, list[np.ndarray]], list[int]]:
    """The look's head on every training set (the site's training days and the kept data); and, per set, the
    out-of-fold P(violation) of each photo's candidates (from a head that never saw that photo), to choose the
    thresholds on."""
    labelled = {n: training_set(crops, photos, found) for n, (photos, found) in sets.items()}
    cand_x = {n: [crops.features(p, f[0]) for p, f in zip(photos, found, strict=True)]
              for n, (photos, found) in sets.items()}
    folds = {n: folds_of(photos) for n, (photos, _) in sets.items()}
    oof = {n: [np.zeros(0, np.float32)] * len(photos) for n, (photos, _) in sets.items()}
    for k in range(FOLDS):
        inside = [part for n, parts in labelled.items() for part, f in zip(parts, folds[n], strict=True) if f != k]
        head = fit_head(*stack(inside), epochs)
        for name, xs in cand_x.items():
            for i in (i for i, f in enumerate(folds[name]) if f == k):
                oof[name][i] = probabilities(head, xs[i])
    x, y = stack([part for parts in labelled.values() for part in parts])
    return fit_head(x, y, epochs), oof, np.bincount(y, minlength=3).tolist()


def old_look(loaded: LoadedCard, sets: dict[str, list[Photo]],
             found: dict[str, list[Found]]) -> dict[str, list[Scored]]:
    """Each set's candidates as the old card judges them: its own look's probability, or 1 without one."""
    look = None
    if loaded.card.second_look is not None:
        from detector.model.second_look import SecondLook

        look = SecondLook(loaded).scores
    return {name: scored(found[name], look, photos) for name, photos in sets.items()}


def old_thresholds(loaded: LoadedCard) -> tuple[dict[str, float], float]:
    card = loaded.card
    thr = {c: card.classes[c].confidence for c in GARBAGE_CLASSES if c in card.classes and card.classes[c].kind}
    return thr, (card.second_look.threshold if card.second_look else 0.0)


def _bare_name(path: Path, out: Path) -> str:
    """A file the new card names: found from `out` as it is, else copied beside it (heads are a few MB)."""
    try:
        if resolve_weights(path.name, card_dir=out, head=True).resolve() == path.resolve():
            return path.name
    except StreetwatchError:
        pass
    if path.resolve().is_relative_to(CARDS_DIR.resolve()):
        return path.name
    shutil.copyfile(path, out / path.name)
    return path.name


def write_card(loaded: LoadedCard, out: Path, head: Any, thr: dict[str, float], look: float,
               metrics: dict[str, Any]) -> Path:
    """The new card beside its look (`NAME-site.yaml`, `NAME-site.look.pt`): the old one with the look and
    the garbage thresholds learnt here."""
    import torch

    name = f"{loaded.card.name}-site"
    look_file = out / f"{name}.look.pt"
    base = loaded.look_base or loaded.weights_path
    torch.save({"head": head, "taps": list(TAPS), "size": SIZE, "labels": ["violation", "bin", "background"],
                "base_sha256": sha256_of(base), "crops": metrics["crops"]}, look_file)
    card = loaded.card.model_dump(mode="json", exclude_none=True)
    card["name"] = name
    card["description"] = (f"{loaded.card.name} with a second look and garbage thresholds learnt on this site's "
                           f"reviews by `streetwatch learn` ({metrics['site']['train_photos']} photos).")
    card["weights"] = _bare_name(loaded.weights_path, out)
    if loaded.head_path is not None:
        card["head"] = _bare_name(loaded.head_path, out)
    for spec, path in zip(card.get("more_heads", []), loaded.more_head_paths, strict=True):
        spec["head"] = _bare_name(path, out)
    for cls, value in thr.items():
        if cls in card["classes"]:  # (a card without overflow has no threshold for it)
            card["classes"][cls]["confidence"] = value
    card["second_look"] = {"head": look_file.name, "classes": [c for c in GARBAGE_CLASSES if c in card["classes"]],
                           "threshold": look}
    card.setdefault("metrics", {})["learn"] = metrics
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8")
    load_card(path)  # the card written must load (its files resolve, its fields validate)
    return path


def judged(sets: dict[str, list[Photo]], scores: dict[str, list[Scored]], thr: dict[str, float],
           look: float) -> dict[str, dict[str, float | None]]:
    out = {}
    for name, photos in sets.items():
        recall, false_alarms = rates(scores[name], photos, thr, look)
        out[name] = {"recall": None if recall is None else round(recall, 3), "false_alarms": round(false_alarms, 3),
                     "photos": len(photos)}
    return out


def learn(card: str | Path, out: Path, *, reviews: list[Path], photos: list[tuple[Path, Path]], keep: list[Path],
          references: list[Path], floor: float = 0.05, epochs: int = 40, keep_sample: int = 300,
          reference_limit: int = 200, holdout_share: float = 0.25, show_progress: bool = False) -> dict[str, Any]:
    """Learn, write the new card and its report into `out`; the report."""
    began = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    loaded = load_card(card)
    train, holdout = split_groups(site_photos(reviews, photos), holdout_share)
    if not train:
        raise ConfigError("every reviewed day went to the holdout", fix="give reviews of two days or more")
    kept = spread([p for d in keep for p in dataset_photos(d, "train")], keep_sample)
    refs = {name: spread(p, reference_limit) for name, p in photo_sets(references).items()}
    sets = {"train": train, "holdout": holdout, "keep": kept, **{f"reference:{n}": p for n, p in refs.items()}}
    found = mine(loaded, sets, out, floor, show_progress)
    crops = Crops(loaded.look_base or loaded.weights_path, TAPS, SIZE)
    learnt = {n: (sets[n], found[n]) for n in ("train", "keep") if sets[n]}
    head, oof, counts = train_look(crops, learnt, epochs)
    old_thr, old_t = old_thresholds(loaded)
    judge = {n: p for n, p in sets.items() if p}
    before = old_look(loaded, judge, found)
    # No more false alarms than the old card's on the site's training days and on the kept data, out of fold.
    caps = {n: rates(before[n], sets[n], old_thr, old_t)[1] for n in learnt}
    thr, t, _ = choose({n: (sets[n], per_photo(found[n], oof[n])) for n in learnt}, caps)
    after = {n: per_photo(found[n], [probabilities(head, crops.features(p, f[0]))
                                     for p, f in zip(judge[n], found[n], strict=True)])
             for n in judge if n not in learnt}
    after |= {n: per_photo(found[n], oof[n]) for n in learnt}
    report = {
        "card": loaded.card.name, "card_path": str(loaded.path.resolve()), "floor": floor, "crops": counts,
        "site": {"train_photos": len(train), "holdout_photos": len(holdout), "kept_photos": len(kept),
                 "train_days": sorted({p.group for p in train}), "holdout_days": sorted({p.group for p in holdout})},
        "thresholds": {"old": {**old_thr, "look": old_t}, "new": {**thr, "look": t}},
        "garbage": {"old": judged(judge, before, old_thr, old_t), "new": judged(judge, after, thr, t)},
        "unchanged": "bikes and vending: learn teaches the garbage look only",
    }
    report["seconds"] = round(time.monotonic() - began, 1)
    report["new_card"] = str(write_card(loaded, out, head, thr, t, report).resolve())
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "report.md").write_text(report_table(report), encoding="utf-8")
    return report


def report_table(report: dict[str, Any]) -> str:
    """Garbage recall / false alarms, old card and new, per set (train and keep: out-of-fold for the new one)."""
    lines = [f"# streetwatch learn: {report['card']} -> {Path(report['new_card']).name}", "",
             "| set | photos | old recall | old false alarms | new recall | new false alarms |",
             "|---|---|---|---|---|---|"]
    old, new = report["garbage"]["old"], report["garbage"]["new"]
    for name, o in old.items():
        n = new[name]
        lines.append(f"| {name} | {o['photos']} | {o['recall']} | {o['false_alarms']} | {n['recall']} | "
                     f"{n['false_alarms']} |")
    lines += ["", f"crops (violation, bin, background): {report['crops']}; {report['seconds']} s", ""]
    return "\n".join(lines)


def run_cli(args: argparse.Namespace) -> int:
    if len(args.photos) != len(args.labels):
        raise ConfigError("each --photos DIR needs its --labels CSV", fix="give them in pairs")
    report = learn(args.card, args.out, reviews=args.reviews, photos=list(zip(args.photos, args.labels, strict=True)),
                   keep=args.keep, references=args.reference, floor=args.floor, epochs=args.epochs,
                   keep_sample=args.keep_sample, reference_limit=args.reference_limit,
                   holdout_share=args.holdout_share, show_progress=sys.stderr.isatty() and not args.no_progress)
    print(report_table(report))
    print(f"new card: {report['new_card']} (report: {args.out / 'report.json'})")
    return 0

