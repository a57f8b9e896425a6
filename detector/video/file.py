"""Video files as frame sources: decode a file and hand out frames at the sampling rate.

A file source samples with the clock of `detector.video.sampling` and converts only the frames it keeps:
in `fps` mode every packet is decoded (P-frames need their references) but only sampled frames are
converted to BGR; `refs` mode also skips decoding the frames no other frame refers to (non-reference
B-frames: 1.6-1.9x faster on x264/x265 files, decoded frames at most ~0.1 s apart); in `keyframes` mode
the decoder skips every non-key frame. (Skipping *all* B-frames is not safe: x265 codes most P-frames
as B-slices, which would leave only keyframes.)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import av

from detector.detections import Frame
from detector.errors import SourceError
from detector.video.sampling import SKIP_FRAME, SampleClock, SampleMode, StreamTime, frame_seconds, keyframes_suffice

log = logging.getLogger(__name__)


@dataclass
class SourceReport:
    """What a source managed to read, for the run summary."""

    uri: str
    duration_s: float | None = None
    decoded_until_s: float = 0.0
    frames_decoded: int = 0
    frames_sampled: int = 0
    mode: str = ""  # the sampling mode used (auto resolved)
    keyframe_gap_s: float | None = None  # largest keyframe gap found by auto mode's probe
    problems: list[str] = field(default_factory=list)


class VideoSource:
    """Sampled frames of one video file, with wall-clock times in the camera's time zone."""

    def __init__(
        self,
        path: str | Path,
        *,
        tz: ZoneInfo,
        fps: float = 2.0,
        mode: SampleMode = SampleMode.FPS,
        start: datetime | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.path = Path(path)
        self.tz = tz
        self.fps = fps
        self.mode = mode
        if not self.path.exists():
            raise SourceError("video not found", path=self.path, fix="check the path")
        if not self.path.is_file() or not os.access(self.path, os.R_OK):
            raise SourceError("video is not a readable file", path=self.path, fix="check permissions")
        self._uri = str(self.path.resolve())
        self._container = self._open()
        if not self._container.streams.video:
            self._container.close()
            raise SourceError("has no video stream", path=self.path, fix="pass a video file")
        self._stream = self._container.streams.video[0]
        self.report = SourceReport(uri=self.uri, duration_s=self._duration())
        self.start_time = self._start_time(start)
        if mode == SampleMode.AUTO:
            interval = self.report.keyframe_gap_s = self.keyframe_interval()
            self.mode = SampleMode.KEYFRAMES if keyframes_suffice(interval, 1.0 / fps) else SampleMode.REFS
            log.info("%s: keyframe every %ss; sampling mode %s", self.path, interval, self.mode.value)
        self.report.mode = self.mode.value

    def keyframe_interval(self, probe_s: float = 12.0) -> float | None:
        """Largest gap between keyframes in the first `probe_s` seconds, from packets only (no decoding)."""
        stream = self._stream
        keys: list[float] = []
        try:
            for packet in self._container.demux(stream):
                if packet.pts is None or packet.time_base is None:
                    continue
                t = float(packet.pts * packet.time_base)
                if packet.is_keyframe:
                    keys.append(t)
                if keys and t - keys[0] > probe_s:
                    break
        except av.FFmpegError:
            keys = []  # a damaged start: leave it to the decoder to report
        finally:
            # Back to the start by reopening, not seeking: a seek to 0 in an MPEG-TS file whose 33-bit
            # timestamps wrap lands after the wrap, and everything before it would be lost.
            self._container.close()
            self._container = self._open()
            self._stream = self._container.streams.video[0]
        if len(keys) < 2:
            return None
        keys.sort()
        return max(b - a for a, b in pairwise(keys))

    def _open(self) -> av.container.InputContainer:
        try:
            return av.open(str(self.path), mode="r")
        except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
            raise SourceError(
                f"cannot be read as a video ({_reason(e)})",
                path=self.path,
                fix="check the file is a complete video; re-encode it with ffmpeg if it is damaged",
            ) from None

    @property
    def uri(self) -> str:
        """The file's identity in events and manifests: its resolved path, however it was spelled."""
        return self._uri

    def _duration(self) -> float | None:
        s = self._stream
        if s.duration is not None and s.time_base is not None:
            return float(s.duration * s.time_base)
        if self._container.duration is not None:
            return self._container.duration / av.time_base
        return None

    def _start_time(self, start: datetime | None) -> datetime:
        """--start, else the container's creation time, else the file's mtime minus its duration."""
        if start is not None:
            return start if start.tzinfo else start.replace(tzinfo=self.tz)
        created = self._container.metadata.get("creation_time") or self._stream.metadata.get("creation_time")
        if created:
            try:
                parsed = datetime.fromisoformat(created.replace("Z", "+00:00"))
                return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(self.tz)
            except ValueError:
                log.warning("%s: ignoring unparseable creation_time %r", self.path, created)
        mtime = datetime.fromtimestamp(self.path.stat().st_mtime, tz=self.tz)
        return mtime - timedelta(seconds=self.report.duration_s or 0.0)

    def __iter__(self) -> Iterator[Frame]:
        stream = self._stream
        stream.thread_type = "AUTO"
        if self.mode in SKIP_FRAME:
            stream.codec_context.skip_frame = SKIP_FRAME[self.mode]
        clock, stream_time = SampleClock(self.fps), StreamTime()
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        last_t = 0.0
        count = 0
        try:
            for frame in self._container.decode(stream):
                last_t = rel = stream_time.relative(frame_seconds(frame, count / rate))
                count += 1
                if not clock.take(rel):
                    continue  # decoded for its references, never converted
                image = frame.to_ndarray(format="bgr24")
                self.report.frames_sampled += 1
                yield Frame(
                    image=image,
                    pts_s=rel,
                    time=self.start_time + timedelta(seconds=rel),
                    source_uri=self.uri,
                    index=self.report.frames_sampled - 1,
                )
        except av.FFmpegError as e:
            self.report.problems.append(f"decoding stopped at {last_t:.1f}s ({_reason(e)})")
        finally:
            self.report.decoded_until_s = last_t
            self.report.frames_decoded = count
            self._container.close()
        self._report_end(count, last_t, clock.period)

    def close(self) -> None:
        """Let the file go without reading it (only its start time or report was wanted)."""
        self._container.close()

    def _report_end(self, count: int, last_t: float, period: float) -> None:
        duration = self.report.duration_s
        if count == 0:
            self.report.problems.append("no frame could be decoded")
        elif duration and last_t < duration - max(2.0, 2 * period) and not self.report.problems:
            self.report.problems.append(f"video ends at {last_t:.1f}s of {duration:.1f}s (truncated?)")


def _reason(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return str(text).strip().splitlines()[0] if text else type(error).__name__


def open_sources(videos: list[Path], tz: ZoneInfo, fps: float, mode: SampleMode, start: datetime | None,
                 failed: list[str]) -> list[VideoSource]:
    """Open every video, reporting (not raising) those that cannot be read, in time order.

    With `start`, the videos are one recording split in parts: the first starts at `start` and each
    next one where the previous ended, in the order given. Without it, each has its own start time.
    """
    sources: list[VideoSource] = []
    for video in videos:
        if start is not None and sources:
            previous = sources[-1]
            start = previous.start_time + timedelta(seconds=previous.report.duration_s or 0.0)
        try:
            sources.append(VideoSource(video, tz=tz, fps=fps, mode=mode, start=start))
        except SourceError as e:
            log.error("%s", e)
            failed.append(str(e))
    return sources if start is not None else sorted(sources, key=lambda s: s.start_time)
