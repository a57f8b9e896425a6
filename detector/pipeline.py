"""The flow of one camera: detections -> zones -> tracks -> dwell -> events -> snapshots and store.

`CameraPipeline` holds one camera's state and is fed (frame, detections) pairs, so a file scan, a live
worker and an archive re-scan differ only in where frames come from and how inference is batched.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from detector.config import CameraConfig
from detector.errors import SourceError
from detector.events import Event, EventManager
from detector.inference import Detector
from detector.modelcard import LoadedCard
from detector.rules import DwellRule
from detector.scene import ChangeGate, SceneChangeDetector
from detector.snapshots import SnapshotWriter
from detector.sources import SampleMode, SourceReport, VideoSource
from detector.store import EventStore, JsonlLog
from detector.tracking import IouTracker
from detector.types import Detections, Frame
from detector.zones import ZoneFilter

log = logging.getLogger(__name__)


class Stopwatch:
    """Seconds spent per stage, for the run summary and the benchmark."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds

    def time(self, stage: str) -> _Timer:
        return _Timer(self, stage)


class _Timer:
    def __init__(self, watch: Stopwatch, stage: str) -> None:
        self.watch, self.stage = watch, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.watch.add(self.stage, time.perf_counter() - self.start)


class StoreSink:
    """Writes an event's snapshots before the store row that points at them; JSONL line on close.

    Snapshot files are rewritten when a better frame shows up, at most every `snapshot_every_s` of
    video time while open, and always at close.
    """

    def __init__(self, store: EventStore, jsonl: JsonlLog, snapshots: SnapshotWriter,
                 snapshot_every_s: float = 30.0, watch: Stopwatch | None = None,
                 remember_closed: bool = False) -> None:
        self.watch = watch or Stopwatch()
        self.store = store
        self.jsonl = jsonl
        self.snapshots = snapshots
        self.snapshot_every_s = snapshot_every_s
        self._dirty: dict[str, Event] = {}
        self._written_at: dict[str, datetime] = {}
        self.remember_closed = remember_closed  # a scan reports its events; a months-long worker must not
        self.closed_ids: list[str] = []

    def opened(self, event: Event) -> None:
        self._snapshot(event)
        self._dirty[event.id] = event

    def updated(self, event: Event) -> None:
        written = self._written_at.get(event.id)
        if event.best_dirty and (written is None or (event.last_seen - written).total_seconds()
                                 >= self.snapshot_every_s):
            self._snapshot(event)
        self._dirty[event.id] = event

    def closed(self, event: Event) -> None:
        self._snapshot(event)
        self._dirty.pop(event.id, None)
        self._written_at.pop(event.id, None)
        with self.watch.time("store"):
            self.store.upsert([event])
            self.jsonl.append(event)
        if self.remember_closed:
            self.closed_ids.append(event.id)

    def flush(self) -> None:
        """One transaction for all events changed by a frame."""
        if self._dirty:
            with self.watch.time("store"):
                self.store.upsert(list(self._dirty.values()))
            self._dirty.clear()

    def _snapshot(self, event: Event) -> None:
        if event.best_dirty:
            with self.watch.time("snapshots"):
                self.snapshots.write(event)
            self._written_at[event.id] = event.last_seen


class CameraPipeline:
    """One camera's zones, tracks, dwell and events; `process()` one frame's detections at a time."""

    def __init__(self, camera: CameraConfig, loaded: LoadedCard, sink: Any, *, static_recheck_s: float = 0.0) -> None:
        self.camera = camera
        self.sink = sink
        self.gate = ChangeGate(recheck_s=static_recheck_s)
        self._last_detections = Detections()
        close_after = {k.value: r.close_after_s for k, r in camera.rules.items()}
        self.zones = ZoneFilter(camera)
        self.tracker = IouTracker(max_age_s=close_after)
        self.dwell = DwellRule(camera.rules)
        self.scene = SceneChangeDetector()
        self.events = EventManager(
            camera_id=camera.camera.id,
            model={"card": loaded.card.name, "sha256": loaded.model_sha256},
            close_after_s=close_after,
            category=lambda class_name, kind: loaded.card.category(class_name, kind),
            sink=sink,
        )
        self.last_time: datetime | None = None

    def needs_inference(self, frame: Frame) -> bool:
        """False when the frame shows the same scene as the last inferred one (see ChangeGate)."""
        return self.gate.needs_inference(frame.image, frame.time.timestamp())

    def process(self, frame: Frame, dets: Detections | None) -> None:
        """`dets` None: the frame was not inferred, the last inferred frame's detections still hold."""
        dets = self._last_detections if dets is None else dets
        self._last_detections = dets
        if self.last_time is not None and frame.time < self.last_time:
            log.warning("%s: time went back from %s to %s; ending open events",
                        frame.source_uri, self.last_time, frame.time)
            self.end()
        if self.scene.update(frame.image):
            log.info("%s: scene change at %.1fs; ending open events", frame.source_uri, frame.pts_s)
            self.end()
        self.last_time = frame.time
        dets = self.zones.filter(self.dwell.filter(dets), frame.size, frame.time)
        dets = self.tracker.update(dets, frame.time)
        self.events.update(self.dwell.update(dets, frame.time), frame)
        self.dwell.forget([t.id for t in self.tracker.expire(frame.time)])
        self.events.close_stale(frame.time)
        self.sink.flush()

    def end(self) -> None:
        """The input ended or the scene changed: every open event closes at its last sighting."""
        self.events.close_all()
        self.tracker.clear()
        self.dwell.placements.clear()
        self.sink.flush()


