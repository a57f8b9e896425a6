"""`streetwatch config check` and `config schema`: validate files, or print their JSON schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from detector.config.base import read_mapping
from detector.config.camera import CameraConfig, load_camera
from detector.config.card import ModelCard
from detector.config.patrol import PatrolConfig, load_patrol
from detector.config.watch import load_watch
from detector.errors import StreetwatchError
from detector.geo.fences import load_fences
from detector.model.weights import load_card


def run_check(files: list[Path]) -> int:
    """`streetwatch config check`: every file is validated; exit 2 when any is not usable."""
    status = 0
    for path in files:
        try:
            keys = read_mapping(path, "file", fix="give a camera file, watch file or model card").keys()
            if "cameras" in keys:
                watch = load_watch(path)
                print(f"{path}: ok (watch file, cameras {[c.id for c in watch.cameras]})")
            elif "mount" in keys or "calibration" in keys:
                patrol = load_patrol(path)
                fences = f", {len(load_fences(patrol.fences).fences)} fences" if patrol.fences else ""
                kinds = [k.value for k in patrol.rules]
                print(f"{path}: ok (patrol camera {patrol.id!r}{fences}, kinds {kinds})")
            elif "camera" not in keys and ("weights" in keys or "extends" in keys):
                card = load_card(path).card
                print(f"{path}: ok (model card {card.name!r}, kinds {sorted(k.value for k in card.kinds())})")
            else:
                camera = load_camera(path)
                print(f"{path}: ok (camera {camera.id!r}, {len(camera.zones)} zones, "
                      f"kinds {[k.value for k in camera.rules]})")
        except StreetwatchError as e:
            print(f"error: {e}", file=sys.stderr)
            status = 2
    return status


def print_schema(card: bool, patrol: bool = False) -> int:
    """The JSON schema of camera files (or model cards, or patrol files), for editor completion."""
    model = ModelCard if card else PatrolConfig if patrol else CameraConfig
    print(json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False))
    return 0
