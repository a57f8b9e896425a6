"""Resuming events after a restart: a violation still in view continues its open event.

A stopped worker leaves its open events in the store with `status = open`. Their ids are fixed (they
were derived from the first sighting when the event opened), so continuing one means handing the
stored `Event` back to the `EventManager` under the placement of the object now seen at its place:
same kind, same zone, boxes overlapping by at least the kind's `1 - max_shift` IoU. The placement
keeps the event's `first_seen` and is confirmed at once (its dwell was already proven), so the event
goes on with its own id instead of a new one opening after a fresh dwell. Events whose object is not
seen again within the kind's `close_after_s` of the camera's first frame close at their last sighting.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import numpy as np

from detector.camera.dwell import DwellRule
from detector.camera.events import Event, EventManager, Status
from detector.config.camera import Rule
from detector.detections import Detections
from detector.geometry import iou_matrix
from detector.kinds import Kind

log = logging.getLogger(__name__)


def event_from_row(row: dict[str, Any]) -> Event:
    """An `Event` back from `EventStore.events()`."""
    return Event(
        id=row["id"],
        camera_id=row["camera_id"],
        kind=row["kind"],
        category=row["category"],
        zone_id=row["zone_id"],
        first_seen=datetime.fromisoformat(row["first_seen"]),
        last_seen=datetime.fromisoformat(row["last_seen"]),
        confidence=float(row["confidence"]),
        bbox=[float(v) for v in row["bbox"]],
        track_id=int(row["track_id"]),
        source=row["source"],
        model=row["model"],
        status=Status(row["status"]),
        snapshot=row["snapshot"],
        clean_frame=row["clean_frame"],
        crop=row["crop"],
        **{k: row[k] for k in ("location", "vehicle", "sightings", "passes", "resolution") if k in row},
    )


class Resumer:
    """`adopt()` gives new tracks the stored open events they continue; `expire()` closes the rest."""

    def __init__(self, pending: list[Event], rules: dict[Kind, Rule]) -> None:
        self.pending = list(pending)
        self.rules = {k.value: r for k, r in rules.items()}
        self.resumed: list[str] = []
        self._deadline: datetime | None = None

    def reconfigure(self, rules: dict[Kind, Rule]) -> None:
        self.rules = {k.value: r for k, r in rules.items()}

    def adopt(self, dets: Detections, dwell: DwellRule, events: EventManager) -> None:
        """Before the dwell rule sees `dets`: tracks at the place of a stored event continue it."""
        for i in range(len(dets)):
            track_id, kind = int(dets.track_id[i]), str(dets.kind[i])
            if not self.pending or track_id in dwell.placements or kind not in self.rules:
                continue
            zone = str(dets.zone_id[i]) or None
            candidates = [e for e in self.pending if e.kind == kind and e.zone_id == zone]
            if not candidates:
                continue
            ious = iou_matrix(dets.xyxy[i][None], np.array([e.bbox for e in candidates], dtype=np.float32))[0]
            best = int(ious.argmax())
            if ious[best] < 1 - self.rules[kind].max_shift:
                continue
            event = candidates[best]
            placement = dwell.adopt(track_id, event.first_seen, dets.xyxy[i])
            events.adopt(placement.key, event)
            self.pending.remove(event)
            self.resumed.append(event.id)
            log.info("%s: resumed open event %s", event.camera_id, event.id,
                     extra={"camera": event.camera_id, "event": "resumed", "event_id": event.id})

    def expire(self, now: datetime, events: EventManager) -> list[Event]:
        """Close, at their last sighting, the stored events not seen again in time (first call starts the clock)."""
        if self._deadline is None:
            self._deadline = now
        waited = (now - self._deadline).total_seconds()
        gone = [e for e in self.pending if waited > events.close_after_s.get(e.kind, 30.0)]
        for event in gone:
            self.pending.remove(event)
            close_stored(event, events)
        return gone


def close_stored(event: Event, events: EventManager) -> None:
    """Close a stored open event at its last sighting (the same end as `EventManager` gives)."""
    events.close_stored(event)
    log.info("%s: closed stored event %s at its last sighting %s", event.camera_id, event.id, event.last_seen,
             extra={"camera": event.camera_id, "event": "closed_stored", "event_id": event.id})
