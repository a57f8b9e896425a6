"""Events: one record per violation, opened when its dwell is reached, updated while it is seen,
closed when it has been gone for its kind's `close_after_s` or the input ends.

The manager only decides *when*; what happens on open, update and close (snapshots, the store, the
JSONL log, the outbox) is the recorder's business, so `scan`, `watch`, `patrol` and `rescan` share this
lifecycle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from detector.camera.dwell import Violation
from detector.detections import Frame
from detector.kinds import Kind


class Status(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Event:
    """One violation's record. It changes only through its own methods (`open`, `seen`, `locate`, `close`,
    and the snapshot bookkeeping), so the lifecycle has one owner whoever drives it: a fixed camera's
    `EventManager`, a patrol's places, a re-scan. Frozen: assigning a field from outside is an error."""

    id: str
    camera_id: str
    kind: Kind
    category: dict[str, str]
    zone_id: str | None
    first_seen: datetime
    last_seen: datetime
    confidence: float
    bbox: list[float]
    track_id: int
    source: dict[str, Any]
    model: dict[str, str]
    status: Status = Status.OPEN
    snapshot: str | None = None
    clean_frame: str | None = None
    crop: str | None = None
    # A moving camera's events (see detector.geo): where the object is, where the vehicle was at the best
    # frame, how often it was seen, on how many passes, and `cleared` when a later pass found it gone.
    location: dict[str, Any] | None = None
    vehicle: dict[str, Any] | None = None
    sightings: int | None = None
    passes: int | None = None
    resolution: str | None = None
    # Not serialised: the best frame so far, kept until it is written.
    best_frame: Frame | None = field(default=None, repr=False, compare=False)
    best_dirty: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._set(kind=Kind(self.kind))

    def _set(self, **values: Any) -> None:
        """The one way fields change, for the methods below."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def open(cls, *, camera_id: str, kind: str, category: dict[str, str], zone_id: str | None,
             first_seen: datetime, last_seen: datetime, frame: Frame, confidence: float, bbox: Sequence[float],
             track_id: int, model: dict[str, str], origin: str) -> Event:
        """A new event; its id follows from the camera, kind, first sighting and `origin` (the source file, or
        a patrol's place), so the same input opens the same event again."""
        return cls(id=event_id(camera_id, kind, first_seen, origin, track_id), camera_id=camera_id, kind=Kind(kind),
                   category=category, zone_id=zone_id, first_seen=first_seen, last_seen=last_seen,
                   confidence=confidence, bbox=[float(v) for v in bbox], track_id=track_id,
                   source=_source(frame), model=model, best_frame=frame, best_dirty=True)

    def seen(self, at: datetime, frame: Frame | None = None, confidence: float = 0.0, bbox: Sequence[float] = (),
             *, better: bool | None = None) -> bool:
        """Seen again at `at`; the sighting in `frame` becomes the best one when it is more confident (or when
        `better` says so). True when it did."""
        self._check_open()
        self._set(last_seen=at)
        if frame is None or not (confidence > self.confidence if better is None else better):
            return False
        self._set(confidence=confidence, bbox=[float(v) for v in bbox], source=_source(frame), best_frame=frame,
                  best_dirty=True)
        return True

    def locate(self, location: dict[str, Any], vehicle: dict[str, Any] | None, sightings: int, passes: int,
               resolution: str | None = None) -> None:
        """Where a moving camera placed it on the map, and how often and on how many passes it was seen."""
        self._set(location=location, vehicle=vehicle, sightings=sightings, passes=passes, resolution=resolution)

    def close(self, resolution: str | None = None) -> None:
        """It has gone (`resolution`, e.g. `cleared`: a later pass looked and did not see it)."""
        self._check_open()
        self._set(status=Status.CLOSED, **({"resolution": resolution} if resolution is not None else {}))

    def shown_in(self, frame: Frame) -> None:
        """Its best frame again, with pixels (a re-scan decodes it once its events are known)."""
        self._set(best_frame=frame, best_dirty=True)

    def snapshots_written(self, snapshot: str, clean_frame: str, crop: str) -> None:
        self._set(snapshot=snapshot, clean_frame=clean_frame, crop=crop, best_dirty=False)

    def let_go(self) -> None:
        """Its best frame is not needed any more (written, or the input ended)."""
        self._set(best_frame=None)

    def _check_open(self) -> None:
        if self.status != Status.OPEN:
            raise ValueError(f"event {self.id} is closed")

    @property
    def dwell_s(self) -> float:
        return round((self.last_seen - self.first_seen).total_seconds(), 3)

    def to_dict(self) -> dict[str, Any]:
        out = self._fixed_fields()
        if self.location is not None:
            out.update(location=self.location, vehicle=self.vehicle, sightings=self.sightings, passes=self.passes,
                       resolution=self.resolution)
        return out

    def _fixed_fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "camera_id": self.camera_id,
            "kind": self.kind.value,
            "category": self.category,
            "zone_id": self.zone_id,
            "first_seen": self.first_seen.isoformat(timespec="milliseconds"),
            "last_seen": self.last_seen.isoformat(timespec="milliseconds"),
            "dwell_s": self.dwell_s,
            "confidence": round(self.confidence, 4),
            "bbox": [round(v, 1) for v in self.bbox],
            "track_id": self.track_id,
            "snapshot": self.snapshot,
            "clean_frame": self.clean_frame,
            "crop": self.crop,
            "source": self.source,
            "model": self.model,
            "status": self.status.value,
        }