def prefetch(frames: Iterable[Frame], size: int) -> Iterator[Frame]:
    """Decode in a thread while the caller infers (PyAV and torch both release the GIL)."""
    buffer: queue.Queue[Frame | BaseException | None] = queue.Queue(maxsize=size)
    stop = threading.Event()

    def work() -> None:
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        buffer.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(None)
        except BaseException as e:  # handed to the consumer, raised there
            buffer.put(e)

    thread = threading.Thread(target=work, name="decode", daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


@dataclass
class ScanResult:
    events: list[dict[str, Any]]
    reports: list[SourceReport]
    failed: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    inferred: int = 0  # sampled frames that went through the model
    skipped: int = 0  # sampled frames whose scene had not changed

    @property
    def video_s(self) -> float:
        return sum(r.decoded_until_s for r in self.reports)


def open_sources(
    videos: list[Path], camera: CameraConfig, fps: float, mode: SampleMode, start: datetime | None,
    failed: list[str],
) -> list[VideoSource]:
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
            sources.append(VideoSource(video, tz=camera.camera.tz, fps=fps, mode=mode, start=start))
        except SourceError as e:
            log.error("%s", e)
            failed.append(str(e))
    return sources if start is not None else sorted(sources, key=lambda s: s.start_time)


def scan(
    videos: list[Path],
    camera: CameraConfig,
    loaded: LoadedCard,
    out_dir: Path,
    *,
    fps: float = 2.0,
    mode: SampleMode = SampleMode.FPS,
    start: datetime | None = None,
    batch_size: int = 4,
    static_recheck_s: float = 10.0,
    detector: Detector | None = None,
    progress: Callable[[VideoSource], Any] | None = None,
) -> ScanResult:
    """Scan video files of one camera into `out_dir` (events.sqlite, events.jsonl, snapshots/).

    `static_recheck_s` > 0 skips inference on frames unchanged since the last inferred one, re-checking
    at least that often (see ChangeGate); 0 infers every sampled frame.
    """
    began = time.perf_counter()
    watch = Stopwatch()
    failed: list[str] = []
    sources = open_sources(videos, camera, fps, mode, start, failed)
    result = ScanResult(events=[], reports=[s.report for s in sources], failed=failed)
    if not sources:
        result.wall_s = time.perf_counter() - began
        return result
    detector = detector or Detector(loaded)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = EventStore(out_dir / "events.sqlite")
    jsonl = JsonlLog(out_dir / "events.jsonl")
    sink = StoreSink(store, jsonl, SnapshotWriter(out_dir, camera), watch=watch, remember_closed=True)
    pipeline = CameraPipeline(camera, loaded, sink, static_recheck_s=static_recheck_s)
    try:
        for source in sources:
            _scan_source(source, detector, pipeline, watch, batch_size, progress)
    finally:
        # Also on Ctrl-C: open events close at their last sighting, so nothing is left half-done.
        with watch.time("pipeline"):
            pipeline.end()
        jsonl.rewrite(store.events())
        run_ids = set(sink.closed_ids)
        result.events = [e for e in store.events() if e["id"] in run_ids]
        store.close()
    result.wall_s = time.perf_counter() - began
    result.stages = {**watch.seconds, **detector.timings}
    result.inferred, result.skipped = pipeline.gate.inferred, pipeline.gate.skipped
    return result


def _scan_source(source: VideoSource, detector: Detector, pipeline: CameraPipeline, watch: Stopwatch,
                 batch_size: int, progress: Callable[[VideoSource], Any] | None) -> None:
    bar = progress(source) if progress else None
    batch: list[Frame] = []
    try:
        for frame in prefetch(_timed(source, watch), size=2 * batch_size):
            batch.append(frame)
            if len(batch) == batch_size:
                _run_batch(batch, detector, pipeline, watch, bar)
                batch = []
        _run_batch(batch, detector, pipeline, watch, bar)
    finally:
        if bar is not None:
            bar.close()
    for problem in source.report.problems:
        log.warning("%s: %s", source.uri, problem)


def _timed(source: VideoSource, watch: Stopwatch) -> Iterator[Frame]:
    iterator = iter(source)
    while True:
        start = time.perf_counter()
        try:
            frame = next(iterator)
        except StopIteration:
            return
        finally:
            watch.add("decode", time.perf_counter() - start)
        yield frame


def _run_batch(batch: list[Frame], detector: Detector, pipeline: CameraPipeline, watch: Stopwatch,
               bar: Any) -> None:
    if not batch:
        return
    with watch.time("gate"):
        todo = [pipeline.needs_inference(frame) for frame in batch]
    with watch.time("model"):
        found = iter(detector.detect([f.image for f, infer in zip(batch, todo, strict=True) if infer]))
    for frame, infer in zip(batch, todo, strict=True):
        with watch.time("pipeline"):
            pipeline.process(frame, next(found) if infer else None)
    if bar is not None:
        bar.update(len(batch))
