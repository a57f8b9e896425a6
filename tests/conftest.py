"""Shared fixtures: the real data in ../shared, composed test videos, one loaded model per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from testkit import media

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
# Tests run the PyTorch model unless they test the compiled one (tests/test_compiled.py), and never touch
# the user's cache; subprocesses inherit both.
os.environ.setdefault("STREETWATCH_RUNTIME", "pytorch")
os.environ["STREETWATCH_CACHE"] = tempfile.mkdtemp(prefix="streetwatch-cache-")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run slow soak/benchmark tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow; run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "models" / "yolov8n.pt").exists():
        pytest.fail(f"{SHARED} with models/yolov8n.pt is required beside the repository (see README)")
    return SHARED


@pytest.fixture(scope="session")
def coco_card(shared: Path):
    from detector.model.weights import load_card

    return load_card(REPO / "detector" / "cards" / "coco.yaml")


@pytest.fixture(scope="session")
def detector(coco_card):
    from detector.model.detector import Detector

    return Detector(coco_card)


@pytest.fixture(scope="session")
def bike_scene(shared: Path) -> media.Scene:
    return media.bike_scene(shared)


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory, shared: Path, bike_scene: media.Scene) -> dict[str, Path]:
    """Videos composed once per session from real photos (see testkit/media.py)."""
    root = tmp_path_factory.mktemp("videos")
    other = media.other_scene(shared)
    return {
        "bikes_90s": media.still_video(root / "bikes_90s.mp4", [(bike_scene.image, 90.0)]),
        "bikes_20s": media.still_video(root / "bikes_20s.mp4", [(bike_scene.image, 20.0)]),
        "scene_change": media.still_video(root / "scene_change.mp4", [(bike_scene.image, 50.0), (other, 50.0)]),
    }


@pytest.fixture(scope="session")
def demo_bikes_scanned(tmp_path_factory: pytest.TempPathFactory, videos: dict[str, Path], coco_card) -> Path:
    """The parked-bike demo scanned for real, once (two bike events with snapshots): the review desk's
    tests copy it before changing it."""
    from detector.apps.scan import scan
    from detector.config.camera import load_camera

    out = tmp_path_factory.mktemp("demo-bikes") / "out"
    scan([videos["bikes_90s"]], load_camera(REPO / "zones" / "demo-bikes.yaml"), coco_card, out, fps=1.0)
    return out


@pytest.fixture(scope="session")
def openvino_exports(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Path:
    """The COCO YOLOv8n exported to OpenVINO FP32 at 384x640, made once per session."""
    from scripts.bench import ensure_exports

    exports = tmp_path_factory.mktemp("exports")
    ensure_exports(exports, shared, int8=False)
    return exports
