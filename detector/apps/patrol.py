"""`streetwatch patrol`: a patrol vehicle's videos and its GPS track -> geo-tagged events, one per place.

Each sampled frame gets the vehicle's pose from the track at the frame's time (the container's clock,
corrected by `--track-offset-s`); the model runs through the shared `InferenceStep`; `PatrolPipeline`
places, fences, confirms and reports. Places live in the store, so the next pass (this vehicle's or
another's, on the same store) updates them or clears them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detector.apps.step import InferenceStep
from detector.config.patrol import PatrolConfig, load_patrol
from detector.config.sinks import sinks_from_urls
from detector.errors import ConfigError, StreetwatchError
from detector.geo.fences import Fences, fences_of
from detector.geo.patrol import PatrolPipeline, PatrolStats
from detector.geo.places import stored_places
from detector.geo.track import Track, read_track
from detector.model.compiled import for_runtime
from detector.model.detector import Detector
from detector.model.weights import LoadedCard, load_card
from detector.output.delivery import delivery_lines, undelivered
from detector.output.outputs import Outputs
from detector.output.recorder import StoreRecorder
from detector.output.store import EventStore
from detector.timing import Stopwatch, timed
from detector.video.file import VideoSource, open_sources
from detector.video.prefetch import prefetch
from detector.video.sampling import SampleMode

log = logging.getLogger(__name__)


@dataclass
class PatrolResult:
    events: list[dict[str, Any]]
    stats: PatrolStats
    video_s: float = 0.0
    wall_s: float = 0.0
    failed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    delivery: dict[str, dict[str, int]] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)


def patrol(videos: list[Path], track: Track, config: PatrolConfig, loaded: LoadedCard, out_dir: Path, *,
           db: str | None = None, fps: float | None = None, batch_size: int = 4, sinks: list | None = None,
           detector: Detector | None = None, deliver_timeout_s: float = 30.0) -> PatrolResult:
    """Process one or more passes (video files, in time order) of one vehicle camera into `out_dir`."""
    began, watch = time.perf_counter(), Stopwatch()
    failed: list[str] = []
    skipped: list[str] = []
    sources = open_sources(videos, config.tz, fps or config.patrol.fps, SampleMode.AUTO, None, failed)
    _check_overlap(sources, track)
    fences = fences_of(config.fences, config.default)
    fences.check_near([(f.lat, f.lon) for f in track.fixes])
    detector = detector or Detector(loaded)
    step = InferenceStep(detector.detect, batch=batch_size, recheck_s=10.0, watch=watch)
    routes = {config.id: config.sinks if sinks is None else sinks}
    with Outputs.open(db or out_dir / "events.sqlite", out_dir, routes, watch=watch) as outputs:
        recorder = outputs.recorder(config, snapshot_every_s=0.0, remember_closed=True)
        pipeline = _pipeline(outputs.store, config, detector, recorder, fences)
        done = outputs.store.patrol_sources()
        try:
            for source in sources:
                if source.uri in done:
                    skipped.append(f"{source.uri}: already counted in this store; given again, its sightings "
                                   "would count twice (use another --out or --db to process it afresh)")
                    continue
                _run_source(source, track, step, pipeline, watch)
                outputs.store.record_patrol_source(source.uri, config.id, source.start_time.isoformat())
        finally:
            pipeline.end(complete=sys.exc_info()[1] is None)
            delivery = outputs.finish(0.0 if sys.exc_info()[1] else deliver_timeout_s)
        events = [e for e in outputs.write_final(geojson=True) if e.get("location") and e["id"] in pipeline.touched]
    result = PatrolResult(events=events, stats=pipeline.stats, failed=failed,
                          video_s=sum(s.report.decoded_until_s for s in sources))
    result.problems = [f"{s.uri}: {p}" for s in sources for p in s.report.problems] + skipped
    result.delivery = delivery
    result.wall_s, result.stages = time.perf_counter() - began, {**watch.seconds, **detector.timings}
    return result


def _pipeline(store: EventStore, config: PatrolConfig, detector: Detector, recorder: StoreRecorder,
              fences: Fences | None) -> PatrolPipeline:
    places, events = stored_places(store)
    model = detector.loaded
    return PatrolPipeline(config, model.card, recorder, places=places, events=events, fences=fences,
                          model_sha256=model.model_sha256)


def _check_overlap(sources: list[VideoSource], track: Track) -> None:
    """A track that covers none of the videos is a wrong file or a wrong clock: say which."""
    spans = [(s.start_time, s.start_time.timestamp() + (s.report.duration_s or 0.0)) for s in sources]
    if spans and not any(track.overlaps(a, datetime.fromtimestamp(b, UTC)) for a, b in spans):
        first = min(a for a, _ in spans)
        raise ConfigError(f"track {track.start.isoformat()} - {track.end.isoformat()} does not overlap the videos "
                          f"(from {first.isoformat()})", path=track.path,
                          fix="pass the track recorded on this drive, or correct the clock with --track-offset-s")


def _run_source(source: VideoSource, track: Track, step: InferenceStep, pipeline: PatrolPipeline,
                watch: Stopwatch) -> None:
    key = pipeline.config.id
    step.gate(key).reset()
    max_gap = pipeline.config.patrol.max_gap_s
    frames = ((key, frame) for frame in prefetch(timed(source, watch, "decode"), size=step.batch))
    for _, frame, dets in step.run(frames):
        with watch.time("pipeline"):
            pipeline.process(frame, dets, track.at(frame.time, max_gap))
    for problem in source.report.problems:
        log.warning("%s: %s", source.uri, problem)


def run_cli(args: argparse.Namespace) -> int:
    """`streetwatch patrol`: exit 0 done, 1 some input damaged or undelivered, 2 nothing could be done."""
    config = load_patrol(args.camera)
    track = read_track(args.track, args.track_offset_s)
    loaded = load_card(args.model, weights=args.weights)
    if args.out.exists() and not args.out.is_dir():
        raise StreetwatchError("--out is a file, not a folder", path=args.out, fix="pass a folder path")
    loaded.weights_path  # noqa: B018 - resolve now: a missing file is an error before any decoding
    loaded = for_runtime(loaded, args.runtime)
    result = patrol(args.videos, track, config, loaded, args.out, db=args.db, fps=args.fps,
                    batch_size=max(1, args.batch), sinks=sinks_from_urls(args.sink, config.sinks),
                    deliver_timeout_s=args.deliver_timeout)
    if result.failed and not result.video_s and not result.problems:
        for failure in result.failed:
            print(f"error: {failure}", file=sys.stderr)
        print("error: no readable video; nothing was processed", file=sys.stderr)
        return 2
    print_result(result, args.out, as_json=args.json)
    return 1 if result.failed or result.problems or undelivered(result.delivery) else 0


def print_result(result: PatrolResult, out: Path, *, as_json: bool) -> None:
    for e in result.events:
        if as_json:
            print(json.dumps(e, ensure_ascii=False))
            continue
        loc = e["location"]
        print(f"{e['id']}  {e['kind']:<8} {loc['lat']:.6f},{loc['lon']:.6f} ±{loc['accuracy_m']:.0f} m  "
              f"sightings={e['sightings']} passes={e['passes']} {e['status']}"
              f"{' (' + e['resolution'] + ')' if e.get('resolution') else ''}  {e['snapshot']}")
    s = result.stats
    counts = Counter((e["kind"], e["status"] if not e.get("resolution") else e["resolution"]) for e in result.events)
    lines = [f"{kind:<10}{state:<10}{n:>5}" for (kind, state), n in sorted(counts.items())]
    speed = result.video_s / result.wall_s if result.wall_s else 0.0
    summary = ["", *lines, f"events touched: {len(result.events)} (opened {s.opened}, cleared {s.cleared})",
               f"frames: {s.frames} sampled, {s.untagged} without a position (outside the track or in a gap); "
               f"{s.sightings} sightings placed, {s.too_far} boxes too far to place, {s.allowed} allowed by fences",
               f"video: {result.video_s:.1f}s in {result.wall_s:.1f}s wall ({speed:.2f} video-s per s); output: {out}"]
    summary += [f"warning: {p}" for p in result.problems] + [f"error: {f}" for f in result.failed]
    summary += delivery_lines(result.delivery)
    print("\n".join(summary), file=sys.stderr if as_json else sys.stdout)

