"""Every bundled evaluation set through `streetwatch eval`, for one or more cards, and one table of them.

Why: a card is judged on several kinds of photo at once (Chinese bin points, European street reports, the
vending photos, fixed street cameras by day and night), and on the splits nobody tuned on apart from those
its thresholds were chosen on. One command gives the model table of docs/models.md, old and new side by side:

    python scripts/eval_suite.py streetwatch-v4 streetwatch-v5     # reports in out/eval/CARD/SET.json

Sets whose data is missing (built by scripts/build_*.py, see docs/models.md) are skipped with a line saying so.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from detector.errors import exit_code_of  # noqa: E402


@dataclass(frozen=True)
class EvalSet:
    name: str
    data: Path
    labels: Path | None  # None: a YOLO dataset, measured on `split`
    split: str
    kinds: tuple[str, ...]
    tuned: bool  # thresholds were chosen on it (its figures are optimistic)


SETS = (
    EvalSet("cn-test", REPO / "data/cn-street-garbage-full", None, "test", ("garbage",), False),
    EvalSet("cn-val", SHARED / "datasets/cn-street-garbage", None, "val", ("garbage",), True),
    EvalSet("dev", SHARED / "datasets/street-garbage-dev/images", SHARED / "datasets/street-garbage-dev/labels.csv",
            "", ("garbage", "bike"), True),
    EvalSet("vending-test", REPO / "data/vending/images/test", REPO / "data/vending/labels-test.csv", "",
            ("vending",), False),
    EvalSet("vending-val", REPO / "data/vending/images/val", REPO / "data/vending/labels-val.csv", "",
            ("vending",), True),
    EvalSet("fixed-test", REPO / "data/fixed-cameras/images/test", REPO / "data/fixed-cameras/labels-test.csv", "",
            ("vending", "garbage"), False),
    EvalSet("fixed-val", REPO / "data/fixed-cameras/images/val", REPO / "data/fixed-cameras/labels-val.csv", "",
            ("vending", "garbage"), True),
)


def run_set(card: str, s: EvalSet, out: Path) -> dict | None:
    from detector.cli import main as cli

    if not s.data.exists() or (s.labels is not None and not s.labels.exists()):
        print(f"{card} {s.name}: skipped, {s.data} is missing", file=sys.stderr)
        return None
    args = ["eval", str(s.data), "--model", card, "--out", str(out)]
    args += ["--labels", str(s.labels)] if s.labels else ["--split", s.split]
    if not out.exists():
        cli(args)
    report = json.loads(out.read_text(encoding="utf-8"))
    return report.get("image_level", report)


def cell(m: dict | None) -> str:
    if not m or m.get("yes", 0) + m.get("no", 0) == 0:
        return "-"
    recall = "-" if m.get("recall") is None else f"{m['recall']:.2f}"
    alarms = "-" if m.get("false_alarm_rate") is None else f"{m['false_alarm_rate']:.2f}"
    return f"{recall} / {alarms} ({m['tp']}/{m['yes']}, {m['fp']}/{m['no']})"


def rows(cards: list[str], out_dir: Path) -> list[str]:
    lines = ["| set | kind | " + " | ".join(cards) + " |", "|---|---|" + "---|" * len(cards)]
    for s in SETS:
        reports = [run_set(card, s, out_dir / Path(card).stem / f"{s.name}.json") for card in cards]
        for kind in s.kinds:
            label = f"{s.name}{' (tuned on)' if s.tuned else ''}"
            lines.append(f"| {label} | {kind} | " + " | ".join(cell((r or {}).get("kinds", {}).get(kind))
                                                                  for r in reports) + " |")
            for group in ("by_camera", "by_time"):
                values = sorted({v for r in reports if r for v in r.get(group, {})})
                if len(values) < 2:
                    continue
                for value in values:
                    lines.append(f"| {s.name}, {value} | {kind} | " + " | ".join(
                        cell((r or {}).get(group, {}).get(value, {}).get(kind)) for r in reports) + " |")
    lines.append("\ncells: recall / false-alarm rate (hits/yes, false alarms/no), image level, at each card's "
                 "thresholds")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cards", nargs="+", help="cards by name or path (streetwatch-v4, detector/cards/x.yaml)")
    p.add_argument("--out", type=Path, default=REPO / "out" / "eval", help="report folder (out/eval)")
    p.add_argument("--again", action="store_true", help="evaluate again even where a report exists")
    args = p.parse_args(argv)
    if args.again:
        for card in args.cards:
            for s in SETS:
                (args.out / Path(card).stem / f"{s.name}.json").unlink(missing_ok=True)
    return exit_code_of(lambda: print("\n".join(rows(args.cards, args.out))))


if __name__ == "__main__":
    sys.exit(main())
