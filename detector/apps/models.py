"""`streetwatch models export`: compile cards to OpenVINO into the cache ahead of time."""

from __future__ import annotations

import argparse
import time

from detector.errors import StreetwatchError
from detector.model.compiled import NotCompiled, compiled_card
from detector.model.weights import load_card


def run_cli(args: argparse.Namespace) -> int:
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
