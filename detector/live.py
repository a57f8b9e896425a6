"""A live camera reader: one thread per camera that keeps its stream open and hands out sampled frames.

The reader owns the connection: it opens the source (retrying with capped exponential backoff and
jitter while it is down), decodes only what the sampling rate needs (keyframes only when they come
often enough), converts only the sampled frames, drops flat (black, grey, "no signal") pictures and
frames decoded before the first keyframe, and stamps each frame with the wall-clock time in the
camera's time zone. `Watchdog` restarts a reader that stalls or whose picture froze; a stuck read
only ever blocks its own thread.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import av
import cv2
import numpy as np

from detector.types import Frame
from detector.watchconfig import LiveCamera, Reconnect
from detector.watchconfig import Watchdog as WatchdogSettings

log = logging.getLogger(__name__)

ARRIVAL_FORMATS = {"mpjpeg"}  # containers whose timestamps say nothing of when frames were taken
RESTAMP_S = 5.0  # stream time this far behind the wall clock is re-anchored to it
FLAT_STD = 3.0  # grey-level standard deviation below which a picture is a placeholder, not a scene


class State(StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    BACKOFF = "backoff"
    STOPPED = "stopped"


@dataclass
class ReaderStats:
    """Read by /healthz and /metrics from other threads; plain attributes, written by the reader."""

    state: State = State.CONNECTING
    frames: int = 0  # sampled frames handed out
    reconnects: int = 0  # times the stream came back after it was lost
    errors: int = 0  # failed opens and reads
    watchdog_restarts: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: {"flat": 0, "before_keyframe": 0, "frozen": 0})
    last_frame_at: float | None = None  # time.time() of the last sampled frame
    last_error: str | None = None
    fps: float = 0.0  # sampled frames per second, smoothed
    keyframes_only: bool = False
    connect_s: float | None = None  # from the start of the last successful attempt to its first frame


def is_flat(image: np.ndarray) -> bool:
    """A black, grey or single-colour picture (a camera's placeholder) carries nothing to detect."""
    small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
    return float(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).std()) < FLAT_STD


def backoff_s(attempt: int, settings: Reconnect, rng: random.Random) -> float:
    """Exponential in the number of failed attempts in a row, capped, then jittered."""
    base = min(settings.max_s, settings.initial_s * 2 ** max(attempt - 1, 0))
    return base * (1 + settings.jitter * (2 * rng.random() - 1))


