"""The way out of the pipeline, opened in one fixed order and closed in the reverse one.

Every app (scan, patrol, watch, rescan) writes events the same way: the store (SQLite or PostgreSQL), the
JSONL log beside it, each camera's snapshots, the sinks registered in the outbox, and one deliverer per sink
sending from the database. `Outputs` owns that chain, so no app puts it together by hand, and hands each
camera its `StoreRecorder` (the `EventRecorder` its pipeline reports to), with the camera's sinks.

Order matters: the store comes first (everything else writes to it), sinks are registered before delivery
starts (so `streetwatch deliver` knows where pending rows go even after a crash), and delivery starts before
any event is recorded (a missing secret is an error at once, not at the first event).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from detector.camera.events import Event
from detector.config.base import write_bytes_atomic
from detector.config.camera import CameraConfig
from detector.config.sinks import SinkConfig, merge_sinks
from detector.output.delivery import DeliveryPool
from detector.output.jsonl import JsonlLog
from detector.output.outbox import Messages, Outbox
from detector.output.recorder import StoreRecorder
from detector.output.snapshots import SnapshotWriter
from detector.output.store import EventStore, open_store
from detector.timing import Stopwatch


class Outputs:
    """The store, `events.jsonl`, snapshots, the outbox and delivery of one run; a context manager.

    `sinks` maps each camera id this process writes for to the sinks its events go to. `store`: an open
    store to write to (the caller keeps it); `Outputs.open()` opens (and closes) its own.
    """

    def __init__(self, store: EventStore, out_dir: Path | None, sinks: Mapping[str, Sequence[SinkConfig]], *,
                 watch: Stopwatch | None = None, owns_store: bool = False) -> None:
        self.store, self.out_dir, self.watch = store, out_dir, watch or Stopwatch()
        self._owns_store = owns_store  # closed by close(); a failed start leaves it to whoever opened it
        self.sinks = {camera: list(group) for camera, group in sinks.items()}
        self.jsonl = JsonlLog(out_dir / "events.jsonl") if out_dir is not None else None
        self.every_sink = merge_sinks(*self.sinks.values())
        self.wake = threading.Event()  # set after a commit that queued messages: deliverers look at once
        self.delivery: DeliveryPool | None = None
        if self.every_sink:
            Outbox(store).register(self.every_sink)
            # a missing secret or a bad sink raises here, before anything is recorded (and starts nothing)
            self.delivery = DeliveryPool(store.target, self.every_sink, self.wake, cameras=list(self.sinks)).start()

    def add_camera(self, camera_id: str, sinks: Sequence[SinkConfig]) -> None:
        """A camera this process writes for from now on (a pool process took it), with its sinks: they are
        registered, and delivery starts for any new one and sends what the camera queued, earlier ones too."""
        self.sinks[camera_id] = list(sinks)
        known = {e.id for e in self.every_sink}
        fresh = [s for s in sinks if s.id not in known]
        if fresh:
            Outbox(self.store).register(fresh)
            self.every_sink = merge_sinks(self.every_sink, fresh)
            if self.delivery is None:
                self.delivery = DeliveryPool(self.store.target, fresh, self.wake, cameras=list(self.sinks)).start()
                return
            self.delivery.add(fresh)
        if self.delivery is not None:
            self.delivery.scope(list(self.sinks))

    def drop_camera(self, camera_id: str) -> None:
        """A camera handed to another process: its queued messages are that process's to send now."""
        self.sinks.pop(camera_id, None)
        if self.delivery is not None:
            self.delivery.scope(list(self.sinks))

    @classmethod
    def open(cls, target: str | Path, out_dir: Path | None, sinks: Mapping[str, Sequence[SinkConfig]], *,
             watch: Stopwatch | None = None) -> Outputs:
        """Open the store at `target` (a `postgresql://` URL or an SQLite path) and the rest after it."""
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(target)
        try:
            return cls(store, out_dir, sinks, watch=watch, owns_store=True)
        except BaseException:
            store.close()
            raise

    def messages(self, camera: CameraConfig) -> Messages | None:
        """The outbox rows of one camera's event changes (None: it has no sink)."""
        sinks = self.sinks.get(camera.id, [])
        return Messages(sinks, camera, self.out_dir, self.wake) if sinks else None

    def snapshots(self, camera: CameraConfig) -> SnapshotWriter | None:
        """One camera's snapshot writer (None without an output folder: a store-only re-scan)."""
        return SnapshotWriter(self.out_dir, camera) if self.out_dir is not None else None

    def commit_run(self, run: dict[str, Any], camera: CameraConfig, events: list[Event], paths: list[str],
                   detect_key: str) -> None:
        """A re-scanned camera's events, all at once (see `EventStore.commit_run`), reported to its sinks as
        `opened` and `closed` in the same transaction."""
        queue = self.messages(camera)
        messages = [m for e in events for m in queue.change(e, "opened") + queue.change(e, "closed")] if queue else []
        self.store.commit_run(run, events, paths, detect_key, messages)
        if messages:
            self.wake.set()

    def recorder(self, camera: CameraConfig, *, snapshot_every_s: float = 30.0,
                 remember_closed: bool = False) -> StoreRecorder:
        """The recorder of one camera's events: snapshots, store rows with their messages, the JSONL line."""
        if self.out_dir is None or self.jsonl is None:
            raise ValueError("a recorder writes snapshots and events.jsonl: give the outputs a folder")
        return StoreRecorder(self.store, self.jsonl, SnapshotWriter(self.out_dir, camera),
                             snapshot_every_s=snapshot_every_s, watch=self.watch, remember_closed=remember_closed,
                             messages=self.messages(camera))

    def write_final(self, *, geojson: bool = False) -> list[dict[str, Any]]:
        """`events.jsonl` rewritten from the store, so it holds each event's final state once (and with
        `geojson`, `events.geojson` of the located ones); the store's events."""
        stored = self.store.events()
        if self.jsonl is not None:
            self.jsonl.rewrite(stored)
        if geojson and self.out_dir is not None:
            placed = [e for e in stored if e.get("location")]
            write_bytes_atomic(self.out_dir / "events.geojson",
                               json.dumps(feature_collection(placed), ensure_ascii=False, indent=1).encode("utf-8"))
        return stored

    def finish(self, timeout_s: float) -> dict[str, dict[str, int]]:
        """Wait up to `timeout_s` for the outbox to empty; per sink, what this run delivered and dead-lettered,
        and what is left pending (for `streetwatch deliver`). Nothing to wait for without sinks."""
        if self.delivery is None:
            return {}
        with self.watch.time("deliver"):
            counts = self.delivery.finish(timeout_s)
        self.delivery = None
        return counts

    def stop_delivery(self) -> None:
        """Stop the deliverers; what was not acknowledged stays in the outbox for the next start."""
        if self.delivery is not None:
            self.delivery.close()
            self.delivery = None

    def close(self) -> None:
        """Stop delivery and close the store if it is ours."""
        try:
            self.stop_delivery()
        finally:
            if self._owns_store:
                self.store.close()

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def feature_collection(events: list[dict[str, Any]]) -> dict[str, Any]:
    """One GeoJSON Point per located event ([lon, lat], as GeoJSON orders them); properties are the event."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": e["id"],
         "geometry": {"type": "Point", "coordinates": [e["location"]["lon"], e["location"]["lat"]]},
         "properties": e} for e in events]}
