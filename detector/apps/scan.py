"""`streetwatch scan`: video files of one camera -> events.sqlite, events.jsonl and snapshots/.

Files are opened in time order and fed, frame by frame, through one `CameraPipeline`, so a violation
that runs across consecutive files stays one event; the model runs through the shared `InferenceStep`.
"""

from __future__ import annotations

import argparse
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

from detector.apps.step import InferenceStep
from detector.camera.pipeline import CameraPipeline
from detector.config.camera import CameraConfig, load_camera
from detector.config.sinks import SinkConfig, sinks_from_urls
from detector.detections import Detections, Frame
from detector.errors import StreetwatchError
from detector.model.compiled import for_runtime
from detector.model.detector import Detector
from detector.model.weights import LoadedCard, load_card
from detector.output.delivery import delivery_lines, undelivered
from detector.output.outputs import Outputs
from detector.output.suppressions import SuppressionRows
from detector.timing import Stopwatch, timed
from detector.video.file import SourceReport, VideoSource, open_sources
from detector.video.prefetch import prefetch
from detector.video.sampling import SampleMode, sampling_rate

log = logging.getLogger(__name__)


@dataclass
class ScanResult:
    events: list[dict[str, Any]]
    reports: list[SourceReport]
    failed: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    inferred: int = 0  # sampled frames that went through the model
    skipped: int = 0  # sampled frames whose scene had not changed
    delivery: dict[str, dict[str, int]] = field(default_factory=dict)  # sink id -> outbox status -> messages
    model: str = ""  # the card that ran and on what (the summary says whether the compiled path ran)
    suppressed: int = 0  # objects kept from raising an event by an operator's earlier rejection

    @property
    def video_s(self) -> float:
        return sum(r.decoded_until_s for r in self.reports)


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
    sinks: list[SinkConfig] | None = None,
    deliver_timeout_s: float = 30.0,
) -> ScanResult:
    """Scan video files of one camera into `out_dir` (events.sqlite, events.jsonl, snapshots/).

    `sinks` (default: the camera file's) receive a message per event change through the outbox; at the
    end the scan waits up to `deliver_timeout_s` for them, and what is left stays for `streetwatch deliver`.

    `static_recheck_s` > 0 skips inference on frames unchanged since the last inferred one, re-checking
    at least that often (see ChangeGate); 0 infers every sampled frame. The first frame of each file is
    always inferred, so a file's detections never depend on the file before it (as in `rescan`).
    """
    began = time.perf_counter()
    watch = Stopwatch()
    failed: list[str] = []
    sources = open_sources(videos, camera.tz, fps, mode, start, failed)
    result = ScanResult(events=[], reports=[s.report for s in sources], failed=failed)
    if not sources:
        result.wall_s = time.perf_counter() - began
        return result
    detector = detector or Detector(loaded)
    model = detector.loaded  # the model that runs (a compiled card names itself) is the one events record
    step = InferenceStep(detector.detect, batch=batch_size, recheck_s=static_recheck_s, watch=watch)
    routes = {camera.id: camera.sinks if sinks is None else sinks}  # delivered while the scan runs
    with Outputs.open(out_dir / "events.sqlite", out_dir, routes, watch=watch) as outputs:
        recorder = outputs.recorder(camera, remember_closed=True)
        rejected = SuppressionRows(outputs.store)
        pipeline = CameraPipeline(camera, model.card, recorder, model_sha256=model.model_sha256,
                                  suppressions=rejected.of(camera.id))
        try:
            for source in sources:
                _scan_source(source, step, pipeline, watch, progress)
        finally:  # also on Ctrl-C: open events close at their last sighting, so nothing is left half-done
            with watch.time("pipeline"):
                pipeline.end()
            rejected.record(pipeline.suppression_hits())
            run_ids = set(recorder.closed_ids)
            result.events = [e for e in outputs.write_final() if e["id"] in run_ids]
            # after Ctrl-C, no wait: what is left stays in the outbox
            result.delivery = outputs.finish(0.0 if sys.exc_info()[1] else deliver_timeout_s)
    result.wall_s = time.perf_counter() - began
    result.stages = {**watch.seconds, **detector.timings}
    result.inferred, result.skipped = step.counts(camera.id)
    result.model = f"{model.card.name} on {detector.runtime}"
    result.suppressed = pipeline.stats().suppressed
    return result


def _scan_source(source: VideoSource, step: InferenceStep[Detections], pipeline: CameraPipeline, watch: Stopwatch,
                 progress: Callable[[VideoSource], Any] | None) -> None:
    bar = progress(source) if progress else None
    key = pipeline.camera.id
    step.gate(key).reset()
    # Decoded a batch ahead, not more: a 1080p frame is 6 MB, and the step holds a batch of its own.
    frames = ((key, frame) for frame in prefetch(_noting_first(timed(source, watch, "decode"), source),
                                                 size=step.batch))
    try:
        for _, frame, dets in step.run(frames):
            with watch.time("pipeline"):
                pipeline.process(frame, dets)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    for problem in source.report.problems:
        log.warning("%s: %s", source.uri, problem)


