"""The event recorder: an event's lifecycle written out, snapshots first, then the store row that points at
them (with the outbox messages that report the change, in the same transaction), and the JSONL line when it
closes. `detector.output.outputs.Outputs` makes one per camera."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from detector.camera.events import Event
from detector.config.camera import CameraConfig
from detector.output.jsonl import JsonlLog
from detector.output.outbox import Messages
from detector.output.snapshots import SnapshotWriter
from detector.output.store import EventStore
from detector.timing import Stopwatch


class StoreRecorder:
    """Writes an event's snapshots before the store row that points at them; JSONL line on close.

    Snapshot files are rewritten when a better frame shows up, at most every `snapshot_every_s` of
    video time while open, and always at close.
    """

    def __init__(self, store: EventStore, jsonl: JsonlLog, snapshots: SnapshotWriter,
                 snapshot_every_s: float = 30.0, watch: Stopwatch | None = None,
                 remember_closed: bool = False, messages: Messages | None = None) -> None:
        self.watch = watch or Stopwatch()
        self.messages = messages
        self._queued: list[dict[str, Any]] = []
        self.store = store
        self.jsonl = jsonl
        self.snapshots = snapshots
        self.snapshot_every_s = snapshot_every_s
        self._dirty: dict[str, Event] = {}
        self._written_at: dict[str, datetime] = {}
        self.remember_closed = remember_closed  # a scan reports its events; a months-long worker must not
        self.closed_ids: list[str] = []
        self._places: dict[str, dict[str, Any]] = {}  # patrol places changed since the last write (detector.geo)

    def places_changed(self, rows: list[dict[str, Any]]) -> None:
        """Patrol places to write with the next events: a place and the event it opened commit together."""
        self._places.update({row["id"]: row for row in rows})

    def reconfigure(self, camera: CameraConfig) -> None:
        """Snapshots of a reloaded camera file draw its new zones."""
        self.snapshots.reconfigure(camera)
        if self.messages:
            self.messages.reconfigure(camera)

    def opened(self, event: Event) -> None:
        self._snapshot(event)
        self._dirty[event.id] = event
        self._queue(event, "opened")

    def updated(self, event: Event) -> None:
        written = self._written_at.get(event.id)
        if event.best_dirty and (written is None or (event.last_seen - written).total_seconds()
                                 >= self.snapshot_every_s):
            self._snapshot(event)
        self._dirty[event.id] = event
        self._queue(event, "updated")

    def closed(self, event: Event) -> None:
        self._snapshot(event)
        self._written_at.pop(event.id, None)
        self._dirty[event.id] = event  # until written: a failed write leaves it (and its message) for flush()
        self._queue(event, "closed")
        with self.watch.time("store"):  # with the frame's other changes: their queued messages go along
            self._write(list(self._dirty.values()))
            self._dirty.clear()
            self.jsonl.append(event)
        if self.remember_closed:
            self.closed_ids.append(event.id)

    def flush(self) -> None:
        """One transaction for all events changed by a frame, with their messages."""
        if self._dirty or self._queued or self._places:
            with self.watch.time("store"):
                self._write(list(self._dirty.values()))
            self._dirty.clear()

    def _queue(self, event: Event, type_: str) -> None:
        if self.messages:
            self._queued += self.messages.change(event, type_)

    def _write(self, events: list[Event]) -> None:
        """Rows and the queued messages together; the queue empties only once they are committed."""
        self.store.upsert(events, self._queued, list(self._places.values()))
        self._places.clear()
        if self._queued and self.messages:
            self._queued = []
            self.messages.wake.set()

    def _snapshot(self, event: Event) -> None:
        if event.best_dirty:
            with self.watch.time("snapshots"):
                self.snapshots.write(event)
            self._written_at[event.id] = event.last_seen
