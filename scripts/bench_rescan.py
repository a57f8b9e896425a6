"""Video-hours per wall-hour on one archive, side by side: the loop a user would write by hand,
`streetwatch rescan --engine local` and `streetwatch rescan --engine ray`.

    python scripts/bench_rescan.py [--archive ROOT --cameras FILE] [--fps 2] [--copies N] [--json]

Without --archive it composes the test archive of testkit/rescan_archive.py (real clips cut from
../shared/videos at their own size and 10 fps, the parked-bike scene, one truncated file), with each
recording copied `--copies` times to later days. Each rescan starts from an empty output folder and is
timed from outside, as a user would time it: process start, model load and (for Ray) cluster start
included.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.apps.rescan.archive import walk  # noqa: E402
from detector.config.archive import load_archive  # noqa: E402
from detector.model.weights import load_card  # noqa: E402
from detector.video.seek import probe_duration  # noqa: E402
from testkit.rescan_archive import build_archive  # noqa: E402


def copy_days(videos: Path, copies: int) -> None:
    """More hours of the same footage: recording YYYYMMDD/... copied to the following days."""
    originals = sorted(p for p in videos.glob("*/*/*.mp4"))
    for n in range(1, copies):
        for path in originals:
            day = int(path.parent.name) + n
            target = path.parent.parent / str(day) / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def hand_loop(paths: list[Path], weights: Path) -> tuple[float, int]:
    """`for r in YOLO(weights).predict(path, stream=True)` over every file; (wall s, frames inferred)."""
    from ultralytics import YOLO

    began = time.perf_counter()
    model = YOLO(str(weights))
    frames = 0
    for path in paths:
        try:
            for _ in model.predict(str(path), stream=True, verbose=False):
                frames += 1
        except Exception as e:  # a truncated file: a hand-written loop just moves on
            print(f"hand loop: {path}: {type(e).__name__}", file=sys.stderr)
    return time.perf_counter() - began, frames


def rescan(root: Path, cameras: Path, engine: str, fps: float, extra: list[str]) -> tuple[float, dict]:
    out = Path(tempfile.mkdtemp(prefix=f"bench-rescan-{engine}-"))
    command = [sys.executable, "-m", "detector.cli", "rescan", str(root), "--cameras", str(cameras), "--out",
               str(out), "--fps", str(fps), "--engine", engine, "--no-progress", "--json", *extra]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"rescan --engine {engine} failed:\n{done.stderr[-2000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="archive root (default: compose the test archive)")
    parser.add_argument("--cameras", type=Path, help="archive file, with --archive")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--fps", type=float, default=2.0, help="rescan sampling rate (2)")
    parser.add_argument("--copies", type=int, default=1, help="copies of the composed archive's recordings (1)")
    parser.add_argument("--model", default=str(REPO / "detector" / "cards" / "coco.yaml"))
    parser.add_argument("--rescan-args", default="", help="more rescan options, e.g. '--sample keyframes'")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.archive:
        root, cameras = args.archive, args.cameras
    else:
        base = Path(tempfile.mkdtemp(prefix="bench-archive-"))
        cameras = build_archive(base, args.shared, fps=10, width=768)
        root = base / "videos"
        copy_days(root, args.copies)
    files, _ = walk(load_archive(root, cameras))
    paths = [f.path for f in files]
    video_h = sum(probe_duration(p) for p in paths) / 3600
    weights = load_card(args.model).weights_path
    rows = []
    wall, frames = hand_loop(paths, weights)
    rows.append({"method": "hand loop: YOLO(weights).predict(path, stream=True)", "wall_s": wall,
                 "video_h": video_h, "frames_inferred": frames})
    extra = args.rescan_args.split()
    for engine in ("local", "ray"):
        wall, report = rescan(root, cameras, engine, args.fps, ["--model", args.model, *extra])
        rows.append({"method": f"rescan --engine {engine} --fps {args.fps:g}", "wall_s": wall,
                     "video_h": report["video_s"] / 3600, "failed": len(report["failed"]), "events": report["events"]})
    for row in rows:
        row["video_h_per_wall_h"] = row["video_h"] * 3600 / row["wall_s"]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"archive: {len(paths)} files, {video_h:.3f} video-hours ({root})")
        print(f"{'method':<56}{'wall s':>8}{'video h':>9}{'video-h/wall-h':>16}")
        for row in rows:
            print(f"{row['method']:<56}{row['wall_s']:>8.1f}{row['video_h']:>9.3f}{row['video_h_per_wall_h']:>16.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