def _source(frame: Frame) -> dict[str, Any]:
    return {"uri": frame.source_uri, "pts_s": round(frame.pts_s, 3)}


class EventRecorder(Protocol):
    """Where lifecycle changes go (the store, the JSONL log, snapshots, the outbox: `detector.output`);
    `opened`/`updated` may be called many times, `closed` once. `flush()` ends a frame: a recorder may
    batch the changes of one frame into one write."""

    def opened(self, event: Event) -> None: ...
    def updated(self, event: Event) -> None: ...
    def closed(self, event: Event) -> None: ...
    def flush(self) -> None: ...


def event_id(camera_id: str, kind: str, first_seen: datetime, source_uri: str, track_id: int) -> str:
    """Readable and deterministic: re-scanning the same input yields the same ids, not duplicates."""
    digest = hashlib.sha1(f"{camera_id}|{kind}|{first_seen.isoformat()}|{source_uri}|{track_id}".encode())
    return f"{camera_id}-{first_seen:%Y%m%dT%H%M%S}-{kind}-{digest.hexdigest()[:8]}"


class EventManager:
    """`update()` with each frame's violations; `close_stale()` and `close_all()` end events."""

    def __init__(
        self,
        camera_id: str,
        model: dict[str, str],
        close_after_s: dict[str, float],
        category: Callable[[str, str], dict[str, str]],
        recorder: EventRecorder,
    ) -> None:
        self.camera_id = camera_id
        self.model = model
        self.close_after_s = close_after_s
        self.category = category  # (class_name, kind) -> {"code", "name"}
        self.recorder = recorder
        self.open: dict[str, Event] = {}
        self.opened_total = 0  # events opened here (resumed ones are not new)

    def reconfigure(self, close_after_s: dict[str, float]) -> None:
        self.close_after_s = close_after_s

    def adopt(self, key: str, event: Event) -> None:
        """Continue a stored open event under the placement `key` (see `detector.camera.resume`)."""
        self.open[key] = event

    def close_stored(self, event: Event) -> None:
        """Close an event that is not open here (stored by an earlier run) at its last sighting."""
        event.close()
        self.recorder.closed(event)

    def update(self, violations: list[Violation], frame: Frame) -> None:
        for violation in violations:
            det = violation.detection
            key = violation.placement.key
            conf = float(det.confidence[0])
            event = self.open.get(key)
            if event is None:
                kind = str(det.kind[0])
                event = Event.open(
                    camera_id=self.camera_id, kind=kind, category=self.category(str(det.class_name[0]), kind),
                    zone_id=str(det.zone_id[0]) or None, first_seen=violation.placement.since, last_seen=frame.time,
                    frame=frame, confidence=conf, bbox=det.xyxy[0], track_id=violation.placement.track_id,
                    model=self.model, origin=frame.source_uri)
                self.open[key] = event
                self.opened_total += 1
                self.recorder.opened(event)
                continue
            event.seen(frame.time, frame, conf, det.xyxy[0])
            self.recorder.updated(event)

    def close_stale(self, now: datetime) -> list[Event]:
        stale = [
            key for key, e in self.open.items()
            if (now - e.last_seen).total_seconds() > self.close_after_s.get(e.kind, 30.0)
        ]
        return [self._close(key) for key in stale]

    def close_all(self) -> list[Event]:
        return [self._close(key) for key in list(self.open)]

    def _close(self, key: str) -> Event:
        event = self.open.pop(key)
        event.close()
        self.recorder.closed(event)
        event.let_go()
        return event
