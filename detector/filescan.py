"""One archive file through the model: the expensive, embarrassingly parallel half of a re-scan.

A re-scan splits `scan` in two. This half decodes one file at the sampling rate and runs the model in
batches, keeping per sampled frame its time, detections and whether the scene changed since the previous
frame (plus tiny thumbnails of the first and last frame, so a scene change across a file boundary is
decided exactly as `scan` would). It depends only on the file, the model and the sampling, never on
zones or rules or other files, so any worker (a process, a Ray task on another machine) can do any file
in any order, and its result is cached in the manifest: redrawing zones or changing rules re-uses it.
The cheap half, feeding these detections through one `CameraPipeline` per camera in time order, is
`detector.rescan.assemble`.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from detector.errors import SourceError
from detector.inference import Detector, use_cores
from detector.modelcard import LoadedCard, load_card
from detector.pipeline import prefetch
from detector.scene import THUMB, SceneChangeDetector
from detector.sources import SampleMode, VideoSource
from detector.types import Detections, Frame


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

    def detections(self) -> list[Detections]:
        bounds = np.searchsorted(self.frame, np.arange(len(self.pts) + 1))
        return [
            Detections(xyxy=self.xyxy[a:b], confidence=self.confidence[a:b],
                       class_name=self.class_name[a:b].astype(object), kind=self.kind[a:b].astype(object))
            for a, b in pairwise(bounds)
        ]


def pack(d: FileDetections) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, pts=d.pts, size=np.array(d.size), scene=d.scene, first=d.first, last=d.last, frame=d.frame,
        xyxy=d.xyxy, confidence=d.confidence, class_name=d.class_name.astype(str), kind=d.kind.astype(str),
    )
    return buffer.getvalue()


def unpack(blob: bytes) -> FileDetections:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return FileDetections(pts=z["pts"], size=(int(z["size"][0]), int(z["size"][1])), scene=z["scene"],
                              first=z["first"], last=z["last"], frame=z["frame"], xyxy=z["xyxy"],
                              confidence=z["confidence"], class_name=z["class_name"], kind=z["kind"])


_DETECTORS: dict[tuple[str, str | None], Detector] = {}


def detector_for(card: str, weights: str | None, threads: int | None = None) -> Detector:
    """One loaded model per worker process (Ray re-uses its workers across tasks), on `threads` threads.

    Threads are set after loading, since loading may size torch's pool to the whole machine, which
    oversubscribes it when several workers share it.
    """
    key = (card, weights)
    if key not in _DETECTORS:
        _DETECTORS[key] = Detector(load_card(card, weights=weights))
    if threads:
        use_cores(threads)
    return _DETECTORS[key]


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
    detector = detector or detector_for(job.card, job.weights, job.threads)
    scene = SceneChangeDetector()
    pts: list[float] = []
    flags: list[bool] = []
    found: list[Detections] = []
    thumbs: list[np.ndarray] = []
    size = (0, 0)
    infer_s = 0.0

    def run(batch: list[Frame]) -> None:
        nonlocal infer_s
        if batch:
            start = time.perf_counter()
            found.extend(detector.detect([f.image for f in batch]))
            infer_s += time.perf_counter() - start

    batch: list[Frame] = []
    for frame in prefetch(source, size=2 * job.batch):
        if not pts:
            size = frame.size
            thumbs.append(cv2.resize(frame.image, THUMB, interpolation=cv2.INTER_AREA))
        pts.append(frame.pts_s)
        flags.append(scene.update(frame.image))
        last_image = frame.image
        batch.append(frame)
        if len(batch) == job.batch:
            run(batch)
            batch = []
    run(batch)
    result.start_time = source.start_time
    result.video_s = source.report.decoded_until_s
    result.frames = len(pts)
    result.wall_s = time.perf_counter() - began
    result.stages = {"model": infer_s, "decode+rest": result.wall_s - infer_s}
    if source.report.problems:
        problems = "; ".join(source.report.problems)
        result.problem = f"{job.path}: {problems} — skipped; fix: re-encode or replace the file"
        return result
    thumbs.append(cv2.resize(last_image, THUMB, interpolation=cv2.INTER_AREA))
    boxes = Detections.merge(found) if found else Detections()
    record = FileDetections(
        pts=np.array(pts, dtype=np.float64), size=size, scene=np.array(flags, dtype=bool), first=thumbs[0],
        last=thumbs[-1], frame=np.repeat(np.arange(len(found)), [len(d) for d in found]).astype(np.int32),
        xyxy=boxes.xyxy, confidence=boxes.confidence, class_name=np.array(list(boxes.class_name), dtype=str),
        kind=np.array(list(boxes.kind), dtype=str),
    )
    result.blob = pack(record)
    result.ok = True
    return result


def loaded_job_args(loaded: LoadedCard) -> tuple[str, str | None]:
    """The card and weights as paths a worker on this or another machine can load."""
    return str(loaded.path.resolve()), str(loaded.weights_path.resolve())
