"""Make benchmark clips from the real videos: 1080p25 H.264 and HEVC, a keyframe every 2 s.

    python scripts/make_clips.py [--out out/bench-clips] [--seconds N] [--codec libx264 libx265]

Each source frame is upscaled to 1920x1080 (letterboxed to 16:9) and repeated to 25 fps, so the clip
keeps the real content and timing of the source. Clips already made are reused.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("vtest.avi", "intel-car-detection.mp4")


def fit_16x9(image: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    resized = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((height, width, 3), np.uint8)
    y, x = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    out[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return out


def make_clip(source: Path, target: Path, *, codec: str = "libx264", width: int = 1920, height: int = 1080,
              fps: int = 25, gop_s: float = 2.0, seconds: float | None = None) -> Path:
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial{target.suffix}")
    with av.open(str(source)) as src, av.open(str(partial), "w") as dst:
        stream = dst.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "g": str(round(gop_s * fps)), "keyint_min": str(round(gop_s * fps)),
                          "sc_threshold": "0", "crf": "23"}
        if codec == "libx265":
            stream.options = {"preset": "veryfast", "crf": "26",
                              "x265-params": f"keyint={round(gop_s * fps)}:min-keyint={round(gop_s * fps)}:"
                                             "scenecut=0:log-level=error"}
        index = 0
        for frame in src.decode(video=0):
            t = float(frame.time)
            if seconds is not None and t >= seconds:
                break
            image = fit_16x9(frame.to_ndarray(format="bgr24"), width, height)
            while index / fps < t + 1e-6 or index == 0:
                out = av.VideoFrame.from_ndarray(image, format="bgr24")
                out.pts, out.time_base = index, Fraction(1, fps)
                for packet in stream.encode(out):
                    dst.mux(packet)
                index += 1
        for packet in stream.encode():
            dst.mux(packet)
    partial.replace(target)
    return target


def make_clips(out: Path, shared: Path, *, seconds: float | None = None,
               codecs: tuple[str, ...] = ("libx264", "libx265")) -> list[Path]:
    clips = []
    suffix = f"-{seconds:g}s" if seconds else ""
    for name in SOURCES:
        for codec in codecs:
            tag = "h264" if codec == "libx264" else "hevc"
            clips.append(make_clip(shared / "videos" / name, out / f"{Path(name).stem}-1080p25-{tag}{suffix}.mp4",
                                   codec=codec, seconds=seconds))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench-clips")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--codec", nargs="+", default=["libx264", "libx265"])
    args = parser.parse_args()
    for clip in make_clips(args.out, args.shared, seconds=args.seconds, codecs=tuple(args.codec)):
        print(clip)


if __name__ == "__main__":
    main()
