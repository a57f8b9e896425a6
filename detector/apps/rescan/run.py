"""Re-scan a video archive: resumable, idempotent, in parallel on this machine or on a Ray cluster.

Design (why two phases). `CameraPipeline` continues an event across consecutive files only when it is
fed the files of a camera in time order, one after the other; a worker pool scanning files in parallel
cannot share that state, and a run resumed after a crash would start it empty. So a re-scan splits
`scan` where the cost is:

1. **detect** (`detector.apps.rescan.detect`, ~all of the time): each file independently -> per-frame detections,
   in any order, on any worker. Each result is committed to the manifest in its own transaction, so a
   run killed with `kill -9` loses at most the files in flight; a re-run skips files whose manifest row
   matches (path, size, and mtime or the hash of the first and last MiB) for this detection setup
   (model card, weights, sampling, static-scene gate).
2. **assemble** (`detector.apps.rescan.assemble`, cheap: no decoding but one seek per event for its
   snapshot): per camera, the cached detections of all its files in start-time order through one
   `CameraPipeline`, exactly as `scan` would see them, so an event spanning two files is one event.
   Its events replace the camera's previous ones in one transaction (`EventStore.commit_run`), so an
   interrupted assembly leaves the previous state, and a re-run gives the same events as an
   uninterrupted run.

A scan run is one camera under one setup (detection setup + camera file hash); re-scanning with another
model or other rules makes a new run whose commit marks the old run and its events superseded (kept in
`scan_events`), and removes them from `events`. Changing only zones or rules re-uses phase 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from detector.apps.rescan.archive import ArchiveFile, fingerprint, walk
from detector.apps.rescan.assemble import assemble
from detector.apps.rescan.detect import FileJob, FileResult, loaded_job_args
from detector.apps.rescan.engines import auto_workers, run_local, run_ray
from detector.camera.suppress import Hits
from detector.config.archive import Archive, load_archive
from detector.config.camera import CameraConfig
from detector.config.sinks import SinkConfig, merge_sinks, sinks_from_urls
from detector.errors import StreetwatchError
from detector.model.compiled import for_runtime, resolve_runtime, runtime_identity
from detector.model.weights import LoadedCard, load_card
from detector.output.delivery import delivery_lines, undelivered
from detector.output.outputs import Outputs
from detector.output.store import EventStore, open_store
from detector.output.suppressions import SuppressionRows
from detector.video.sampling import sampling_rate
from detector.video.seek import probe_duration

log = logging.getLogger(__name__)


@dataclass
class RescanReport:
    files_total: int = 0
    done: list[str] = field(default_factory=list)  # detected in this run
    skipped: list[str] = field(default_factory=list)  # unchanged since an earlier run
    failed: list[str] = field(default_factory=list)  # one line each: the file, what is wrong, the fix
    ignored: list[str] = field(default_factory=list)  # not matching the pattern or of unknown cameras
    assembled: list[str] = field(default_factory=list)  # cameras whose events were (re)built
    kept: list[str] = field(default_factory=list)  # files unreadable now whose earlier detections still stand
    events: dict[str, Counter[str]] = field(default_factory=dict)  # camera -> kind -> current events
    video_s: float = 0.0  # video detected in this run
    wall_s: float = 0.0
    delivery: dict[str, dict[str, int]] = field(default_factory=dict)  # sink id -> outbox status -> messages
    suppressed: int = 0  # events left out: an operator had rejected the object before

    @property
    def video_hours_per_wall_hour(self) -> float:
        return self.video_s / self.wall_s if self.wall_s else 0.0


@dataclass(frozen=True)
class Setup:
    """How phase 1 detects: sampling, batching and the static-scene gate (as `scan`'s options)."""

    fps: float = 2.0
    mode: str = "auto"
    batch: int = 8
    recheck_s: float = 10.0
    runtime: str = "pytorch"  # see detector.model.compiled; the CLI's default is auto


RECORD_FORMAT = 2  # 2: records carry each vending box's vendor (rules.vending.vendor_stays needs it)


def detect_key(loaded: LoadedCard, setup: Setup) -> str:
    """What phase 1 depends on: the card (classes, thresholds, size), the weights, the sampling, the gate."""
    key = {"record": RECORD_FORMAT, "card": loaded.card.model_dump(mode="json"), "weights": loaded.model_sha256,
           "fps": setup.fps,
           **({"runtime": runtime_identity(setup.runtime)} if setup.runtime != "pytorch" else {}),
           "mode": setup.mode, "recheck_s": setup.recheck_s}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def rules_hash(camera: CameraConfig) -> str:
    return hashlib.sha256(camera.model_dump_json().encode()).hexdigest()


def rescan(
    archive: Archive,
    loaded: LoadedCard,
    store: EventStore,
    *,
    out_dir: Path | None,
    setup: Setup = Setup(),
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    force: bool = False,
    progress: Callable[[int, float], Any] | None = None,
    sinks: list[SinkConfig] | None = None,
    deliver_timeout_s: float = 30.0,
) -> RescanReport:
    """Detect new or changed files, then rebuild the events of cameras whose files changed.

    With `sinks` (added to each camera file's), a rebuilt camera's events are reported as `opened` and
    `closed` messages; their ids are those of an earlier run of the same input, so only new events go out.
    """
    began = time.perf_counter()
    report = RescanReport()
    source, loaded = loaded, for_runtime(loaded, setup.runtime)  # workers compile (or find) the same export
    key = detect_key(source, setup)  # the source model and the runtime, not the export's path or bytes
    files, report.ignored = walk(archive)
    report.files_total = len(files)
    manifest = store.scan_files(key)
    todo = _changed(files, manifest, report, force)
    card, weights = loaded_job_args(source)
    jobs = [FileJob(path=str(f.path), timezone=archive.cameras[f.camera_key].timezone, start=f.start,
                    card=card, weights=weights, fps=setup.fps, mode=setup.mode, batch=setup.batch,
                    recheck_s=setup.recheck_s, runtime=setup.runtime) for f in todo]
    bars = progress(len(jobs), sum(probe_duration(f.path) for f in todo) / 3600) if progress and jobs else None
    routes = {c.id: merge_sinks(sinks or [], c.sinks) for c in archive.cameras.values()}
    with Outputs(store, out_dir, routes) as outputs:  # before any detection: a missing secret fails now
        results = run_ray(jobs, address) if engine == "ray" else run_local(jobs, workers or auto_workers())
        try:
            _record(results, {str(f.path): f for f in todo}, manifest, archive, loaded, store, key, report, bars)
        finally:
            results.close()  # an error or Ctrl-C: the engine cancels what has not started
            if bars:
                bars.close()
        _assemble(archive, files, loaded, outputs, key, setup, force, report)
        report.delivery = outputs.finish(deliver_timeout_s)
    report.wall_s = time.perf_counter() - began
    return report


def _changed(files: list[ArchiveFile], manifest: dict[str, dict[str, Any]], report: RescanReport,
             force: bool) -> list[ArchiveFile]:
    """The files to detect: new, or changed since the manifest row of this setup (size, mtime, fingerprint)."""
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
    return todo


def _record(results: Iterator[FileResult], by_path: dict[str, ArchiveFile], manifest: dict[str, dict[str, Any]],
            archive: Archive, loaded: LoadedCard, store: EventStore, key: str, report: RescanReport, bars: Any) -> None:
    """Each file's result into the manifest, in its own transaction, as it finishes.

    A file that read well before and fails now (half-synced, damaged) keeps its manifest row: its earlier
    detections still stand, so the camera's committed events are never rebuilt without it.
    """
    for result in results:
        f = by_path[result.path]
        before = manifest.get(result.path)
        if not result.ok and before is not None and before["status"] != "failed":
            report.failed.append(result.problem or f"{result.path}: failed")
            report.kept.append(f"{result.path}: unreadable now; its detections of {before['scanned_at']} are kept "
                               "until it reads again")
            log.error("%s (its earlier detections are kept)", result.problem)
            if bars:
                bars.update(result)
            continue
        camera = archive.cameras[f.camera_key]
        store.record_file({
            "path": result.path, "detect_key": key, "camera_id": camera.id, "size": f.size,
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


def _assemble(archive: Archive, files: list[ArchiveFile], loaded: LoadedCard, outputs: Outputs, key: str,
              setup: Setup, force: bool, report: RescanReport) -> None:
    """Rebuild, in one transaction per camera, the events of cameras whose files or rules changed."""
    store = outputs.store
    rejected = SuppressionRows(store)
    manifest = store.scan_files(key)
    params = json.dumps({"fps": setup.fps, "mode": setup.mode, "recheck_s": setup.recheck_s, "detect_key": key},
                        sort_keys=True)
    for camera_key, camera in archive.cameras.items():
        camera_id = camera.id
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
            hits: dict[str, Hits] = {}
            events = assemble(camera, loaded, inputs, outputs.snapshots(camera), rejected.of(camera_id), hits)
            report.suppressed += sum(h.tracks for h in hits.values())
            run = {"id": run_id, "camera_id": camera_id, "model_card": loaded.card.name,
                   "weights_sha256": loaded.model_sha256, "rules_sha256": rules, "params": params,
                   "files_digest": digest, "finished_at": datetime.now().astimezone().isoformat(timespec="seconds")}
            outputs.commit_run(run, camera, events, [r["path"] for r in rows], key)
            rejected.record(hits)  # (a rebuild of the same files counts its left-out events again)
            report.assembled.append(camera_id)
        report.events[camera_id] = Counter(json.loads(e["event"])["kind"] for e in store.scan_events(run_id))


def current_events(store: EventStore, camera_ids: list[str]) -> list[dict[str, Any]]:
    """The events of the cameras' current re-scan runs, in time order."""
    ids = {r["id"] for r in store.scan_runs() if r["camera_id"] in camera_ids and r["status"] == "current"}
    events = [json.loads(e["event"]) for e in store.scan_events() if e["run_id"] in ids]
    return sorted(events, key=lambda e: (e["first_seen"], e["id"]))


def run_cli(args: argparse.Namespace) -> int:
    """`streetwatch rescan`: exit 0 done, 1 some files failed (the rest was scanned), 2 nothing could be done."""
    if args.out is None and args.db is None:
        raise StreetwatchError("rescan needs --out DIR or --db URL", fix="add --out out/rescan")
    archive = load_archive(args.archive, args.cameras)
    loaded = load_card(args.model, weights=args.weights)
    loaded.weights_path  # noqa: B018 - a missing file is an error before any decoding
    store = open_store(args.db or args.out / "events.sqlite")
    show = sys.stderr.isatty() and not args.no_progress
    try:
        # One rate for the archive: the fastest any camera's rules need.
        fps = args.fps or max(sampling_rate(c, None)[0] for c in archive.cameras.values())
        setup = Setup(fps=fps, mode=args.sample, batch=max(1, args.batch), recheck_s=args.static_recheck_s,
                      runtime=resolve_runtime(args.runtime))
        report = rescan(archive, loaded, store, out_dir=args.out, setup=setup, engine=args.engine,
                        address=args.address, workers=args.workers, force=args.force,
                        progress=(lambda n, h: _RescanBars(n, h)) if show else None,
                        sinks=sinks_from_urls(args.sink), deliver_timeout_s=args.deliver_timeout)
    finally:
        store.close()
    print_report(report, as_json=args.json)
    return 1 if report.failed or undelivered(report.delivery) else 0


def print_report(report: RescanReport, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"files": report.files_total, "done": len(report.done), "skipped": len(report.skipped),
                          "failed": report.failed, "kept": report.kept, "ignored": report.ignored,
                          "assembled": report.assembled,
                          "events": report.events, "video_s": report.video_s, "wall_s": report.wall_s,
                          "delivery": report.delivery, "suppressed": report.suppressed}))
    else:
        lines = [f"files: {report.files_total} found, {len(report.done)} scanned, {len(report.skipped)} unchanged "
                 f"(skipped), {len(report.failed)} failed, {len(report.ignored)} not matching the archive file"]
        lines += [f"error: {failure}" for failure in report.failed]
        lines += [f"kept: {kept}" for kept in report.kept]
        lines += [f"{'camera':<20}{'kind':<10}{'events':>6}"]
        lines += [f"{camera:<20}{kind:<10}{n:>6}" for camera, kinds in sorted(report.events.items())
                  for kind, n in sorted(kinds.items())]
        lines.append(f"video: {report.video_s / 3600:.3f} h scanned in {report.wall_s / 3600:.4f} h wall "
                     f"({report.video_hours_per_wall_hour:.1f} video-hours per wall-hour); "
                     f"events rebuilt for: {', '.join(report.assembled) or 'none (nothing changed)'}")
        if report.suppressed:
            lines.append(f"suppressed: {report.suppressed} event(s) of objects an operator rejected before")
        print("\n".join(lines + delivery_lines(report.delivery)))


class _RescanBars:
    """Two bars with ETA: files, and hours of video."""

    def __init__(self, files: int, hours: float) -> None:
        from tqdm import tqdm

        self.files = tqdm(total=files, desc="files", unit="file", position=0)
        self.hours = tqdm(total=round(hours, 3), desc="video", unit="h", position=1,
                          bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.3f}/{total:.3f} h [{elapsed}<{remaining}]")

    def update(self, result: Any) -> None:
        self.files.update(1)
        self.hours.update(round(result.video_s / 3600, 6))

    def close(self) -> None:
        self.files.close()
        self.hours.close()