class LiveReader:
    """Keeps one camera's stream open and calls `deliver(camera_id, frame)` for each sampled frame."""

    def __init__(self, camera: LiveCamera, fps: float, reconnect: Reconnect, watchdog: WatchdogSettings,
                 deliver: Callable[[str, Frame], None]) -> None:
        self.camera_id = camera.camera.id
        self.url = camera.source
        self.uri = camera.public_source
        self.is_file = camera.is_file
        self.tz: ZoneInfo = camera.camera.tz
        self.fps = fps
        self.reconnect = reconnect
        self.watchdog = watchdog
        self.deliver = deliver
        self.stats = ReaderStats()
        self._stop = threading.Event()
        self._generation = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self._index = 0
        self.attempt_started = time.monotonic()
        self.frozen_since: float | None = None
        self._gap: float | None = None

    def start(self) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
            self.attempt_started = time.monotonic()
            self._thread = threading.Thread(target=self._run, args=(generation,), name=f"read-{self.camera_id}",
                                            daemon=True)
            self._thread.start()

    def restart(self, reason: str) -> None:
        """Abandon the current connection (its thread exits when its read returns) and open a new one."""
        log.warning("%s: watchdog restarts the source: %s", self.camera_id, reason,
                    extra={"camera": self.camera_id, "reason": reason})
        self.stats.watchdog_restarts += 1
        self.stats.state = State.CONNECTING
        self.frozen_since = None
        self.start()

    def request_stop(self) -> None:
        """Tell the reader to stop without waiting (stop many readers at once, then join them)."""
        self._stop.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self.stats.state = State.STOPPED
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _run(self, generation: int) -> None:
        failures = 0
        streamed_before = self.stats.frames > 0
        while self._current(generation):
            self.stats.state = State.CONNECTING
            self.attempt_started = time.monotonic()
            got_frames = False
            try:
                for_frames = self._stream(generation)
                for _ in for_frames:
                    if not got_frames:
                        got_frames = True
                        failures = 0
                        self.stats.connect_s = round(time.monotonic() - self.attempt_started, 3)
                        if streamed_before:
                            self.stats.reconnects += 1
                        log.info("%s: streaming from %s", self.camera_id, self.uri,
                                 extra={"camera": self.camera_id, "event": "streaming"})
                        streamed_before = True
                if not self._current(generation):
                    return
                reason = "end of stream"
            except (av.FFmpegError, OSError, ValueError, RuntimeError) as e:
                reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            if not self._current(generation):
                return
            if self.is_file and reason == "end of stream" and got_frames:
                streamed_before = False  # a test file loops at once, like a camera that never stops
                continue
            failures += 1
            self.stats.errors += 1
            self.stats.last_error = reason
            self.stats.state = State.BACKOFF
            wait = backoff_s(failures, self.reconnect, self._rng)
            log.warning("%s: source lost or unreachable (%s); retry %d in %.1fs", self.camera_id, reason,
                        failures, wait, extra={"camera": self.camera_id, "event": "source_down"})
            if self._stop.wait(wait):
                return

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
            period = 1.0 / self.fps
            next_t: float | None = None
            last_key_t: float | None = None
            last_key_arrival = 0.0
            seen_key = False
            wall_origin = time.monotonic()
            pts_origin: float | None = None
            last_hash = b""
            self.stats.keyframes_only = False
            by_arrival = not self.is_file and container.format.name in ARRIVAL_FORMATS
            anchor: tuple[datetime, float] | None = None  # (wall-clock time, stream time) of the first frame
            for packet in container.demux(stream):
                if not self._current(generation):
                    return
                if packet.is_keyframe and packet.pts is not None and packet.time_base is not None:
                    t_key = float(packet.pts * packet.time_base)
                    arrived = time.monotonic()
                    # Keyframes at least as often as we sample (by their timestamps and, live, by their
                    # arrival, as some streams' timestamps are made up): skip decoding everything else.
                    often = last_key_t is not None and 0 < t_key - last_key_t <= period * 1.01
                    if often and not self.is_file:
                        often = arrived - last_key_arrival <= period * 1.01
                    if often and not self.stats.keyframes_only:
                        stream.codec_context.skip_frame = "NONKEY"
                        self.stats.keyframes_only = True
                    last_key_t, last_key_arrival = t_key, arrived
                    seen_key = True
                for frame in packet.decode():
                    t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
                    if t is None:
                        t = time.monotonic() - wall_origin
                    if pts_origin is None:
                        pts_origin = t
                    rel = t - pts_origin
                    if self.is_file:  # play a file at its own pace, as a camera would
                        delay = wall_origin + rel - time.monotonic()
                        if delay > 0 and self._stop.wait(delay):
                            return
                    # Sampled by timestamps (HLS arrives in bursts of a segment), except where the
                    # timestamps are made up (HTTP MJPEG is stamped 25 fps whatever it sends): by arrival.
                    clock = time.monotonic() - wall_origin if by_arrival else rel
                    if next_t is not None and clock + 1e-6 < next_t:
                        continue
                    next_t = clock + period if next_t is None or next_t + period <= clock else next_t + period
                    if not seen_key:
                        self.stats.rejected["before_keyframe"] += 1
                        continue
                    image = frame.to_ndarray(format="bgr24")
                    if is_flat(image):
                        self.stats.rejected["flat"] += 1
                        continue
                    digest = hashlib.blake2b(image[::8, ::8].tobytes(), digest_size=16).digest()
                    now = time.monotonic()
                    if digest == last_hash:
                        self.frozen_since = self.frozen_since or now
                        if now - self.frozen_since >= self.watchdog.frozen_s:
                            self.stats.rejected["frozen"] += 1
                            continue  # the watchdog restarts the source; a frozen picture is not news
                    else:
                        self.frozen_since = None
                    last_hash = digest
                    self._index += 1
                    wall = datetime.now(self.tz)
                    if by_arrival:
                        stamp = wall
                    else:  # wall-clock time of the first frame plus the stream's own time since then
                        stamp = anchor[0] + timedelta(seconds=rel - anchor[1]) if anchor else wall
                        # Never in the future (a backlog read in a burst), never far behind (a clock jump).
                        if anchor is None or stamp > wall or (wall - stamp).total_seconds() > RESTAMP_S:
                            anchor, stamp = (wall, rel), wall
                    self._hand_out(Frame(image=image, pts_s=rel, time=stamp, source_uri=self.uri, index=self._index),
                                   generation)
                    yield
        finally:
            container.close()

    def _hand_out(self, frame: Frame, generation: int) -> None:
        if not self._current(generation):
            return
        now = time.time()
        stats = self.stats
        if stats.last_frame_at is not None:  # smoothed gap, then its inverse: bursts do not inflate it
            gap = min(max(now - stats.last_frame_at, 1e-3), 60.0)
            self._gap = gap if self._gap is None else 0.9 * self._gap + 0.1 * gap
            stats.fps = 1 / self._gap
        stats.last_frame_at = now
        stats.frames += 1
        stats.state = State.STREAMING
        self.deliver(self.camera_id, frame)


class Watchdog:
    """Restarts readers with no frame for `no_frame_s` (stalled, or hung in a read) or a frozen picture."""

    def __init__(self, readers: dict[str, LiveReader], settings: WatchdogSettings, interval_s: float = 1.0) -> None:
        self.readers = readers
        self.settings = settings
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def check(self) -> None:
        now = time.monotonic()
        for reader in list(self.readers.values()):
            state = reader.stats.state
            if state in (State.BACKOFF, State.STOPPED):
                continue
            last = reader.stats.last_frame_at
            since_frame = time.time() - last if last is not None else float("inf")
            since_attempt = now - reader.attempt_started
            if min(since_frame, since_attempt) > self.settings.no_frame_s:
                reader.restart(f"no frame for {self.settings.no_frame_s:g}s")
            elif reader.frozen_since is not None and now - reader.frozen_since > self.settings.frozen_s:
                reader.restart(f"picture frozen for {self.settings.frozen_s:g}s")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # the watchdog must outlive any one bad check
                log.exception("watchdog check failed")
