"""The sampling policy and clock that file sources and live readers share.

Violations last minutes, so a source keeps a few frames per second (default 2) and converts only
those. The clock keeps the first frame, then the first frame at or after each period; when it falls
behind (sparse keyframes, a gap in the stream) it restarts from the frame it kept. Times are the
container's presentation timestamps, never frame counts, so variable-rate video stays right. When
keyframes come at least once a period, decoding keyframes alone gives the same samples for a fraction
of the work: `keyframes_suffice` is that decision, for a file probed ahead and a stream watched live.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from detector.config.camera import CameraConfig

KEYFRAME_SLACK = 1.01  # keyframe gaps up to 1 % over the period still count as "every period"
SAMPLES_PER_DWELL = 20  # the default rate gives the shortest dwell this many samples
MAX_AUTO_FPS = 2.0


class SampleMode(StrEnum):
    FPS = "fps"  # decode every frame, convert the sampled ones
    REFS = "refs"  # skip frames no other frame refers to, convert the sampled ones
    KEYFRAMES = "keyframes"  # decode keyframes only
    AUTO = "auto"  # keyframes when they come at least as often as the sampling asks, else refs


SKIP_FRAME: dict[SampleMode, Literal["NONKEY", "NONREF"]] = {SampleMode.KEYFRAMES: "NONKEY",
                                                             SampleMode.REFS: "NONREF"}
"""The decoder's `skip_frame` setting for the modes that skip decoding (fps mode decodes everything)."""


def fps_for_dwell(min_dwell_s: float) -> float:
    """The default sampling rate: `SAMPLES_PER_DWELL` samples within the shortest dwell, at most 2 fps.

    Violations are static: a bike that must stay 60 s is confirmed as well from 20 samples as from 120,
    and one sample every 3 s lets a file with keyframes every 2-3 s be decoded at its keyframes alone.
    """
    return min(MAX_AUTO_FPS, SAMPLES_PER_DWELL / min_dwell_s)


def keyframes_suffice(gap_s: float | None, period_s: float) -> bool:
    """Whether keyframes `gap_s` apart give a frame every sampling period."""
    return gap_s is not None and 0 < gap_s <= period_s * KEYFRAME_SLACK


def frame_seconds(frame: Any, fallback_s: float) -> float:
    """A decoded frame's presentation time in seconds, or `fallback_s` when it carries none."""
    if frame.pts is not None and frame.time_base is not None:
        return float(frame.pts * frame.time_base)
    return fallback_s


class SampleClock:
    """`take(t)` says whether the frame at `t` seconds (on any clock that only moves forward) is sampled."""

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.period = 1.0 / fps
        self._next: float | None = None

    def take(self, t: float) -> bool:
        if self._next is not None and t + 1e-6 < self._next:
            return False
        behind = self._next is None or self._next + self.period <= t
        self._next = t + self.period if behind else self._next + self.period  # type: ignore[operator]
        return True


class StreamTime:
    """Seconds since a stream's first frame, from presentation timestamps (the first frame is 0)."""

    def __init__(self) -> None:
        self.origin: float | None = None

    def relative(self, t: float) -> float:
        if self.origin is None:
            self.origin = t
        return t - self.origin


def sampling_rate(camera: CameraConfig, fps: float | None) -> tuple[float, str]:
    """`--fps`, else the rate the camera's rules need (see `fps_for_dwell`); and why, for the summary."""
    if fps is not None:
        return fps, f"{fps:g} fps (--fps)"
    whose, dwell = camera.shortest_dwell()
    fps = fps_for_dwell(dwell)
    why = f"{SAMPLES_PER_DWELL} samples within the shortest dwell, {whose} {dwell:g} s"
    return fps, f"{fps:.3g} fps ({why})"
