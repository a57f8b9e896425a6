"""The flow of one camera: detections -> zones -> tracks -> dwell -> events, with no I/O of its own.

`CameraPipeline` holds one camera's state and is fed (frame, detections) pairs, so a file scan, a live
worker and an archive re-scan differ only in where frames come from and how inference is batched.
Everything it needs comes through its constructor; a reloaded camera file arrives through
`reconfigure()`, which keeps tracks and open events; nothing outside assigns its parts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from detector.camera.dwell import DwellRule
from detector.camera.events import Event, EventManager, EventRecorder
from detector.camera.resume import Resumer, close_stored
from detector.camera.scene import SceneChangeDetector
from detector.camera.suppress import Hits, Suppression, Suppressor
from detector.camera.tracking import IouTracker
from detector.camera.zones import ZoneFilter
from detector.config.camera import CameraConfig
from detector.config.card import ModelCard
from detector.detections import Detections, Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineStats:
    """What a camera's pipeline has done so far, for summaries and `/metrics`."""

    frames: int  # frames processed
    open_events: int
    events_opened: int  # opened by this pipeline (resumed events are not new)
    resumed: int  # stored open events continued
    pending: int  # stored open events still waiting to be seen again
    suppressed: int = 0  # objects kept from raising an event by an operator's rejection


def _close_after(camera: CameraConfig) -> dict[str, float]:
    return {k.value: r.close_after_s for k, r in camera.rules.items()}


class CameraPipeline:
    """One camera's zones, tracks, dwell and events; `process()` one frame's detections at a time.

    `resume`: events a stopped worker left open, continued when their object is seen again at their
    place (see `detector.camera.resume`). `model_sha256` identifies the model in every event. `suppressions`:
    the camera's rejected objects, which raise no event while they stay the same (`suppress()` renews them).
    """

    def __init__(self, camera: CameraConfig, card: ModelCard, recorder: EventRecorder, *, model_sha256: str = "",
                 resume: Sequence[Event] = (), suppressions: Sequence[Suppression] = ()) -> None:
        self._camera = camera
        self._recorder = recorder
        self._zones = ZoneFilter(camera)
        self._tracker = IouTracker(max_age_s=_close_after(camera))
        self._dwell = DwellRule(camera.rules, camera.zone_dwell())
        self._scene = SceneChangeDetector()
        self._resumer = Resumer(list(resume), camera.rules)
        self._suppressor = Suppressor(camera.suppress, suppressions)
        self._card = card
        self._events = EventManager(
            camera_id=camera.id,
            model={"card": card.name, "sha256": model_sha256},
            close_after_s=_close_after(camera),
            category=lambda class_name, kind: self._card.category(class_name, kind),  # type: ignore[arg-type]
            recorder=recorder,
        )
        self._last_detections = Detections()
        self._frames = 0
        self.last_time: datetime | None = None

    @property
    def camera(self) -> CameraConfig:
        return self._camera

    def reconfigure(self, camera: CameraConfig) -> None:
        """New zones and rules from a reloaded camera file; tracks and open events carry on."""
        if camera.id != self._camera.id:
            raise ValueError(f"camera {self._camera.id} cannot become {camera.id}")
        zones = ZoneFilter(camera)  # first: zones that cannot be used change nothing
        self._camera, self._zones = camera, zones
        self._dwell.reconfigure(camera.rules, camera.zone_dwell())
        self._resumer.reconfigure(camera.rules)
        self._suppressor.reconfigure(camera.suppress)
        self._tracker.reconfigure(_close_after(camera))
        self._events.reconfigure(_close_after(camera))

    def use_card(self, card: ModelCard, model_sha256: str) -> None:
        """Another card from now on (a promotion): events opened from here record it; open ones carry on."""
        self._card = card
        self._events.model = {"card": card.name, "sha256": model_sha256}

    def stats(self) -> PipelineStats:
        return PipelineStats(frames=self._frames, open_events=len(self._events.open),
                             events_opened=self._events.opened_total, resumed=len(self._resumer.resumed),
                             pending=len(self._resumer.pending), suppressed=self._suppressor.total)

    def suppress(self, suppressions: Sequence[Suppression]) -> None:
        """The camera's rejected objects as the store has them now (a rejection made or undone meanwhile)."""
        self._suppressor.replace(suppressions)

    def suppression_hits(self) -> dict[str, Hits]:
        """What each rejection kept out since the last call (objects and when last), for the store."""
        return self._suppressor.drain()

    def open_events(self) -> list[Event]:
        return list(self._events.open.values())

    def process(self, frame: Frame, dets: Detections | None, *, scene_changed: bool | None = None) -> None:
        """One sampled frame. `dets` None: not inferred, the last inferred frame's detections still hold.

        `scene_changed` None: compare the frame's picture with the previous one; a caller that decided
        it already (a re-scan replaying cached detections, with no pixels) says so.
        """
        dets = self._last_detections if dets is None else dets
        self._last_detections = dets
        if self.last_time is not None and frame.time < self.last_time:
            log.warning("%s: time went back from %s to %s; ending open events",
                        frame.source_uri, self.last_time, frame.time)
            self.end()
        if scene_changed is None:
            if frame.image is None:
                raise ValueError("a frame without a picture needs scene_changed")
            scene_changed = self._scene.update(frame.image)
        if scene_changed:
            log.info("%s: scene change at %.1fs; ending open events", frame.source_uri, frame.pts_s)
            self.end()
        self.last_time = frame.time
        self._frames += 1
        self._expire(frame.time)  # before matching: an object back after a gap longer than close_after_s is new
        dets = self._zones.filter(self._dwell.filter(dets), frame.size, frame.time)
        dets = self._suppressor.filter(self._tracker.update(dets, frame.time), frame)
        self._resumer.adopt(dets, self._dwell, self._events)
        self._events.update(self._dwell.update(dets, frame.time), frame)
        self._recorder.flush()

    def _expire(self, now: datetime) -> None:
        """Tracks and events whose object has been gone longer than its kind's close_after_s end."""
        gone = [t.id for t in self._tracker.expire(now)]
        self._dwell.forget(gone)
        self._suppressor.forget(gone)
        self._events.close_stale(now)

    def close_stored(self, events: Sequence[Event]) -> None:
        """Close stored open events too old to resume (their worker was down too long) at their last sighting."""
        for event in events:
            close_stored(event, self._events)
        self._recorder.flush()

    def expire_resumed(self) -> list[Event]:
        """Close the stored open events not seen again within their kind's `close_after_s` of the first frame."""
        if self.last_time is None or not self._resumer.pending:
            return []
        gone = self._resumer.expire(self.last_time, self._events)
        if gone:
            self._recorder.flush()
        return gone

    def end(self) -> None:
        """The input ended or the scene changed: every open event closes at its last sighting."""
        self._events.close_all()
        self._suppressor.forget([t.id for t in self._tracker.clear()])
        self._dwell.clear()
        self._recorder.flush()
