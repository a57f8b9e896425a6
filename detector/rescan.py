"""Re-scan a video archive: resumable, idempotent, in parallel on this machine or on a Ray cluster.

Design (why two phases). `CameraPipeline` continues an event across consecutive files only when it is
fed the files of a camera in time order, one after the other; a worker pool scanning files in parallel
cannot share that state, and a run resumed after a crash would start it empty. So a re-scan splits
`scan` where the cost is:

1. **detect** (`detector.filescan`, ~all of the time): each file independently -> per-frame detections,
   in any order, on any worker. Each result is committed to the manifest in its own transaction, so a
   run killed with `kill -9` loses at most the files in flight; a re-run skips files whose manifest row
   matches (path, size, and mtime or the hash of the first and last MiB) for this detection setup
   (model card, weights, sampling).
2. **assemble** (`assemble`, cheap: no decoding but one seek per event for its snapshot): per camera, the
   cached detections of all its files in start-time order through one `CameraPipeline`, exactly as
   `scan` would see them, so an event spanning two files is one event. Its events replace the camera's
   previous ones in one transaction (`EventStore.commit_run`), so an interrupted assembly leaves the
   previous state, and a re-run gives the same events as an uninterrupted run.

A scan run is one camera under one setup (detection setup + camera file hash); re-scanning with another
model or other rules makes a new run whose commit marks the old run and its events superseded (kept in
`scan_events`), and removes them from `events`. Changing only zones or rules re-uses phase 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np

from detector.archive import Archive, ArchiveFile, fingerprint, walk
from detector.config import CameraConfig
from detector.events import Event
from detector.filescan import FileJob, FileResult, detect_file, detector_for, loaded_job_args, unpack
from detector.modelcard import LoadedCard
from detector.pipeline import CameraPipeline
from detector.scene import SceneChangeDetector
from detector.snapshots import SnapshotWriter
from detector.store import EventStore
from detector.types import Frame

log = logging.getLogger(__name__)


@dataclass
class RescanReport:
    files_total: int = 0
    done: list[str] = field(default_factory=list)  # detected in this run
    skipped: list[str] = field(default_factory=list)  # unchanged since an earlier run
    failed: list[str] = field(default_factory=list)  # one line each: the file, what is wrong, the fix
    ignored: list[str] = field(default_factory=list)  # not matching the pattern or of unknown cameras
    assembled: list[str] = field(default_factory=list)  # cameras whose events were (re)built
    events: dict[str, Counter[str]] = field(default_factory=dict)  # camera -> kind -> current events
    video_s: float = 0.0  # video detected in this run
    wall_s: float = 0.0

    @property
    def video_hours_per_wall_hour(self) -> float:
        return self.video_s / self.wall_s if self.wall_s else 0.0


def detect_key(loaded: LoadedCard, fps: float, mode: str) -> str:
    """What phase 1 depends on: the card (classes, thresholds, size), the weights, the sampling."""
    setup = {"card": loaded.card.model_dump(mode="json"), "weights": loaded.model_sha256, "fps": fps, "mode": mode}
    return hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()


def rules_hash(camera: CameraConfig) -> str:
    return hashlib.sha256(camera.model_dump_json().encode()).hexdigest()


def auto_workers(engine: str) -> int:
    """Local worker processes: one per GPU (two, to overlap decoding), else one per 4 cores (torch uses them)."""
    try:
        import torch

        gpus = torch.cuda.device_count()
    except Exception:  # no usable torch CUDA build
        gpus = 0
    if gpus:
        return 2 * gpus
    return max(1, (os.cpu_count() or 1) // 4)


# --- phase 1 engines: yield FileResults as they finish ---

def run_local(jobs: list[FileJob], workers: int) -> Iterator[FileResult]:
    if not jobs:
        return
    if workers <= 1:
        import torch

        before = torch.get_num_threads()
        # Every core for torch (ultralytics would leave it one thread on small machines); restored after.
        detector = detector_for(jobs[0].card, jobs[0].weights, os.cpu_count() or 1)
        try:
            for job in jobs:
                yield detect_file(job, detector)
        finally:
            torch.set_num_threads(before)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(detect_file, replace(job, threads=threads)) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


def run_ray(jobs: list[FileJob], address: str | None, cpus_per_task: float = 1.0) -> Iterator[FileResult]:
    """Each file a Ray task (half a GPU each where the cluster has GPUs, so decoding overlaps inference)."""
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    if not jobs:
        return
    gpus = ray.cluster_resources().get("GPU", 0)
    task = ray.remote(num_cpus=cpus_per_task, num_gpus=0.5 if gpus else 0, max_retries=2)(_ray_detect)
    pending = [task.remote(job) for job in jobs]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


def _ray_detect(job: FileJob) -> FileResult:
    # Ray sets OMP_NUM_THREADS to the task's CPUs.
    return detect_file(replace(job, threads=max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))))


# --- phase 2 ---

class _SceneReplay:
    """Stands in for the pipeline's SceneChangeDetector: the answers were computed in phase 1."""

    def __init__(self) -> None:
        self.flags: Iterator[bool] = iter(())

    def update(self, image: np.ndarray) -> bool:
        return bool(next(self.flags))


