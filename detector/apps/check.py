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
from detector.geo.track import read_track
from detector.model.weights import load_card
from detector.redact import redact

TRACKS = (".gpx", ".nmea", ".log", ".txt", ".csv")
FENCES = (".geojson", ".json")


def run_check(files: list[Path]) -> int:
    """`streetwatch config check`: every file is validated as a run would read it (camera, watch and patrol files
    and model cards by their keys, tracks and fences by their suffix); exit 2 when any is not usable.
    What is printed passes the redaction, so a `?token=` in a source URL is not shown."""
    status = 0
    for path in files:
        try:
            print(redact(_check_one(path)))
        except StreetwatchError as e:
            print(f"error: {redact(str(e))}", file=sys.stderr)
            status = 2
    return status


def _check_one(path: Path) -> str:
    if path.suffix.lower() in TRACKS:
        track = read_track(path)
        return f"{path}: ok (track, {len(track.fixes)} fixes, {track.start.isoformat()} - {track.end.isoformat()})"
    if path.suffix.lower() in FENCES:
        return f"{path}: ok (fences, {len(load_fences(path).fences)})"
    keys = read_mapping(path, "file", fix="give a camera file, watch file or model card").keys()
    if "cameras" in keys:
        watch = load_watch(path)
        return f"{path}: ok (watch file, cameras {[c.id for c in watch.cameras]})"
    if "mount" in keys or "calibration" in keys:
        patrol = load_patrol(path)
        fences = f", {len(load_fences(patrol.fences).fences)} fences" if patrol.fences else ""
        return f"{path}: ok (patrol camera {patrol.id!r}{fences}, kinds {[k.value for k in patrol.rules]})"
    if "camera" not in keys and ("weights" in keys or "extends" in keys):
        card = load_card(path).card
        return f"{path}: ok (model card {card.name!r}, kinds {sorted(k.value for k in card.kinds())})"
    camera = load_camera(path)
    return f"{path}: ok (camera {camera.id!r}, {len(camera.zones)} zones, kinds {[k.value for k in camera.rules]})"


def print_schema(card: bool, patrol: bool = False) -> int:
    """The JSON schema of camera files (or model cards, or patrol files), for editor completion."""
    model = ModelCard if card else PatrolConfig if patrol else CameraConfig
    print(json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False))
    return 0