def _noting_first(frames: Iterator[Frame], source: VideoSource) -> Iterator[Frame]:
    """The frames; the first one's decoding time is logged (scripts/startup.py reads it: time to first frame)."""
    for i, frame in enumerate(frames):
        if i == 0:
            log.debug("%s: first frame decoded at unix %.3f", source.path.name, time.time())
        yield frame


def run_cli(args: argparse.Namespace) -> int:
    """`streetwatch scan`: exit 0 done, 1 some input damaged or missing, 2 nothing could be scanned."""
    camera = load_camera(args.camera)
    loaded = load_card(args.model, weights=args.weights)
    if args.out.exists() and not args.out.is_dir():
        raise StreetwatchError("--out is a file, not a folder", path=args.out, fix="pass a folder path")
    unknown = {k for k in camera.rules} - loaded.card.kinds()
    if unknown:
        log.warning("%s: model card %r cannot see %s; those rules never fire",
                    args.camera, loaded.card.name, sorted(k.value for k in unknown))
    loaded.weights_path  # noqa: B018 - resolve now: a missing file is an error before any decoding
    loaded = for_runtime(loaded, args.runtime)
    show_progress = sys.stderr.isatty() and not args.no_progress
    fps, why = sampling_rate(camera, args.fps)

    def progress(source: Any) -> Any:
        from tqdm import tqdm

        total = int((source.report.duration_s or 0) * fps) or None
        return tqdm(total=total, desc=source.path.name, unit="frame", disable=not show_progress, leave=False)

    result = scan(
        args.videos, camera, loaded, args.out, fps=fps, mode=SampleMode(args.sample), start=args.start,
        batch_size=max(1, args.batch), static_recheck_s=args.static_recheck_s, progress=progress,
        sinks=sinks_from_urls(args.sink, camera.sinks), deliver_timeout_s=args.deliver_timeout,
    )
    if not result.reports:
        for failure in result.failed:
            print(f"error: {failure}", file=sys.stderr)
        print("error: no readable video; nothing was scanned", file=sys.stderr)
        return 2
    print_result(result, args.out, as_json=args.json, sampling=why)
    damaged = any(report.problems for report in result.reports)
    return 1 if result.failed or damaged or undelivered(result.delivery) else 0



def print_result(result: Any, out: Path, *, as_json: bool, sampling: str = "") -> None:
    for event in result.events:
        if as_json:
            print(json.dumps(event, ensure_ascii=False))
        else:
            print(f"{event['id']}  {event['kind']:<8} zone={event['zone_id'] or '-':<12} "
                  f"{event['first_seen']} -> {event['last_seen']}  dwell={event['dwell_s']:.0f}s  "
                  f"conf={event['confidence']:.2f}  {event['snapshot']}")
    counts = Counter((e["kind"], e["zone_id"] or "(default)") for e in result.events)
    lines = [f"{'kind':<10}{'zone':<20}{'events':>6}"]
    lines += [f"{kind:<10}{zone:<20}{n:>6}" for (kind, zone), n in sorted(counts.items())]
    lines.append(f"{'total':<30}{len(result.events):>6}")
    speed = result.video_s / result.wall_s if result.wall_s else 0.0
    summary = [
        "",
        *lines,
        f"video: {result.video_s:.1f}s in {result.wall_s:.1f}s wall ({speed:.1f} video-s per s); model ran on "
        f"{result.inferred} of {result.inferred + result.skipped} sampled frames; output: {out}",
    ]
    if result.suppressed:
        summary.append(f"suppressed: {result.suppressed} object(s) an operator rejected before (the desk's "
                       "/suppressions page lists them, with an undo)")
    if result.model:
        summary.append(f"model: {result.model}" + ("" if "torch" in sys.modules else " (torch not imported)"))
    modes = sorted({(r.mode, r.keyframe_gap_s) for r in result.reports if r.mode})
    if sampling:
        how = ", ".join(f"{mode}" + (f" (keyframes every {gap:.2g} s)" if gap else "") for mode, gap in modes)
        summary.append(f"sampling: {sampling}; decoding: {how}")
    for report in result.reports:
        for problem in report.problems:
            summary.append(f"warning: {report.uri}: {problem}")
    for failure in result.failed:
        summary.append(f"error: {failure}")
    summary += delivery_lines(getattr(result, "delivery", {}))
    print("\n".join(summary), file=sys.stderr if as_json else sys.stdout)

