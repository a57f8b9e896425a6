"""A small camera archive for re-scan tests and the benchmark, cut and composed from real footage.

Camera `cam-a`: six real clips cut from ../shared/videos with ffmpeg (re-encoded H.264, low size and
rate), three consecutive from the plaza video, two consecutive from the parking lot, one indoor.
Camera `cam-b`: the parked-bike scene composed from real photos (testkit/media.py) as two consecutive
files, so both misparked bikes are violations that span the two files, and one truncated file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from testkit import media

BAY = [[0.52, 0.0], [1.0, 0.0], [1.0, 1.0], [0.52, 1.0]]

CLIPS = [  # (camera, yyyymmdd/hhmmss, source video, start s, seconds)
    ("cam-a", "20261120/080000", "vtest.avi", 0, 10),
    ("cam-a", "20261120/080010", "vtest.avi", 10, 10),
    ("cam-a", "20261120/080020", "vtest.avi", 20, 10),
    ("cam-a", "20261120/120000", "intel-car-detection.mp4", 0, 10),
    ("cam-a", "20261120/120010", "intel-car-detection.mp4", 10, 10),
    ("cam-a", "20261121/090000", "intel-one-by-one-person-detection.mp4", 30, 10),
]
BIKE_FILES = ["20261120/100000", "20261120/100040"]  # 40 s each: one recording in two files
TRUNCATED = "20261120/100120"


def ffmpeg_cut(source: Path, out: Path, start: float, seconds: float, *, width: int = 384, fps: int = 5,
               faststart: bool = False) -> Path:
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is needed for the archive tests (apt-get install -y ffmpeg)")
    out.parent.mkdir(parents=True, exist_ok=True)
    command = ["ffmpeg", "-y", "-v", "error", "-ss", str(start), "-t", str(seconds), "-i", str(source),
               "-vf", f"scale={width}:-2,fps={fps}", "-c:v", "libx264", "-preset", "ultrafast", "-g", str(2 * fps),
               "-pix_fmt", "yuv420p", "-an"]
    command += ["-movflags", "+faststart"] if faststart else []
    subprocess.run([*command, str(out)], check=True)
    return out


def build_archive(root: Path, shared: Path, *, bike_seconds: float = 40.0, fps: int = 5, width: int = 384) -> Path:
    """Writes the recordings under `root/videos`, camera files and `root/archive.yaml`; returns the latter."""
    videos = root / "videos"
    for camera, stamp, source, start, seconds in CLIPS:
        ffmpeg_cut(shared / "videos" / source, videos / camera / f"{stamp}.mp4", start, seconds, fps=fps,
                   width=width)
    scene = media.bike_scene(shared).image
    for i, stamp in enumerate(BIKE_FILES):
        path = videos / "cam-b" / f"{stamp}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        media.still_video(path, [(scene, bike_seconds)], fps=fps, seed=i)
    # A file cut short mid-way (an upload that died): it opens, but its video stops early.
    whole = ffmpeg_cut(shared / "videos" / "vtest.avi", root / "whole.mp4", 30, 20, fps=fps, width=width,
                       faststart=True)
    data = whole.read_bytes()
    (videos / "cam-b" / f"{TRUNCATED}.mp4").write_bytes(data[: len(data) // 2])
    whole.unlink()
    (videos / "cam-b" / "notes.txt").write_text("not a recording\n")
    (root / "cam-a.yaml").write_text(
        "camera: {id: cam-a, timezone: Europe/Madrid}\nrules:\n  bike: {min_dwell_s: 10}\n"
        "  vending: {min_dwell_s: 20}\n")
    (root / "cam-b.yaml").write_text(
        "camera: {id: cam-b, timezone: Europe/Amsterdam}\ndefault: prohibited\n"
        f"zones:\n  - {{id: bike-bay, type: allowed, kinds: [bike], polygon: {BAY}}}\n"
        "rules:\n  bike: {min_dwell_s: 30}\n")
    config = root / "archive.yaml"
    config.write_text('pattern: "{camera}/{date:%Y%m%d}/{time:%H%M%S}.mp4"\ninclude: ["**/*.mp4", "**/*.txt"]\n'
                      "cameras:\n  cam-a: cam-a.yaml\n  cam-b: cam-b.yaml\n")
    return config
