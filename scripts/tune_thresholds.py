"""Per-class thresholds of one kind, chosen on several `streetwatch eval` image-level reports at once.

`streetwatch eval` sweeps all classes of a kind together; a kind fed by two classes (garbage: `garbage`
piles and `overflow` bins) may want two thresholds. This reads the reports' per-image class scores (taken
at the sweep floor, 0.05) and searches a grid of per-class thresholds for the one with the best worst-case
recall over the reports whose false-alarm rates all stay within `--max-false-alarm`:

    python scripts/tune_thresholds.py --kind garbage --classes garbage,overflow \\
        --report out/eval/dev.json --report out/eval/cn-val.json --max-false-alarm 0.10

Check the choice with a real `streetwatch eval` at the new card (duplicate suppression between classes is
not modelled here), and on a split you did not tune on.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

GRID = [round(0.05 * i, 2) for i in range(1, 20)]


def load(report: Path) -> list[dict[str, Any]]:
    data = json.loads(report.read_text(encoding="utf-8"))
    data = data.get("image_level", data)  # a YOLO-dataset report keeps the image level under image_level
    return data["per_image"]


def rates(records: list[dict[str, Any]], kind: str, thresholds: dict[str, float]) -> tuple[float | None, float]:
    """(recall, false-alarm rate) of the kind at per-class thresholds; recall None on a set of negatives only
    (photos without the kind, measuring its false alarms), which then does not count for the worst recall."""
    tp = fn = fp = n_no = 0
    for r in records:
        label = r["labels"].get(kind)
        if label not in ("yes", "no"):
            continue
        scores = r.get("class_score", {})
        raised = any(scores.get(c, 0.0) >= t for c, t in thresholds.items())
        if label == "yes":
            tp += raised
            fn += not raised
        else:
            n_no += 1
            fp += raised
    return (tp / (tp + fn) if tp + fn else None), (fp / n_no if n_no else 0.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", required=True)
    p.add_argument("--classes", required=True, help="comma-separated classes of that kind")
    p.add_argument("--report", type=Path, action="append", required=True, help="eval JSON (repeatable)")
    p.add_argument("--max-false-alarm", type=float, default=0.10)
    p.add_argument("--top", type=int, default=8)
    args = p.parse_args(argv)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    reports = {r.name: load(r) for r in args.report}
    rows = []
    for combo in itertools.product(GRID, repeat=len(classes)):
        thresholds = dict(zip(classes, combo, strict=True))
        results = {name: rates(records, args.kind, thresholds) for name, records in reports.items()}
        worst_fa = max(fa for _, fa in results.values())
        rows.append((min((r for r, _ in results.values() if r is not None), default=0.0), -worst_fa, thresholds,
                     results))
    ok = [r for r in rows if -r[1] <= args.max_false_alarm]
    ranked = sorted(ok or rows, key=lambda r: (r[0], r[1]), reverse=True)
    if not ok:
        print(f"no thresholds keep every report within {args.max_false_alarm} false alarms; closest:")
    names = list(reports)
    print(f"{'thresholds':<36}" + "".join(f"{n[:22]:>26}" for n in names))
    for worst, _, thresholds, results in ranked[:args.top]:
        cells = "".join(f"{'-' if results[n][0] is None else f'{results[n][0]:.3f}':>13} / {results[n][1]:.3f}"
                        for n in names)
        print(f"{json.dumps(thresholds):<36}{cells}   (worst recall {worst:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
