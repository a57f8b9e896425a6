"""Reading one frame back: the snapshot frame of an event found from cached detections, and a file's
duration for progress bars, without decoding the whole file."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def grab_frame(path: str, pts_s: float) -> np.ndarray | None:
    """The frame `pts_s` after the first one: seek to the keyframe before it and decode forward."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            origin = next((f.time for f in container.decode(stream) if f.time is not None), None)
            if origin is None:
                return None
            target, base = origin + pts_s, stream.time_base
            if base is None:
                return None
            container.seek(int(target / base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if frame.time > target + 1e-3:
                    break  # the seek overshot: decode from the start
                if frame.time >= target - 1e-3:
                    return frame.to_ndarray(format="bgr24")
        with av.open(path) as container:
            for frame in container.decode(container.streams.video[0]):
                if frame.time is not None and frame.time - origin >= pts_s - 1e-3:
                    return frame.to_ndarray(format="bgr24")
    except (av.FFmpegError, OSError):
        return None
    return None


def probe_duration(path: Path) -> float:
    try:
        with av.open(str(path)) as container:
            return (container.duration or 0) / av.time_base
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return 0.0
