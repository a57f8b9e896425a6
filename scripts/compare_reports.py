"""Side by side: one kind's image-level recall / false-alarm rate in several `streetwatch eval` reports,
overall, per camera type and by day and night, at each card's thresholds (and, with --sweep, at the report's
sweep points).

Why: choosing between a learnt class, the composite rule and their union is a comparison of reports made
on the same photos; reading them one JSON at a time hides it.

    python scripts/compare_reports.py --kind vending out/eval/v3-vending-test.json out/eval/v4-vending-test.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.errors import ConfigError, exit_code_of  # noqa: E402


def cell(rates: dict | None) -> str:
    if not rates:
        return "-"

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    counts = f" ({rates['tp']}/{rates['yes']}, {rates['fp']}/{rates['no']})" if "tp" in rates else ""
    return f"{fmt(rates.get('recall'))} / {fmt(rates.get('false_alarm_rate'))}{counts}"


def load(path: Path, kind: str) -> dict:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the report ({e})", path=path,
                          fix="pass a JSON written by streetwatch eval --out") from e
    if kind not in report.get("kinds", {}):
        raise ConfigError(f"the report has no kind {kind!r}", path=path,
                          fix=f"use one of {sorted(report.get('kinds', {}))}, or a labels.csv with a {kind} column")
    return report


def table(paths: list[Path], kind: str, sweep: bool) -> str:
    reports = [load(p, kind) for p in paths]
    groups = [(g, v) for g in ("by_camera", "by_time") for v in sorted({v for r in reports for v in r.get(g, {})})]
    header = ["report", "card", "all", *(v for _, v in groups)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for path, report in zip(paths, reports, strict=True):
        row = [path.stem, report.get("card", "?"), cell(report["kinds"][kind])]
        row += [cell(report.get(g, {}).get(v, {}).get(kind)) for g, v in groups]
        lines.append("| " + " | ".join(row) + " |")
    if sweep:
        for path, report in zip(paths, reports, strict=True):
            points = ", ".join(f"{s['threshold']:.2f}: {cell(s)}" for s in report["kinds"][kind]["sweep"][::2])
            lines.append(f"\n{path.stem} sweep (threshold: recall / false alarms): {points}")
    lines.append("\ncells: recall / false-alarm rate (hits/yes, false alarms/no), at the card's thresholds")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", type=Path, nargs="+", help="JSON reports of streetwatch eval --out")
    p.add_argument("--kind", default="vending", help="the kind to compare (vending)")
    p.add_argument("--sweep", action="store_true", help="also print every other sweep point of each report")
    args = p.parse_args(argv)
    return exit_code_of(lambda: print(table(args.reports, args.kind, args.sweep)))


if __name__ == "__main__":
    sys.exit(main())
