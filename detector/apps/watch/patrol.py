"""A watch camera on a patrol vehicle: its live GPS feed gives each frame a pose, `PatrolPipeline` does the rest.

Shaped like `CameraPipeline` where the worker touches it (`process`, `stats`, `reconfigure`,
`expire_resumed`, `close_stored`, `end`), so the worker runs fixed and moving cameras in one loop with
one inference step. Places and their open events come from the store at start: a patrol that restarts,
or another vehicle on the same store, continues them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from detector.camera.events import Event
from detector.camera.pipeline import PipelineStats
from detector.config.card import ModelCard
from detector.config.watch import LiveCamera
from detector.detections import Detections, Frame
from detector.geo.feed import GpsFeed
from detector.geo.fences import fences_of
from detector.geo.patrol import PatrolPipeline, PlaceRecorder
from detector.geo.places import Places

log = logging.getLogger(__name__)


class LivePatrol:
    """A patrol camera's pipeline fed by its vehicle's GPS feed. The cameras of one vehicle share the feed
    (one UDP port, one receiver), the places and their events, so the front and the side camera neither
    duplicate nor contradict each other."""

    def __init__(self, camera: LiveCamera, card: ModelCard, recorder: PlaceRecorder, *, places: Places,
                 events: dict[str, Event], feed: GpsFeed, model_sha256: str = "") -> None:
        self.camera = camera
        config = camera.patrol_config()
        fences = fences_of(config.fences, config.default)
        self.feed = feed
        self.pipeline = PatrolPipeline(config, card, recorder, places=places, events=events, fences=fences,
                                       model_sha256=model_sha256)

    def process(self, frame: Frame, dets: Detections | None) -> None:
        self.pipeline.process(frame, dets, self.feed.pose_at(frame.time, self.camera.patrol.max_gap_s))

    def stats(self) -> PipelineStats:
        s = self.pipeline.stats
        return PipelineStats(frames=s.frames, open_events=len(self.pipeline.events), events_opened=s.opened,
                             resumed=0, pending=0)

    def reconfigure(self, camera: LiveCamera) -> None:
        log.warning("%s: a patrol camera's mount, fences and rules apply after a restart", camera.id)

    def expire_resumed(self) -> list[Event]:
        return []  # a patrol event stays open until a pass clears it

    def close_stored(self, events: Sequence[Event]) -> None:
        return None

    def end(self) -> None:
        """Stopping: candidates in view are decided and written; a visit cut short clears nothing."""
        self.pipeline.end(complete=False)
