"""Whether a learnt card may replace the card it came from: better on the site's holdout (more recall at no
more false alarms, or fewer false alarms at no less recall) and at most `MAX_RECALL_DROP` worse in recall on
every reference set. A card that only trades false alarms for recall is not promoted."""

from __future__ import annotations

from typing import Any

MAX_RECALL_DROP = 0.02


def promotable(report: dict[str, Any], max_recall_drop: float = MAX_RECALL_DROP) -> tuple[bool, list[str]]:
    """(may it be promoted, the reasons: each comparison in words)."""
    old, new = report["garbage"]["old"], report["garbage"]["new"]
    reasons, ok = [], True
    held_old, held_new = old.get("holdout"), new.get("holdout")
    if not held_old or not held_old.get("photos") or held_old.get("recall") is None:
        return False, ["no holdout with garbage photos to judge on: review a later day too"]
    recall_up = held_new["recall"] - held_old["recall"]
    alarms_up = held_new["false_alarms"] - held_old["false_alarms"]
    better = (recall_up >= 0 and alarms_up <= 0) and (recall_up > 0 or alarms_up < 0)
    ok &= better
    reasons.append(f"holdout: recall {held_old['recall']:.3f} -> {held_new['recall']:.3f}, false alarms "
                   f"{held_old['false_alarms']:.3f} -> {held_new['false_alarms']:.3f}: "
                   f"{'better' if better else 'not better on both'}")
    for name in (n for n in old if n.startswith("reference:")):
        o, n = old[name]["recall"], new[name]["recall"]
        if o is None or n is None:
            continue
        kept = n >= o - max_recall_drop - 1e-9
        ok &= kept
        reasons.append(f"{name.removeprefix('reference:')}: recall {o:.3f} -> {n:.3f}"
                       f"{'' if kept else f', more than {max_recall_drop} worse'}")
    return ok, reasons
