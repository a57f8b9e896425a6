"""The flow of a camera on a vehicle: detections -> map positions -> geo-fences -> places -> events.

The moving counterpart of `CameraPipeline`, with no I/O of its own: fed (frame, detections, pose)
triples, it places each box's ground point on the map, drops what a geo-fence allows, confirms by
parallax or a second pass (`detector.geo.places`), and opens one event per place, updated by later
passes and closed as `cleared` when a pass looked at the place (`cover_frames` frames within
`cover_range_m`, inside the view) and did not see it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from detector.camera.dwell import DwellRule
from detector.camera.events import Event, EventRecorder, Status
from detector.camera.zones import ZoneFilter
from detector.config.card import ModelCard
from detector.config.patrol import PatrolConfig
from detector.detections import Detections, Frame
from detector.geo.fences import Fences
from detector.geo.places import Candidate, Confirmer, ConfirmRule, Place, Places, Sighting, metres
from detector.geo.projection import CalibratedGround, PinholeGround, accuracy_m, from_latlon, to_latlon
from detector.geo.track import Pose
from detector.kinds import Kind


@dataclass
class PatrolStats:
    frames: int = 0
    untagged: int = 0  # frames outside the track or in a gap: no position, not placed
    sightings: int = 0
    too_far: int = 0  # boxes above the horizon or beyond max_range_m
    allowed: int = 0  # boxes a geo-fence allowed or ignored
    opened: int = 0
    updated: int = 0
    cleared: int = 0


@dataclass
class _Best:
    """The frame a candidate was seen best in: its snapshot."""

    confidence: float
    frame: Frame
    bbox: list[float]
    class_name: str
    zone_id: str | None
    pose: Pose
    accuracy_m: float


@dataclass
class _Visit:
    """A place inside the view during one drive past it."""

    start: datetime
    frames: int = 0
    seen: bool = False


class PlaceRecorder(EventRecorder, Protocol):
    """An event recorder that also stores places, in the transaction of the events they open or close."""

    def places_changed(self, rows: list[dict]) -> None: ...


MIN_COVER_SPEED_MPS = 0.5


class PatrolPipeline:
    """One vehicle camera's pass (or live feed); `process()` each sampled frame with its pose, `end()`."""

    def __init__(self, config: PatrolConfig, card: ModelCard, recorder: PlaceRecorder, *,
                 places: Places | Sequence[Place] = (), events: dict[str, Event] | Sequence[Event] = (),
                 fences: Fences | None = None, model_sha256: str = "") -> None:
        """`places` and `events` may be shared (a `Places`, a dict by id) by the cameras of one vehicle."""
        self.config, self.card, self.recorder = config, card, recorder
        self.fences = fences or Fences([], None, config.default)  # no fence file: the patrol file's default
        self.rule = self.rule_of(config)
        self.places = places if isinstance(places, Places) else Places(list(places), self.rule)
        self.confirmer = Confirmer(self.rule)
        self.events = events if isinstance(events, dict) else {e.id: e for e in events if e.status == Status.OPEN}
        self.touched: set[str] = set()  # ids of the events this pipeline opened, updated or closed
        self.model = {"card": card.name, "sha256": model_sha256}
        self.stats = PatrolStats()
        self._rules = DwellRule(config.rules)
        self._mask = ZoneFilter(config.model_copy(update={"default": "prohibited"}))  # ignore zones only
        self._projector: PinholeGround | CalibratedGround | None = None
        self._best: dict[int, _Best] = {}  # id(candidate) -> best frame so far
        self._visits: dict[str, _Visit] = {}
        self._last: Detections = Detections()
        self._now: datetime | None = None

    @staticmethod
    def rule_of(config: PatrolConfig) -> ConfirmRule:
        c = config.patrol.confirm
        return ConfirmRule(min_frames=c.min_frames, same_place_m=c.same_place_m, min_baseline_m=c.min_baseline_m,
                           max_object_speed_mps=c.max_object_speed_mps, min_gap_min=c.min_gap_min,
                           pass_gap_s=c.pass_gap_s)

    def projector(self, frame: Frame) -> PinholeGround | CalibratedGround:
        if self._projector is None:
            if self.config.mount is not None:
                self._projector = PinholeGround(self.config.mount, *frame.size)  # type: ignore[arg-type]
            else:
                cal = self.config.calibration
                self._projector = CalibratedGround(cal.image, cal.ground)  # type: ignore[union-attr]
        return self._projector

    def process(self, frame: Frame, dets: Detections | None, pose: Pose | None) -> None:
        """One sampled frame; `dets` None: unchanged since the last inferred one; `pose` None: untagged."""
        dets = self._last if dets is None else dets
        self._last = dets
        self.stats.frames += 1
        self._now = frame.time
        if pose is None:
            self.stats.untagged += 1
            return
        for candidate in self.confirmer.ended(frame.time):
            self._decide(candidate)
        dets = self._mask.filter(self._rules.filter(dets), frame.size, frame.time)
        located = [p for i in range(len(dets)) if (p := self._locate(frame, dets, i, pose)) is not None]
        placed = [(s, best) for s, best, violation in located if violation]
        candidates = self.confirmer.add_frame([s for s, _ in placed])
        for (_, best), candidate in zip(placed, candidates, strict=True):
            known = self._best.get(id(candidate))
            if known is None or best.confidence > known.confidence:
                self._best[id(candidate)] = best
        if pose.speed_mps >= MIN_COVER_SPEED_MPS:  # standing at a light proves nothing about what is gone
            self._cover(frame, pose, [s for s, _, _ in located])  # a fence allowing it now: still there
        self.recorder.flush()

    def _locate(self, frame: Frame, dets: Detections, i: int,
                pose: Pose) -> tuple[Sighting, _Best, bool] | None:
        """Box i on the map (None: too far to place) and whether it is a violation there (the fences)."""
        projector = self.projector(frame)
        x1, _, x2, y2 = (float(v) for v in dets.xyxy[i])
        u, v = (x1 + x2) / 2, y2
        ground = projector.ground(u, v)  # None above the horizon or behind the camera, whichever way it looks
        if ground is None or ground.distance_m > self.config.patrol.max_range_m:
            self.stats.too_far += 1
            return None
        lat, lon = to_latlon(pose, ground)
        kind, conf = str(dets.kind[i]), float(dets.confidence[i])
        violation, zone_id = self.fences.decide(Kind(kind), lat, lon, frame.time.astimezone(self.config.tz))
        self.stats.allowed += not violation
        accuracy = accuracy_m(projector, u, v) or self.config.patrol.max_range_m
        self.stats.sightings += violation
        return (Sighting(kind, lat, lon, frame.time, (pose.lat, pose.lon), conf, accuracy),
                _Best(conf, frame, [x1, float(dets.xyxy[i][1]), x2, y2], str(dets.class_name[i]), zone_id, pose,
                      accuracy), violation)

    def _decide(self, candidate: Candidate) -> None:
        """A candidate left the view: its place's event opens or is updated; its frames are let go."""
        place = self.places.decide(candidate)
        if place is not None:
            self._report(place, candidate)
        elif candidate.place is not None:  # a place waiting for a second pass
            self.recorder.places_changed([candidate.place.to_row()])
        self._best.pop(id(candidate), None)

    def _report(self, place: Place, candidate: Candidate) -> None:
        """Open the place's event, or update it with this pass's best frame."""
        best = self._best[id(candidate)]
        event = self.events.get(place.event_id or "")
        new = event is None
        if event is None:
            event = self._open(place, best)
            vehicle = _vehicle(best.pose)
        else:
            better = best.frame is not event.best_frame and (best.confidence > event.confidence
                                                             or event.best_frame is None)
            event.seen(place.last_seen, best.frame, best.confidence, best.bbox, better=better)
            vehicle = _vehicle(best.pose) if better else event.vehicle or _vehicle(best.pose)
            self.stats.updated += 1
        method = "calibrated" if self.config.calibration is not None else "pinhole"
        accuracy = max(1.0, best.accuracy_m / math.sqrt(max(1, min(place.sightings, 9))))
        event.locate({"lat": round(place.lat, 7), "lon": round(place.lon, 7), "accuracy_m": round(accuracy, 1),
                      "method": method}, vehicle, place.sightings, place.passes, place.resolution)
        self.touched.add(event.id)
        self.recorder.places_changed([place.to_row()])
        (self.recorder.opened if new else self.recorder.updated)(event)

    def _open(self, place: Place, best: _Best) -> Event:
        event = Event.open(
            camera_id=self.config.id, kind=place.kind, category=self.card.category(best.class_name, Kind(place.kind)),
            zone_id=best.zone_id, first_seen=place.first_seen, last_seen=place.last_seen, frame=best.frame,
            confidence=best.confidence, bbox=best.bbox, track_id=0, model=self.model, origin=place.id)
        place.event_id = event.id
        self.events[event.id] = event
        self.stats.opened += 1
        return event

    def _cover(self, frame: Frame, pose: Pose, seen: list[Sighting]) -> None:
        """Track each open place's visits to the view; a visit that ends unseen clears the place."""
        patrol = self.config.patrol
        for place in [p for p in self.places.places if p.status == "open" and p.confirmed]:
            if metres((pose.lat, pose.lon), (place.lat, place.lon)) > patrol.cover_range_m:
                self._end_visit(place, frame.time)
                continue
            if not self._in_view(frame, pose, place):
                self._end_visit(place, frame.time)
                continue
            visit = self._visits.setdefault(place.id, _Visit(start=frame.time))
            visit.frames += 1
            near = 2 * self.rule.same_place_m
            visit.seen |= any(s.kind == place.kind and metres(s.at, (place.lat, place.lon)) <= near for s in seen)

    def _in_view(self, frame: Frame, pose: Pose, place: Place) -> bool:
        pixel = self.projector(frame).pixel(from_latlon(pose, place.lat, place.lon))  # None: behind the camera
        width, height = frame.size
        return pixel is not None and 0.05 * width <= pixel[0] <= 0.95 * width and pixel[1] <= height

    def _end_visit(self, place: Place, now: datetime) -> None:
        visit = self._visits.pop(place.id, None)
        if visit is None or visit.seen or visit.frames < self.config.patrol.cover_frames:
            return
        if place.last_seen >= visit.start:
            return
        self.places.clear(place, now)
        self.stats.cleared += 1
        event = self.events.pop(place.event_id or "", None)
        self.recorder.places_changed([place.to_row()])
        if event is not None:
            event.close("cleared")
            self.touched.add(event.id)
            self.recorder.closed(event)

    def end(self, *, complete: bool = True) -> None:
        """The input ended: candidates in view are decided, then the visits in progress judged; `complete`
        False (interrupted): a visit cut short proves nothing, so nothing is cleared."""
        for candidate in self.confirmer.ended():
            self._decide(candidate)
        for place in list(self.places.places):
            if place.id in self._visits and self._now is not None and complete:
                self._end_visit(place, self._now)
        self._visits.clear()
        for event in self.events.values():
            event.let_go()
        self.recorder.flush()


def _vehicle(pose: Pose) -> dict[str, float]:
    return {"lat": round(pose.lat, 7), "lon": round(pose.lon, 7), "heading_deg": round(pose.heading_deg, 1),
            "speed_mps": round(pose.speed_mps, 2)}
