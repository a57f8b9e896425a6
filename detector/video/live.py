"""A live camera reader: one thread per camera that keeps its stream open and hands out sampled frames.

The reader owns the connection: it opens the source (retrying with capped exponential backoff and
jitter while it is down), decodes only what the sampling rate needs (keyframes only when they come
often enough), converts only the sampled frames, drops flat (black, grey, "no signal") pictures and
frames decoded before the first keyframe, and stamps each frame with the wall-clock time in the
camera's time zone. A stuck read only ever blocks its own thread.

Its state has several writers (the reader thread, the watchdog restarting it, a thread abandoned by a
restart whose read has not returned yet), so every change passes one lock and names the generation
of the connection it comes from: changes from an abandoned generation are dropped. Readers of the
state (`/healthz`, `/metrics`, the watchdog) get a frozen `ReaderStats`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import av
import cv2
import numpy as np

from detector.config.watch import LiveCamera, Reconnect
from detector.config.watch import Watchdog as WatchdogSettings
from detector.detections import Frame
from detector.redact import redact
from detector.video.sampling import KEYFRAME_SLACK, SampleClock, StreamTime, frame_seconds, keyframes_suffice

log = logging.getLogger(__name__)

ARRIVAL_FORMATS = {"mpjpeg"}  # containers whose timestamps say nothing of when frames were taken
RESTAMP_S = 5.0  # stream time this far behind the wall clock is re-anchored to it
FLAT_STD = 3.0  # grey-level standard deviation below which a picture is a placeholder, not a scene
READ_ERRORS = (av.FFmpegError, OSError, ValueError, RuntimeError)  # a stream that failed, not a bug


class State(StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    BACKOFF = "backoff"
    FAILED = "failed"  # the reader thread died of an unexpected error; the watchdog restarts it
    STOPPED = "stopped"


@dataclass(frozen=True)
class ReaderStats:
    """One reader's state at one moment; a new object on every change, so it is safe to share."""

    state: State = State.CONNECTING
    frames: int = 0  # sampled frames handed out
    reconnects: int = 0  # times the stream came back after it was lost
    errors: int = 0  # failed opens and reads
    watchdog_restarts: int = 0
    deaths: int = 0  # reader threads that died of an unexpected error
    rejected: dict[str, int] = field(default_factory=lambda: {"flat": 0, "before_keyframe": 0, "frozen": 0})
    last_frame_at: float | None = None  # time.time() of the last sampled frame
    last_error: str | None = None
    fps: float = 0.0  # sampled frames per second, smoothed
    keyframes_only: bool = False
    connect_s: float | None = None  # from the start of the last successful attempt to its first frame
    attempt_started: float = field(default_factory=time.monotonic)  # monotonic start of the current attempt
    frozen_since: float | None = None  # monotonic time since which the picture has been bit-identical


def is_flat(image: np.ndarray) -> bool:
    """A black, grey or single-colour picture (a camera's placeholder) carries nothing to detect."""
    small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
    return float(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).std()) < FLAT_STD


def backoff_s(attempt: int, settings: Reconnect, rng: random.Random) -> float:
    """Exponential in the number of failed attempts in a row, capped, then jittered."""
    base = min(settings.max_s, settings.initial_s * 2 ** max(attempt - 1, 0))
    return base * (1 + settings.jitter * (2 * rng.random() - 1))


def _first_line(error: BaseException) -> str:
    """The error as one line for /healthz and logs, without the credentials of the URL it may repeat."""
    text = str(error)
    return redact(f"{type(error).__name__}: {text.splitlines()[0] if text else ''}")


class _Stamper:
    """Wall-clock times for stream times: the first frame's wall time plus the stream's own time since.

    Never in the future (a backlog read in a burst) and never far behind (a clock jump): then it
    re-anchors to the wall clock. Streams whose timestamps are made up are stamped on arrival.
    """

    def __init__(self, tz: ZoneInfo, by_arrival: bool) -> None:
        self.tz, self.by_arrival = tz, by_arrival
        self._anchor: tuple[datetime, float] | None = None

    def stamp(self, rel: float) -> datetime:
        wall = datetime.now(self.tz)
        if self.by_arrival:
            return wall
        anchor = self._anchor
        stamp = anchor[0] + timedelta(seconds=rel - anchor[1]) if anchor else wall
        if anchor is None or stamp > wall or (wall - stamp).total_seconds() > RESTAMP_S:
            self._anchor, stamp = (wall, rel), wall
        return stamp