class _CollectSink:
    """Keeps closed events and where their best frame is; snapshots are written once, at the end."""

    def __init__(self) -> None:
        self.closed_events: list[Event] = []
        self.best: dict[str, Frame] = {}

    def opened(self, event: Event) -> None:
        pass

    def updated(self, event: Event) -> None:
        pass

    def closed(self, event: Event) -> None:
        if event.best_frame is not None:
            self.best[event.id] = event.best_frame
        self.closed_events.append(event)

    def flush(self) -> None:
        pass


def _blank(size: tuple[int, int]) -> np.ndarray:
    """A frame-shaped image of zero bytes: the pipeline only needs its size (the scene answer is replayed)."""
    width, height = size
    return np.broadcast_to(np.zeros((1, 1, 3), dtype=np.uint8), (height, width, 3))


def assemble(camera: CameraConfig, loaded: LoadedCard, files: list[tuple[str, datetime, bytes]],
             out_dir: Path | None) -> list[Event]:
    """Feed one camera's cached detections, files in start order, through one CameraPipeline."""
    sink = _CollectSink()
    pipeline = CameraPipeline(camera, loaded, sink)
    replay = _SceneReplay()
    pipeline.scene = replay  # type: ignore[assignment]
    boundary = SceneChangeDetector()
    for path, start, blob in files:
        record = unpack(blob)
        if not len(record.pts):
            continue
        flags = record.scene.copy()
        flags[0] = boundary.update(record.first)  # the last frame of the previous file vs this one's first
        boundary.update(record.last)
        replay.flags = iter(flags)
        image = _blank(record.size)
        for index, (pts, dets) in enumerate(zip(record.pts, record.detections(), strict=True)):
            frame = Frame(image=image, pts_s=float(pts), time=start + timedelta(seconds=float(pts)),
                          source_uri=path, index=index)
            pipeline.process(frame, dets)
    pipeline.end()
    events = sorted(sink.closed_events, key=lambda e: (e.first_seen, e.id))
    if out_dir is not None:
        writer = SnapshotWriter(out_dir, camera)
        for event in events:
            where = sink.best.get(event.id)
            image = grab_frame(where.source_uri, where.pts_s) if where else None
            if image is None:
                log.warning("%s: could not decode the snapshot frame of %s", where and where.source_uri, event.id)
                continue
            event.best_frame = Frame(image=image, pts_s=where.pts_s, time=where.time, source_uri=where.source_uri,
                                     index=where.index)
            event.best_dirty = True
            writer.write(event)
            event.best_frame = None
    return events


