"""One archive file through the model: the expensive, embarrassingly parallel half of a re-scan.

A re-scan splits `scan` in two. This half decodes one file at the sampling rate and runs the model in
batches, keeping per sampled frame its time, detections and whether the scene changed since the previous
frame (plus tiny thumbnails of the first and last frame, so a scene change across a file boundary is
decided exactly as `scan` would). It depends only on the file, the model and the sampling, never on
zones or rules or other files, so any worker (a process, a Ray task on another machine) can do any file
in any order, and its result is cached in the manifest: redrawing zones or changing rules re-uses it.
The cheap half, feeding these detections through one `CameraPipeline` per camera in time order, is
`detector.apps.rescan.assemble`. The static-scene gate runs here, per file, exactly as `scan` runs it
(a file's first frame is always inferred), so a re-scan's events equal a scan's.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from detector.apps.step import InferenceStep
from detector.camera.scene import THUMB, SceneChangeDetector
from detector.detections import Detections, Frame
from detector.errors import SourceError
from detector.model.compiled import for_runtime
from detector.model.detector import Detector, use_cores
from detector.model.weights import LoadedCard, load_card
from detector.video.file import VideoSource
from detector.video.prefetch import prefetch
from detector.video.sampling import SampleMode


@dataclass(frozen=True)
class FileJob:
    """What a worker needs to detect one file; plain values, so it pickles to processes and Ray tasks."""

    path: str
    timezone: str
    start: datetime | None  # from the file name; None: from the file's metadata
    card: str  # model card path
    weights: str | None  # weights override
    fps: float
    mode: str
    batch: int
    recheck_s: float = 0.0  # the static-scene gate, as scan's --static-recheck-s
    runtime: str = "pytorch"  # see detector.model.compiled
    threads: int | None = None  # torch threads of the worker; None: leave as set


@dataclass
class FileResult:
    path: str
    ok: bool
    problem: str | None = None
    start_time: datetime | None = None
    video_s: float = 0.0
    frames: int = 0
    blob: bytes = b""
    wall_s: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)


@dataclass
class FileDetections:
    """The per-frame record of one file (see `pack`/`unpack`)."""

    pts: np.ndarray  # (n,) seconds from the first frame
    size: tuple[int, int]  # (width, height)
    scene: np.ndarray  # (n,) bool: scene changed since the previous frame of this file
    first: np.ndarray  # THUMB-sized BGR of the first and last frame
    last: np.ndarray
    frame: np.ndarray  # (m,) frame index of each box
    xyxy: np.ndarray
    confidence: np.ndarray
    class_name: np.ndarray
    kind: np.ndarray
    inferred: np.ndarray  # (n,) bool: the model ran on this frame (else the last inferred frame's boxes hold)
    data: dict[str, np.ndarray]  # (m, width) each: the kinds' per-box columns (see Detections.data)

    def detections(self) -> list[Detections]:
        bounds = np.searchsorted(self.frame, np.arange(len(self.pts) + 1))
        return [
            Detections(xyxy=self.xyxy[a:b], confidence=self.confidence[a:b],
                       class_name=self.class_name[a:b].astype(object), kind=self.kind[a:b].astype(object),
                       data={name: column[a:b] for name, column in self.data.items()})
            for a, b in pairwise(bounds)
        ]


CORE = frozenset({"pts", "size", "scene", "first", "last", "frame", "xyxy", "confidence", "class_name", "kind",
                  "inferred"})  # a record's other arrays are per-box data columns, under their own names


def pack(d: FileDetections) -> bytes:
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {
        "pts": d.pts, "size": np.array(d.size), "scene": d.scene, "first": d.first, "last": d.last, "frame": d.frame,
        "xyxy": d.xyxy, "confidence": d.confidence, "class_name": d.class_name.astype(str),
        "kind": d.kind.astype(str), "inferred": d.inferred, **d.data}
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def unpack(blob: bytes) -> FileDetections:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return FileDetections(pts=z["pts"], size=(int(z["size"][0]), int(z["size"][1])), scene=z["scene"],
                              first=z["first"], last=z["last"], frame=z["frame"], xyxy=z["xyxy"],
                              confidence=z["confidence"], class_name=z["class_name"], kind=z["kind"],
                              inferred=z["inferred"] if "inferred" in z else np.ones(len(z["pts"]), dtype=bool),
                              data={name: z[name] for name in z.files if name not in CORE})


_DETECTORS: dict[tuple[str, str | None, str], Detector] = {}


def detector_for(card: str, weights: str | None, threads: int | None = None, runtime: str = "pytorch") -> Detector:
    """One loaded model per worker process (Ray re-uses its workers across tasks), on `threads` threads.

    Threads are set after loading, since loading may size torch's pool to the whole machine, which
    oversubscribes it when several workers share it.
    """
    key = (card, weights, runtime)
    if key not in _DETECTORS:
        _DETECTORS[key] = Detector(for_runtime(load_card(card, weights=weights), runtime))
    if threads:
        use_cores(threads)
    return _DETECTORS[key]


@dataclass
class _Observed:
    """What phase 1 keeps of the frames as they are decoded, besides detections."""

    pts: list[float] = field(default_factory=list)
    scene: list[bool] = field(default_factory=list)
    thumbs: list[np.ndarray] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)
    last: np.ndarray | None = None

    def frames(self, source: VideoSource, key: str) -> Iterator[tuple[str, Frame]]:
        detector = SceneChangeDetector()
        for frame in source:
            assert frame.image is not None
            if not self.pts:
                self.size = frame.size
                self.thumbs.append(cv2.resize(frame.image, THUMB, interpolation=cv2.INTER_AREA))
            self.pts.append(frame.pts_s)
            self.scene.append(detector.update(frame.image))
            self.last = frame.image
            yield key, frame


def detect_file(job: FileJob, detector: Detector | None = None) -> FileResult:
    """Decode and detect one file; a file that cannot be read completely is a failed result, not an error."""
    began = time.perf_counter()
    result = FileResult(path=job.path, ok=False)
    try:
        source = VideoSource(job.path, tz=ZoneInfo(job.timezone), fps=job.fps, mode=SampleMode(job.mode),
                             start=job.start)
    except SourceError as e:
        result.problem = str(e)
        return result
    detector = detector or detector_for(job.card, job.weights, job.threads, job.runtime)
    seen = _Observed()
    step = InferenceStep(detector.detect, batch=job.batch, recheck_s=job.recheck_s)
    found: list[Detections] = []
    inferred: list[bool] = []
    for _, _, dets in step.run(prefetch(seen.frames(source, job.path), size=2 * job.batch)):
        found.append(dets if dets is not None else Detections())
        inferred.append(dets is not None)
    result.start_time = source.start_time
    result.video_s = source.report.decoded_until_s
    result.frames = len(seen.pts)
    result.wall_s = time.perf_counter() - began
    result.stages = {"model": step.watch.seconds["model"], "decode+rest": result.wall_s - step.watch.seconds["model"]}
    if source.report.problems:
        problems = "; ".join(source.report.problems)
        result.problem = f"{job.path}: {problems} — skipped; fix: re-encode or replace the file"
        return result
    if seen.last is not None:
        seen.thumbs.append(cv2.resize(seen.last, THUMB, interpolation=cv2.INTER_AREA))
    result.blob = pack(_record(seen, found, inferred))
    result.ok = True
    return result


def _record(seen: _Observed, found: list[Detections], inferred: list[bool]) -> FileDetections:
    boxes = Detections.merge(found) if found else Detections()
    empty = np.zeros((THUMB[1], THUMB[0], 3), np.uint8)
    return FileDetections(
        pts=np.array(seen.pts, dtype=np.float64), size=seen.size, scene=np.array(seen.scene, dtype=bool),
        first=seen.thumbs[0] if seen.thumbs else empty, last=seen.thumbs[-1] if seen.thumbs else empty,
        frame=np.repeat(np.arange(len(found)), [len(d) for d in found]).astype(np.int32),
        xyxy=boxes.xyxy, confidence=boxes.confidence, class_name=np.array(list(boxes.class_name), dtype=str),
        kind=np.array(list(boxes.kind), dtype=str), inferred=np.array(inferred, dtype=bool),
        data=boxes.data,
    )


def loaded_job_args(loaded: LoadedCard) -> tuple[str, str | None]:
    """The card and weights as paths a worker on this or another machine can load."""
    return str(loaded.path.resolve()), str(loaded.weights_path.resolve())
