"""Which association keeps the identity of static objects at 1-2 fps: our IoU tracker or ByteTrack?

    python scripts/compare_trackers.py [--fps 1 2] [--occlusion-s 20]   # ByteTrack needs `pip install lap`

Scene: the parked-bike photos of testkit/media.py (4 labelled bikes) held still for 120 s, with the
left half covered for `--occlusion-s` in the middle (a van parked in front). For each labelled bike,
counts the distinct track ids given to the boxes that overlap it (1 is right) and the share of
sampled frames in which it carried a track id. ByteTrack is ultralytics' own, with its default
configuration (track_buffer counts frames, so at low fps it forgets sooner in seconds).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.camera.tracking import IouTracker  # noqa: E402
from detector.geometry import iou_matrix  # noqa: E402
from detector.model.detector import Detector  # noqa: E402
from detector.model.weights import load_card  # noqa: E402
from detector.video.file import VideoSource  # noqa: E402
from testkit import media  # noqa: E402


def score(per_frame: list[tuple[np.ndarray, np.ndarray]], bikes: np.ndarray) -> tuple[list[int], list[float]]:
    ids: list[set[int]] = [set() for _ in bikes]
    covered = np.zeros(len(bikes))
    for boxes, track_ids in per_frame:
        if len(boxes) == 0:
            continue
        ious = iou_matrix(bikes, boxes)
        for b in range(len(bikes)):
            j = int(np.argmax(ious[b]))
            if ious[b, j] >= 0.3 and track_ids[j] >= 0:
                ids[b].add(int(track_ids[j]))
                covered[b] += 1
    return [len(s) for s in ids], list(covered / len(per_frame))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--occlusion-s", type=float, default=20.0)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = parser.parse_args()

    scene = media.bike_scene(args.shared)
    covered = scene.image.copy()
    covered[:, : scene.image.shape[1] // 2] = (90, 90, 100)  # a grey van in front of the left bikes
    visible = (120.0 - args.occlusion_s) / 2
    bikes = np.array(scene.bikes, np.float32)
    loaded = load_card(REPO / "detector" / "cards" / "coco.yaml")
    detector = Detector(loaded)
    with tempfile.TemporaryDirectory() as tmp:
        video = media.still_video(Path(tmp) / "occluded.mp4",
                                  [(scene.image, visible), (covered, args.occlusion_s), (scene.image, visible)])
        print(f"{'fps':>4} {'tracker':<10} {'ids per bike (1 is right)':<28} {'frames with an id':<24}")
        for fps in args.fps:
            frames = list(VideoSource(video, tz=ZoneInfo("UTC"), fps=fps, start=datetime(2026, 1, 1)))
            iou = IouTracker(max_age_s={"bike": 30.0})
            ours = []
            for frame in frames:
                [dets] = detector.detect([frame.image])
                dets = iou.update(dets, frame.time)
                iou.expire(frame.time + timedelta(0))
                ours.append((dets.xyxy, dets.track_id))
            bytetrack = []
            detector.model.predictor = None  # fresh tracker state
            for frame in frames:
                [r] = detector.model.track(frame.image, persist=True, tracker="bytetrack.yaml", verbose=False,
                                           classes=[1, 3], conf=0.3, imgsz=640)
                ids = r.boxes.id.cpu().numpy().astype(int) if r.boxes.id is not None else np.full(len(r.boxes), -1)
                bytetrack.append((r.boxes.xyxy.cpu().numpy(), ids))
            for name, per_frame in (("iou", ours), ("bytetrack", bytetrack)):
                counts, coverage = score(per_frame, bikes)
                print(f"{fps:>4g} {name:<10} {counts!s:<28} {[round(float(c), 2) for c in coverage]!s:<24}")


if __name__ == "__main__":
    main()