def grab_frame(path: str, pts_s: float) -> np.ndarray | None:
    """The frame `pts_s` after the first one: seek to the keyframe before it and decode forward."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            origin = next((f.time for f in container.decode(stream) if f.time is not None), None)
            if origin is None:
                return None
            target = origin + pts_s
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
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


# --- the run ---

def probe_duration(path: Path) -> float:
    try:
        with av.open(str(path)) as container:
            return (container.duration or 0) / av.time_base
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return 0.0


def rescan(
    archive: Archive,
    loaded: LoadedCard,
    store: EventStore,
    *,
    out_dir: Path | None,
    fps: float = 2.0,
    mode: str = "auto",
    batch: int = 8,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    force: bool = False,
    progress: Callable[[int, float], Any] | None = None,
) -> RescanReport:
    """Detect new or changed files, then rebuild the events of cameras whose files changed."""
    began = time.perf_counter()
    report = RescanReport()
    key = detect_key(loaded, fps, mode)
    files, report.ignored = walk(archive)
    report.files_total = len(files)
    manifest = store.scan_files(key)
    todo: list[ArchiveFile] = []
    for f in files:
        row = manifest.get(str(f.path))
        if not force and row and row["size"] == f.size and (
                row["mtime"] == f.mtime or row["fingerprint"] == fingerprint(f.path)):
            report.skipped.append(str(f.path))
            if row["status"] == "failed":
                report.failed.append(f"{row['problem']} (unchanged since; --force retries)")
        else:
            todo.append(f)

    card, weights = loaded_job_args(loaded)
    by_path = {str(f.path): f for f in todo}
    jobs = [FileJob(path=str(f.path), timezone=archive.cameras[f.camera_key].camera.timezone, start=f.start,
                    card=card, weights=weights, fps=fps, mode=mode, batch=batch) for f in todo]
    bars = progress(len(jobs), sum(probe_duration(f.path) for f in todo) / 3600) if progress and jobs else None
    results = run_ray(jobs, address) if engine == "ray" else run_local(jobs, workers or auto_workers(engine))
    try:
        for result in results:
            f = by_path[result.path]
            camera = archive.cameras[f.camera_key]
            store.record_file({
                "path": result.path, "detect_key": key, "camera_id": camera.camera.id, "size": f.size,
                "mtime": f.mtime, "fingerprint": fingerprint(f.path), "model_card": loaded.card.name,
                "weights_sha256": loaded.model_sha256, "rules_sha256": None,
                "status": "detected" if result.ok else "failed",
                "start_time": result.start_time.isoformat() if result.start_time else None,
                "video_s": result.video_s, "problem": result.problem, "detections": result.blob if result.ok else None,
                "scanned_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            })
            if result.ok:
                report.done.append(result.path)
                report.video_s += result.video_s
            else:
                report.failed.append(result.problem or f"{result.path}: failed")
                log.error("%s", result.problem)
            if bars:
                bars.update(result)
    finally:
        if bars:
            bars.close()

    manifest = store.scan_files(key)
    params = json.dumps({"fps": fps, "mode": mode, "detect_key": key}, sort_keys=True)
    for camera_key, camera in archive.cameras.items():
        camera_id = camera.camera.id
        rows = sorted((manifest[str(f.path)] for f in files if f.camera_key == camera_key
                       and str(f.path) in manifest and manifest[str(f.path)]["status"] != "failed"),
                      key=lambda r: (datetime.fromisoformat(r["start_time"]), r["path"]))
        rules = rules_hash(camera)
        run_id = f"{camera_id}-{hashlib.sha256((key + rules).encode()).hexdigest()[:12]}"
        digest = hashlib.sha256(json.dumps([(r["path"], r["fingerprint"]) for r in rows]).encode()).hexdigest()
        previous = store.scan_run(run_id)
        if force or not previous or previous["status"] != "current" or previous["files_digest"] != digest:
            inputs = [(r["path"], datetime.fromisoformat(r["start_time"]), store.file_detections(r["path"], key))
                      for r in rows]
            events = assemble(camera, loaded, inputs, out_dir)
            run = {"id": run_id, "camera_id": camera_id, "model_card": loaded.card.name,
                   "weights_sha256": loaded.model_sha256, "rules_sha256": rules, "params": params,
                   "files_digest": digest, "finished_at": datetime.now().astimezone().isoformat(timespec="seconds")}
            store.commit_run(run, events, [r["path"] for r in rows], key)
            report.assembled.append(camera_id)
        report.events[camera_id] = Counter(json.loads(e["event"])["kind"] for e in store.scan_events(run_id))
    report.wall_s = time.perf_counter() - began
    return report


def current_events(store: EventStore, camera_ids: list[str]) -> list[dict[str, Any]]:
    """The events of the cameras' current re-scan runs, in time order."""
    ids = {r["id"] for r in store.scan_runs() if r["camera_id"] in camera_ids and r["status"] == "current"}
    events = [json.loads(e["event"]) for e in store.scan_events() if e["run_id"] in ids]
    return sorted(events, key=lambda e: (e["first_seen"], e["id"]))
