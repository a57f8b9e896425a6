"""Events: one record per violation, opened when its dwell is reached, updated while it is seen,
closed when it has been gone for its kind's `close_after_s` or the input ends.

The manager only decides *when*; what happens on open, update and close (snapshots, the store, the
JSONL log) is the sink's business, so `scan`, `watch` and `rescan` share this lifecycle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from detector.camera.dwell import Violation
from detector.detections import Frame


class Status(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass
class Event:
    id: str
    camera_id: str
    kind: str
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
            "kind": self.kind,
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


class EventSink(Protocol):
    """Where lifecycle changes go; `opened`/`updated` may be called many times, `closed` once.

    `flush()` ends a frame: a sink may batch the changes of one frame into one write.
    """

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
        sink: EventSink,
    ) -> None:
        self.camera_id = camera_id
        self.model = model
        self.close_after_s = close_after_s
        self.category = category  # (class_name, kind) -> {"code", "name"}
        self.sink = sink
        self.open: dict[str, Event] = {}
        self.opened_total = 0  # events opened here (resumed ones are not new)

    def reconfigure(self, close_after_s: dict[str, float]) -> None:
        self.close_after_s = close_after_s

    def adopt(self, key: str, event: Event) -> None:
        """Continue a stored open event under the placement `key` (see `detector.camera.resume`)."""
        self.open[key] = event

    def close_stored(self, event: Event) -> None:
        """Close an event that is not open here (stored by an earlier run) at its last sighting."""
        event.status = Status.CLOSED
        self.sink.closed(event)

    def update(self, violations: list[Violation], frame: Frame) -> None:
        for violation in violations:
            det = violation.detection
            key = violation.placement.key
            conf = float(det.confidence[0])
            event = self.open.get(key)
            if event is None:
                kind = str(det.kind[0])
                first_seen = violation.placement.since
                event = Event(
                    id=event_id(self.camera_id, kind, first_seen, frame.source_uri, violation.placement.track_id),
                    camera_id=self.camera_id,
                    kind=kind,
                    category=self.category(str(det.class_name[0]), kind),
                    zone_id=str(det.zone_id[0]) or None,
                    first_seen=first_seen,
                    last_seen=frame.time,
                    confidence=conf,
                    bbox=[float(v) for v in det.xyxy[0]],
                    track_id=violation.placement.track_id,
                    source={"uri": frame.source_uri, "pts_s": round(frame.pts_s, 3)},
                    model=self.model,
                    best_frame=frame,
                    best_dirty=True,
                )
                self.open[key] = event
                self.opened_total += 1
                self.sink.opened(event)
                continue
            event.last_seen = frame.time
            if conf > event.confidence:
                event.confidence = conf
                event.bbox = [float(v) for v in det.xyxy[0]]
                event.source = {"uri": frame.source_uri, "pts_s": round(frame.pts_s, 3)}
                event.best_frame = frame
                event.best_dirty = True
            self.sink.updated(event)

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
        event.status = Status.CLOSED
        self.sink.closed(event)
        event.best_frame = None
        return event