class LiveReader:
    """Keeps one camera's stream open and calls `deliver(camera_id, frame)` for each sampled frame."""

    def __init__(self, camera: LiveCamera, fps: float, reconnect: Reconnect, watchdog: WatchdogSettings,
                 deliver: Callable[[str, Frame], None]) -> None:
        self.camera_id = camera.id
        self.url = camera.source
        self.uri = camera.public_source
        self.is_file = camera.is_file
        self.tz: ZoneInfo = camera.tz
        self.fps = fps
        self.reconnect = reconnect
        self.watchdog = watchdog
        self.deliver = deliver
        self._stats = ReaderStats()
        self._stop = threading.Event()
        self._generation = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self._index = 0

    # -- state, under the lock ---------------------------------------------------------------------

    @property
    def stats(self) -> ReaderStats:
        with self._lock:
            return self._stats

    def _change(self, generation: int | None, *counts: str, **values: Any) -> bool:
        """Add one to each of `counts` and set `values`, unless the change comes from an abandoned
        generation (None: from the watchdog or `stop()`, always applied)."""
        with self._lock:
            if generation is not None and (generation != self._generation or self._stop.is_set()):
                return False
            stats = self._stats
            self._stats = replace(stats, **values, **{name: getattr(stats, name) + 1 for name in counts})
            return True

    def _reject(self, generation: int, reason: str) -> None:
        with self._lock:
            if generation == self._generation and not self._stop.is_set():
                rejected = self._stats.rejected
                self._stats = replace(self._stats, rejected={**rejected, reason: rejected[reason] + 1})

    def _current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation and not self._stop.is_set()

    def alive(self) -> bool:
        """Whether the reader thread of the current connection is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        """A new generation and its thread; the caller holds the lock."""
        if self._stop.is_set():
            return
        self._generation += 1
        self._stats = replace(self._stats, attempt_started=time.monotonic(), frozen_since=None)
        self._thread = threading.Thread(target=self._run, args=(self._generation,), name=f"read-{self.camera_id}",
                                        daemon=True)
        self._thread.start()

    def restart(self, reason: str) -> None:
        """Abandon the current connection (its thread exits when its read returns) and open a new one:
        counted and started in one step, so the abandoned thread cannot write in between."""
        log.warning("%s: watchdog restarts the source: %s", self.camera_id, reason,
                    extra={"camera": self.camera_id, "reason": reason})
        with self._lock:
            if self._stop.is_set():
                return
            died = not self.alive()
            stats = self._stats
            self._stats = replace(stats, state=State.CONNECTING, watchdog_restarts=stats.watchdog_restarts + 1,
                                  deaths=stats.deaths + died)
            self._start_locked()

    def next_index(self, generation: int) -> int | None:
        """The next frame's ordinal, or None for a frame of an abandoned connection."""
        with self._lock:
            if generation != self._generation or self._stop.is_set():
                return None
            self._index += 1
            return self._index

    def request_stop(self) -> None:
        """Tell the reader to stop without waiting (stop many readers at once, then join them)."""
        self._stop.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._change(None, state=State.STOPPED)
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- the reader thread -------------------------------------------------------------------------

    def _run(self, generation: int) -> None:
        try:
            self._connect_loop(generation)
        except Exception as e:  # a bug, not a bad stream: record it and die; the watchdog restarts the reader
            log.exception("%s: reader failed", self.camera_id, extra={"camera": self.camera_id, "event": "failed"})
            error = f"reader failed: {_first_line(e)}"
            self._change(generation, "errors", state=State.FAILED, last_error=error)

    def _connect_loop(self, generation: int) -> None:
        failures = 0
        streamed_before = self.stats.frames > 0
        while self._current(generation):
            began = time.monotonic()
            self._change(generation, state=State.CONNECTING, attempt_started=began)
            got_frames = False
            try:
                for _ in self._stream(generation):
                    if not got_frames:
                        got_frames, failures = True, 0
                        self._connected(generation, began, streamed_before)
                        streamed_before = True
                reason = "end of stream"
            except READ_ERRORS as e:
                reason = _first_line(e)
            if not self._current(generation):
                return
            if self.is_file and reason == "end of stream" and got_frames:
                streamed_before = False  # a test file loops at once, like a camera that never stops
                continue
            failures += 1
            wait = backoff_s(failures, self.reconnect, self._rng)
            self._change(generation, "errors", last_error=reason, state=State.BACKOFF)
            log.warning("%s: source lost or unreachable (%s); retry %d in %.1fs", self.camera_id, reason,
                        failures, wait, extra={"camera": self.camera_id, "event": "source_down"})
            if self._stop.wait(wait):
                return

    def _connected(self, generation: int, began: float, streamed_before: bool) -> None:
        connect_s = round(time.monotonic() - began, 3)
        self._change(generation, *(("reconnects",) if streamed_before else ()), connect_s=connect_s)
        log.info("%s: streaming from %s", self.camera_id, self.uri,
                 extra={"camera": self.camera_id, "event": "streaming"})

    def _open(self) -> Any:
        # Probe 1 s of stream, not FFmpeg's default 5 s: that is most of the time to the first frame.
        options = {} if self.is_file else {"analyzeduration": "1000000", "probesize": "1000000"}
        if self.url.lower().startswith("rtsp"):
            options["rtsp_transport"] = "tcp"
        return av.open(self.url, mode="r", options=options,
                       timeout=(self.reconnect.open_timeout_s, self.reconnect.read_timeout_s))

    def _stream(self, generation: int) -> Iterator[None]:
        """Yields once per delivered frame; returns at end of stream or when this generation is replaced."""
        container = self._open()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            by_arrival = not self.is_file and container.format.name in ARRIVAL_FORMATS
            sample = _LiveSampling(self, generation, stream, by_arrival)
            self._change(generation, keyframes_only=False)
            for packet in container.demux(stream):
                if not self._current(generation):
                    return
                sample.packet(packet)
                for frame in packet.decode():
                    rel = sample.time_of(frame)
                    if self.is_file and not sample.pace(rel):
                        return
                    out = sample.frame(frame, rel)
                    if out is not None:
                        self._hand_out(out, generation, sample.rate())
                        yield
        finally:
            container.close()

    def _hand_out(self, frame: Frame, generation: int, fps: float) -> None:
        if self._change(generation, "frames", last_frame_at=time.time(), fps=fps, state=State.STREAMING):
            self.deliver(self.camera_id, frame)


