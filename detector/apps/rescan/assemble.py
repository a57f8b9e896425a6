"""Phase 2 of a re-scan: one camera's cached detections, files in start order, through one CameraPipeline.

No decoding but one seek per event for its snapshot: the frames are known by their time and size
alone, and the scene answers were computed in phase 1, so the pipeline is told them. Without pixels the
pipeline cannot tell a rejected object from a new one, so rejections that stick are judged here, per
event, on its best frame (decoded once, for its snapshot too): an event that is a rejected object again
is dropped, unless it is the rejected event itself.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from detector.apps.rescan.detect import unpack
from detector.camera.events import Event
from detector.camera.pipeline import CameraPipeline
from detector.camera.scene import SceneChangeDetector
from detector.camera.suppress import Hits, Suppression, Suppressor
from detector.config.camera import CameraConfig
from detector.detections import Frame
from detector.model.weights import LoadedCard
from detector.output.snapshots import SnapshotWriter
from detector.video.seek import grab_frame

log = logging.getLogger(__name__)


class _Collector:
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


def assemble(camera: CameraConfig, loaded: LoadedCard, files: list[tuple[str, datetime, bytes]],
             snapshots: SnapshotWriter | None, suppressions: list[Suppression] | None = None,
             hits: dict[str, Hits] | None = None) -> list[Event]:
    """Feed one camera's cached detections, files in start order, through one CameraPipeline; `snapshots`
    (None: none are written) draws each event's best frame once its events are known. Events that are a
    rejected object again (`suppressions`) are left out, and counted in `hits`."""
    collected = _Collector()
    pipeline = CameraPipeline(camera, loaded.card, collected, model_sha256=loaded.model_sha256)
    boundary = SceneChangeDetector()
    for path, start, blob in files:
        record = unpack(blob)
        if not len(record.pts):
            continue
        flags = record.scene.copy()
        flags[0] = boundary.update(record.first)  # the last frame of the previous file vs this one's first
        boundary.update(record.last)
        frames = zip(record.pts, record.detections(), record.inferred, flags, strict=True)
        for index, (pts, dets, inferred, changed) in enumerate(frames):
            frame = Frame(image=None, shape=record.size, pts_s=float(pts),
                          time=start + timedelta(seconds=float(pts)), source_uri=path, index=index)
            pipeline.process(frame, dets if inferred else None, scene_changed=bool(changed))
    pipeline.end()
    events = sorted(collected.closed_events, key=lambda e: (e.first_seen, e.id))
    suppressor = Suppressor(camera.suppress, suppressions or [])
    kept = [e for e in events if not _shown(e, collected.best.get(e.id), snapshots, suppressor, hits)]
    return kept


def _shown(event: Event, where: Frame | None, writer: SnapshotWriter | None, suppressor: Suppressor,
           hits: dict[str, Hits] | None) -> bool:
    """Decode the event's best frame (when a snapshot or a rejection needs it): True when it is a rejected
    object again (left out), else its snapshot is written."""
    judge = suppressor.near(event.kind, event.bbox, event.first_seen) and event.id not in {
        s.id for s in suppressor.suppressions}
    if writer is None and not judge:
        return False
    image = grab_frame(where.source_uri, where.pts_s) if where else None
    if where is None or image is None:
        log.warning("%s: could not decode the snapshot frame of %s", where and where.source_uri, event.id)
        return False
    match = suppressor.match(event.kind, event.bbox, image, event.first_seen) if judge else None
    if match is not None:
        log.info("%s: %s is %s, rejected before; left out", event.camera_id, event.id, match.id)
        if hits is not None:
            hit = hits.setdefault(match.id, Hits(0, event.last_seen))
            hit.tracks, hit.last = hit.tracks + 1, max(hit.last, event.last_seen)
        return True
    if writer is not None:
        event.shown_in(Frame(image=image, pts_s=where.pts_s, time=where.time, source_uri=where.source_uri,
                             index=where.index))
        writer.write(event)
        event.let_go()
    return False
