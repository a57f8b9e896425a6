"""Compose a 90 s still scene of parked bikes from real photos in ../shared and scan it.

    python scripts/demo_bikes.py [--out out/demo-bikes]

Expect two bike events (the bikes left of the bay), each with three snapshots.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.cli import main  # noqa: E402
from testkit import media  # noqa: E402


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "out" / "demo-bikes")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    video = args.out / "bikes.mp4"
    if not video.exists():
        print(f"composing {video} from photos in {args.shared}/datasets/bicycles ...", file=sys.stderr)
        media.still_video(video, [(media.bike_scene(args.shared).image, 90.0)])
    return main(["scan", str(video), "--camera", str(REPO / "zones" / "demo-bikes.yaml"), "--out", str(args.out),
                 "--start", "2026-11-23T09:00:00"])


if __name__ == "__main__":
    sys.exit(run())