class _LiveSampling:
    """One connection's sampling: the shared clock, keyframe-only decoding, and the picture checks."""

    def __init__(self, reader: LiveReader, generation: int, stream: Any, by_arrival: bool) -> None:
        self.reader, self.generation, self.stream = reader, generation, stream
        self.by_arrival = by_arrival
        self.clock = SampleClock(reader.fps)
        self.stream_time = StreamTime()
        self.stamper = _Stamper(reader.tz, by_arrival)
        self.wall_origin = time.monotonic()
        self.last_key: tuple[float, float] | None = None  # (stream time, arrival) of the last keyframe
        self.seen_key = False
        self.last_hash = b""
        self.last_out: float | None = None  # time.time() of the last frame handed out
        self.gap: float | None = None

    def packet(self, packet: Any) -> None:
        """Keyframes at least once a period (by their timestamps and, live, by their arrival, as some
        streams' timestamps are made up): stop decoding everything else."""
        if not (packet.is_keyframe and packet.pts is not None and packet.time_base is not None):
            return
        t_key, arrived = float(packet.pts * packet.time_base), time.monotonic()
        period = self.clock.period
        if self.last_key is not None and not self.reader.stats.keyframes_only:
            often = keyframes_suffice(t_key - self.last_key[0], period)
            if often and not self.reader.is_file:
                often = arrived - self.last_key[1] <= period * KEYFRAME_SLACK
            if often:
                self.stream.codec_context.skip_frame = "NONKEY"
                self.reader._change(self.generation, keyframes_only=True)
        self.last_key = (t_key, arrived)
        self.seen_key = True

    def time_of(self, frame: Any) -> float:
        """Seconds since the connection's first frame; frames without timestamps get their arrival time."""
        return self.stream_time.relative(frame_seconds(frame, time.monotonic() - self.wall_origin))

    def pace(self, rel: float) -> bool:
        """Play a file at its own pace, as a camera would; False when the reader is told to stop."""
        delay = self.wall_origin + rel - time.monotonic()
        return not (delay > 0 and self.reader._stop.wait(delay))

    def frame(self, frame: Any, rel: float) -> Frame | None:
        """The sampled frame, converted and stamped, or None for a frame not sampled or not worth sending."""
        reader, generation = self.reader, self.generation
        # Sampled by timestamps (HLS arrives in bursts of a segment), except where the timestamps are
        # made up (HTTP MJPEG is stamped 25 fps whatever it sends): by arrival.
        if not self.clock.take(time.monotonic() - self.wall_origin if self.by_arrival else rel):
            return None
        if not self.seen_key:
            reader._reject(generation, "before_keyframe")
            return None
        image = frame.to_ndarray(format="bgr24")
        if is_flat(image):
            reader._reject(generation, "flat")
            return None
        if self._frozen(image):
            reader._reject(generation, "frozen")
            return None  # the watchdog restarts the source; a frozen picture is not news
        index = reader.next_index(generation)
        if index is None:
            return None
        return Frame(image=image, pts_s=rel, time=self.stamper.stamp(rel), source_uri=reader.uri, index=index)

    def rate(self) -> float:
        """Frames handed out per second, smoothed over gaps so bursts do not inflate it."""
        now = time.time()
        if self.last_out is not None:
            gap = min(max(now - self.last_out, 1e-3), 60.0)
            self.gap = gap if self.gap is None else 0.9 * self.gap + 0.1 * gap
        self.last_out = now
        return 1 / self.gap if self.gap else 0.0

    def _frozen(self, image: np.ndarray) -> bool:
        """Whether the picture has been bit-identical for the watchdog's `frozen_s`."""
        digest = hashlib.blake2b(image[::8, ::8].tobytes(), digest_size=16).digest()
        now = time.monotonic()
        same, self.last_hash = digest == self.last_hash, digest
        since = self.reader.stats.frozen_since
        if not same:
            self.reader._change(self.generation, frozen_since=None)
            return False
        if since is None:
            self.reader._change(self.generation, frozen_since=now)
            return False
        return now - since >= self.reader.watchdog.frozen_s
