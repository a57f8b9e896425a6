"""`streetwatch models`: `export` compiles cards to OpenVINO into the cache ahead of time; `promote`,
`rollback` and `list` set which card each camera group runs (`detector.output.rollouts`)."""

from __future__ import annotations

import argparse
import getpass
import json
import time
from pathlib import Path

from detector.errors import ConfigError, StreetwatchError
from detector.learn.guard import promotable
from detector.model.compiled import NotCompiled, compiled_card
from detector.model.weights import load_card
from detector.output.rollouts import RolloutRows
from detector.output.store import open_store


def run_cli(args: argparse.Namespace) -> int:
    if args.models_command == "export":
        return export(args)
    if args.db is None and args.events is None:
        raise ConfigError(f"models {args.models_command} needs --db URL or --events DIR",
                          fix="give the store the watch processes of the group write to")
    store = open_store(args.db or args.events / "events.sqlite")
    try:
        rows = RolloutRows(store)
        if args.models_command == "promote":
            return promote(rows, args.learnt, args.group, args.force)
        if args.models_command == "rollback":
            try:
                row = rows.rollback(args.group, getpass.getuser())
            except ValueError as e:
                raise ConfigError(str(e), fix="promote a card first (streetwatch models promote)") from None
            print(f"{args.group}: back to {row['card']} (was {row['rolled_back_from']})")
            return 0
        for row in rows.listing():
            print(f"{row['group_name']}: {row['card']} (before: {row['previous'] or '-'}; {row['why']}, "
                  f"{row['changed_by']} at {row['changed_at']})")
        return 0
    finally:
        store.close()


def promote(rows: RolloutRows, learnt: Path, group: str, force: bool) -> int:
    """Exit 0 promoted; 1 refused (the report says why), unless `force`."""
    report_file = learnt / "report.json"
    if not report_file.is_file():
        raise ConfigError("no report.json here", path=learnt, fix="give the --out folder of `streetwatch learn`")
    report = json.loads(report_file.read_text(encoding="utf-8"))
    card = Path(report["new_card"]).resolve()
    load_card(card)  # it must load here, as the watch processes will load it
    ok, reasons = promotable(report)
    for reason in reasons:
        print(f"  {reason}")
    if not ok and not force:
        print(f"{group}: not promoted: {card.name} is not better (--force promotes it anyway)")
        return 1
    why = "better on the holdout" if ok else "forced: " + "; ".join(reasons)
    row = rows.promote(group, str(card), getpass.getuser(), why, report,
                       default=report.get("card_path", report["card"]))
    print(f"{group}: runs {card} now (before: {row['previous']})")
    return 0


def export(args: argparse.Namespace) -> int:
    """Exit 0 when every card is compiled (or needs no compiling); 2 when one cannot be."""
    for name in args.cards:
        loaded = load_card(name, weights=args.weights)
        loaded.weights_path  # noqa: B018 - a missing file is an error before any work
        if loaded.is_export:
            print(f"{loaded.card.name}: its weights are an export already; nothing to do")
            continue
        began = time.monotonic()
        try:
            compiled = compiled_card(loaded, announce=False)
        except NotCompiled as e:
            raise StreetwatchError(f"cannot compile {loaded.card.name}: {e}", path=loaded.path,
                                   fix="pip install openvino; PyTorch runs the card meanwhile") from None
        print(f"{loaded.card.name}: {compiled.weights_path} ({time.monotonic() - began:.1f}s)")
    return 0
