"""`streetwatch watch`: every camera of a watch file in one process, with one shared inference step.

Readers (one thread per camera, `detector.video.live`) put their latest sampled frame in a slot; the main
thread takes the waiting frames of all cameras, runs the model once on the batch, and feeds each
camera's `CameraPipeline` — the same zones, tracking, dwell, events, snapshots and store as `scan`.
A camera that is slow or down just has no frame in the batch, so it never holds the others up.
Signals: SIGTERM/SIGINT stop (open events are flushed as open, to be resumed by the next start);
SIGHUP reloads zones and rules from the watch file without touching the streams.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from detector.apps.step import InferenceStep
from detector.apps.watch.cards import CardSwitch, Ready, load
from detector.apps.watch.health import Health, HealthServer, JsonFormatter
from detector.apps.watch.patrol import LivePatrol
from detector.apps.watch.pool import PLAN_EVERY_S, PoolChanges, PoolMember
from detector.camera.events import Event
from detector.camera.pipeline import CameraPipeline
from detector.camera.resume import event_from_row
from detector.camera.zones import ZoneFilter
from detector.config.sinks import SinkConfig, merge_sinks, sinks_from_urls
from detector.config.watch import LiveCamera, Pool, WatchConfig, load_watch
from detector.detections import Detections, Frame
from detector.errors import StoreError, StreetwatchError, cause
from detector.geo.feed import GpsFeed
from detector.geo.patrol import PatrolPipeline
from detector.geo.places import Places, known_kinds, stored_places
from detector.model.compiled import for_runtime
from detector.model.detector import Detector
from detector.model.weights import DEFAULT_CARD, LoadedCard, load_card
from detector.output.delivery import DeliveryStats
from detector.output.outputs import Outputs
from detector.output.recorder import StoreRecorder
from detector.output.store import EventStore, open_store
from detector.output.suppressions import SuppressionRows
from detector.video.live import LiveReader
from detector.video.watchdog import Watchdog

log = logging.getLogger(__name__)


class FrameSlots:
    """The latest sampled frame of each camera; an unconsumed frame is replaced (counted as dropped)."""

    def __init__(self) -> None:
        self._frames: dict[str, Frame] = {}
        self._cond = threading.Condition()
        self.dropped: dict[str, int] = {}

    def put(self, camera_id: str, frame: Frame) -> None:
        with self._cond:
            if camera_id in self._frames:
                self.dropped[camera_id] = self.dropped.get(camera_id, 0) + 1
            self._frames[camera_id] = frame
            self._cond.notify()

    def take(self, timeout: float) -> dict[str, Frame]:
        with self._cond:
            if not self._frames:
                self._cond.wait(timeout)
            frames, self._frames = self._frames, {}
            return frames

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


@dataclass
class CameraRun:
    """What the worker holds per camera."""

    config: LiveCamera
    reader: LiveReader
    pipeline: CameraPipeline | LivePatrol
    recorder: StoreRecorder
    processed: int = 0
    failed: int = 0  # frames whose processing raised (logged with the traceback)
    main_reader: LiveReader | None = None  # the main stream, when `reader` reads the sub-stream
    main_frame: Frame | None = None  # its latest frame
    last_frame: Frame | None = None  # the latest frame processed (the desk's camera page shows it)

    def readers(self) -> dict[str, LiveReader]:
        """By name, as /healthz and the watchdog show them: `cam` and, for a sub-stream camera, `cam:main`."""
        name = self.config.id
        return {name: self.reader} | ({f"{name}:main": self.main_reader} if self.main_reader else {})

    def with_main_picture(self, frame: Frame, max_skew_s: float) -> Frame:
        """The sub-stream frame with the main stream's picture of the same moment, if one is that recent."""
        main = self.main_frame
        if main is None or abs((main.time - frame.time).total_seconds()) > max_skew_s:
            return frame
        return replace(frame, snapshot_image=main.image)


class Worker:
    """Runs a watch file until `stop()`; `reload()` re-reads zones and rules.

    The store is opened by `run()`, in the thread that uses it, and closed when `run()` ends.
    """

    def __init__(self, config: WatchConfig, loaded: LoadedCard, *, config_path: Path | None = None,
                 detector: Detector | None = None, http_port: int | None = None,
                 sinks: list[SinkConfig] | None = None, runtime: str | None = None) -> None:
        self.config = config
        self.sinks = sinks_from_urls([], config.sinks) if sinks is None else sinks  # every camera's
        self.outputs: Outputs | None = None  # opened by run()
        self.cameras_ids = [c.id for c in config.cameras]
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._leased_at = 0.0
        self.config_path = config_path
        self.loaded = loaded
        self.detector = detector or Detector(loaded)
        self.out = config.out
        self.slots = FrameSlots()
        self.cameras: dict[str, CameraRun] = {}
        self._stop = threading.Event()
        self._reload = threading.Event()
        self.http: Any = None  # a HealthServer, or the review desk's DeskServer (both: start, stop, port)
        self._http_port = config.http.port if http_port is None else http_port
        self.step = InferenceStep(lambda images: self.detector.detect(images), batch=config.batch,
                                  recheck_s=config.static_recheck_s, on_batch=self._observe_batch)
        self.watchdog = Watchdog(self._readers, config.watchdog)
        self.feeds: dict[str, GpsFeed] = {}  # GPS feeds by URL, shared by the cameras of a vehicle
        self._patrol: tuple[Places, dict[str, Event]] | None = None
        self.reloads = {"ok": 0, "failed": 0}  # SIGHUPs applied, and refused (the running configuration kept)
        self._file_seen = (_mtime(config_path), time.monotonic()) if config_path else None
        self.pool: PoolMember | None = None  # with a pool: section (or --pool), joined by run()
        self._busy = (0.0, time.monotonic())  # inference seconds since, for the pool's measured headroom
        self._store_read_at = time.monotonic()
        self.cards = CardSwitch(config.card_group, config.model or str(DEFAULT_CARD), runtime)

    def _observe_batch(self, _frames: int, seconds: float) -> None:
        self._busy = (self._busy[0] + seconds, self._busy[1])
        if self.http is not None:
            self.http.inference_seconds.observe(seconds)

    def _camera_run(self, camera: LiveCamera, outputs: Outputs, stored: list[Event]) -> CameraRun:
        """The camera's pipeline and readers; `stored`: the events it left open, resumed or closed here."""
        recorder = outputs.recorder(camera, snapshot_every_s=0.0 if camera.gps else 30.0)
        pipeline = self._pipeline(camera, outputs.store, recorder, stored)
        reader = LiveReader(camera, self.config.fps, self.config.reconnect, self.config.watchdog, self.slots.put)
        run = CameraRun(camera, reader, pipeline, recorder)
        main = camera.main_stream()
        if main is not None:
            run.main_reader = LiveReader(main, self.config.fps, self.config.reconnect, self.config.watchdog,
                                         lambda _, frame: setattr(run, "main_frame", frame))
        return run

    def _pipeline(self, camera: LiveCamera, store: EventStore, recorder: StoreRecorder,
                  stored: list[Event]) -> CameraPipeline | LivePatrol:
        """A fixed camera resumes the events it left open; a patrol camera continues the store's places."""
        if camera.gps:
            if self._patrol is None:  # one set of places and events for every patrol camera of the process
                places, events = stored_places(store)
                rule = PatrolPipeline.rule_of(camera.patrol_config())
                self._patrol = (Places(places, rule), {e.id: e for e in events})
            if camera.gps not in self.feeds:
                self.feeds[camera.gps] = GpsFeed(camera.gps).start()
            return LivePatrol(camera, self.loaded.card, recorder, places=self._patrol[0], events=self._patrol[1],
                              feed=self.feeds[camera.gps], model_sha256=self.loaded.model_sha256)
        now = time.time()
        stale = [e for e in stored if now - e.last_seen.timestamp() > self.config.resume_within_s]
        pending = [e for e in stored if e not in stale]
        pipeline = CameraPipeline(camera, self.loaded.card, recorder, model_sha256=self.loaded.model_sha256,
                                  resume=pending,
                                  suppressions=SuppressionRows(store).of(camera.id))
        pipeline.close_stored(stale)
        return pipeline

    def _routes(self) -> dict[str, list[SinkConfig]]:
        """Each camera's sinks: the watch file's and --sink's, and its own; one deliverer per sink sends what
        this process's cameras queued. (A pool process starts with none and adds each camera it takes.)"""
        return {} if self.config.pool else {c.id: merge_sinks(self.sinks, c.sinks) for c in self.config.cameras}

    # -- lifecycle ---------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self.slots.wake()

    def request_reload(self) -> None:
        self._reload.set()
        self.slots.wake()

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGHUP, lambda *_: self.request_reload())

    @property
    def db_target(self) -> str | Path:
        return self.config.db or self.out / "events.sqlite"

    def _lease(self, store: EventStore) -> None:
        """Take (or renew) every camera's lease; another live process holding one is an error."""
        held = store.take_leases(list(self.cameras_ids), self.holder, self.config.lease_s, dead=_gone)
        if held:
            who = ", ".join(f"{camera} (by {holder})" for camera, holder in sorted(held.items()))
            raise StreetwatchError(f"cameras already watched by another process: {who}", path=self.config_path,
                                   fix="watch each camera from one process; a killed one frees its cameras "
                                   f"within lease_s ({self.config.lease_s:g} s)")
        self._leased_at = time.monotonic()

    def run(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        store = open_store(self.db_target)  # first, alone: the cameras' leases before anything is sent
        outputs = self._start(store)
        for reader in self._readers().values():
            reader.start()
        self.watchdog.start()
        try:
            while not self._stop.is_set():
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                frames = self.slots.take(timeout=0.5)
                if frames and not self._stop.is_set():
                    self._infer(frames)
                for run in self.cameras.values():
                    run.pipeline.expire_resumed()
                self._notice_edits()
                if time.monotonic() - self._store_read_at > STORE_EVERY_S:
                    self._renew_suppressions(store)
                    self.cards.check(store)
                ready = self.cards.take()
                if ready is not None:
                    self._use(ready)
                every = min(PLAN_EVERY_S, self.config.lease_s / 3) if self.pool else self.config.lease_s / 3
                if time.monotonic() - self._leased_at > every:
                    self._renew(store)
        finally:
            self._shutdown(store, outputs)

    def _start(self, store: EventStore) -> Outputs:
        """Leases, the way out (delivery of this process's cameras), each camera's pipeline, the HTTP port."""
        try:
            if self.config.pool:
                self.pool = PoolMember(store, self.holder, self.config.pool, self.config.lease_s, _gone)
                self.pool.join(self.config.cameras)
                self.pool.keep_alive(store.target)
            else:
                self._lease(store)
            self._take_group_card(store)
            left_open: dict[str, list[Event]] = defaultdict(list)
            for row in known_kinds(store.events(status="open")):  # read once, not once per camera
                left_open[row["camera_id"]].append(event_from_row(row))
            self.outputs = Outputs(store, self.out, self._routes(), owns_store=True)
            for camera in [] if self.pool else self.config.cameras:
                self.cameras[camera.id] = self._camera_run(camera, self.outputs, left_open[camera.id])
            self._serve_health()
            return self.outputs  # a pool process takes its cameras at the loop's first renewal
        except BaseException:
            if self.outputs is not None:
                self.outputs.stop_delivery()
            if self.pool is not None:
                self.pool.leave()
            elif self._leased_at:  # a failed start frees its cameras at once
                store.release_leases(self.holder)
            store.close()
            raise

    def _renew_suppressions(self, store: EventStore) -> None:
        """What the rejections kept out goes to the store; rejections made or undone in the desk come back."""
        rows = SuppressionRows(store)
        fixed = {c: r.pipeline for c, r in self.cameras.items() if isinstance(r.pipeline, CameraPipeline)}
        hits = {sid: h for p in fixed.values() for sid, h in p.suppression_hits().items()}
        rows.record(hits)
        active = rows.active(list(fixed))
        for camera_id, pipeline in fixed.items():
            pipeline.suppress(active.get(camera_id, []))
        self._store_read_at = time.monotonic()

    def _take_group_card(self, store: EventStore) -> None:
        """The group's card from the first frame on; one that does not load leaves the file's card running."""
        promoted = self.cards.wanted(store)
        if promoted is None:
            return
        try:
            self._use(load(promoted, self.cards.runtime))
        except Exception as e:
            log.error("camera group %s: card %s does not load, the running one stays: %s", self.config.card_group,
                      promoted, e, extra={"event": "card_failed"})
            self.cards.failed = promoted
            return
        self.cards.running = promoted

    def _use(self, ready: Ready) -> None:
        """Switch to a promoted (or rolled back) card between two batches; open events carry on."""
        old = self.loaded.card.name
        self.loaded, self.detector = ready.loaded, ready.detector
        for run in self.cameras.values():
            if isinstance(run.pipeline, CameraPipeline):
                run.pipeline.use_card(ready.loaded.card, ready.loaded.model_sha256)
            else:
                log.warning("%s: a patrol camera records the new card after a restart", run.config.id)
        log.info("camera group %s runs %s now (was %s)", self.config.card_group, ready.loaded.card.name, old,
                 extra={"event": "card_switched", "card": ready.loaded.card.name})

    # -- the pool: cameras taken and handed back while running ------------------------------------

    def _renew(self, store: EventStore) -> None:
        """Renew the leases: of every camera of the file, or the pool's share (cameras started and stopped)."""
        if self.pool is None or self.outputs is None:
            self._lease(store)
            return
        spent, since = self._busy
        now = time.monotonic()
        self._busy = (0.0, now)
        changes = self.pool.renew(busy=spent / max(now - since, 1e-3))
        self._leased_at = time.monotonic()
        self._apply(changes, store, self.outputs)

    def _apply(self, changes: PoolChanges, store: EventStore, outputs: Outputs) -> None:
        assert self.pool is not None
        for camera_id, why in changes.stop.items():
            self._drop_camera(camera_id, why, outputs)
        self.pool.hand_back([c for c, why in changes.stop.items() if not why.startswith("lease lost")])
        for camera in changes.reconfigure:
            run = self.cameras[camera.id]
            if camera.source != run.config.source or camera.sinks != run.config.sinks:
                self._drop_camera(camera.id, "its source or sinks changed", outputs)
                self._add_camera(camera, store, outputs)
                continue
            run.pipeline.reconfigure(camera)
            run.recorder.reconfigure(camera)
            run.config = camera
        for camera in changes.start:
            self._add_camera(camera, store, outputs)

    def _add_camera(self, camera: LiveCamera, store: EventStore, outputs: Outputs) -> None:
        """Start watching a camera taken from the pool: its open events are resumed with their ids."""
        outputs.add_camera(camera.id, merge_sinks(self.sinks, camera.sinks))
        left_open = [event_from_row(r) for r in known_kinds(store.events(status="open", camera_id=camera.id))]
        run = self._camera_run(camera, outputs, left_open)
        self.cameras[camera.id] = run
        for reader in run.readers().values():
            reader.start()
        log.info("pool: watching %s (%s; %d open events resumed)", camera.id,
                 self.pool.held.get(camera.id, "") if self.pool else "", len(left_open),
                 extra={"event": "pool_camera_started", "camera": camera.id})

    def _drop_camera(self, camera_id: str, why: str, outputs: Outputs) -> None:
        """Stop watching a camera: its readers stop, its open events are saved as open for the next holder."""
        run = self.cameras.pop(camera_id, None)
        if run is None:
            return
        for reader in run.readers().values():
            reader.request_stop()
        for reader in run.readers().values():
            reader.stop(timeout=3.0)
        if isinstance(run.pipeline, LivePatrol):
            run.pipeline.end()
        run.recorder.flush()
        outputs.drop_camera(camera_id)
        log.info("pool: stopped watching %s (%s)", camera_id, why,
                 extra={"event": "pool_camera_stopped", "camera": camera_id, "why": why})

    def _serve_health(self) -> None:
        if not self._http_port:
            return
        try:
            if self.config.http.review:
                self.http = self._review_desk()
            else:
                self.http = HealthServer(self.config.http.host, self._http_port, self._readers, self._extra_metrics,
                                         self._sink_stats, pool=self._pool_status)
        except OSError as e:
            raise StreetwatchError(
                f"cannot serve /healthz on {self.config.http.host}:{self._http_port} ({e.strerror or e})",
                path=self.config_path, fix="pick a free http.port in the watch file or pass --http-port",
            ) from None
        try:
            self.http.start()
        except OSError as e:
            raise StreetwatchError(f"cannot serve the review desk on {self.config.http.host}:{self._http_port} ({e})",
                                   path=self.config_path, fix="pick a free http.port or pass --http-port") from None
        log.info("health on http://%s:%d/healthz and /metrics", self.config.http.host, self.http.port,
                 extra={"event": "http", "port": self.http.port})

    def _review_desk(self) -> Any:
        """/healthz, /metrics and the review desk on the one HTTP port (FastAPI imported only for it)."""
        from detector.apps.serve.app import Desk
        from detector.apps.serve.auth import Gate, load_token
        from detector.apps.serve.run import DeskServer

        http = self.config.http
        token = load_token(http.token_file, http.host)
        health = Health(self._readers, self._extra_metrics, self._sink_stats, pool=self._pool_status)
        cameras = {c.id: self.config_path.resolve() for c in self.config.cameras} if self.config_path else {}
        desk = Desk(target=self.db_target, out_dir=self.out, gate=Gate(token), tiles=http.tiles, health=health,
                    cameras=cameras, live=self._live_frame, detect=lambda image: self.detector.detect_one(image),
                    on_saved=lambda _camera: self.request_reload())
        return DeskServer(desk, http.host, self._http_port)

    def _pool_status(self) -> dict[str, Any] | None:
        return self.pool.status() if self.pool else None

    def _live_frame(self, camera_id: str) -> Frame | None:
        run = self.cameras.get(camera_id)
        return run.last_frame if run else None

    def _shutdown(self, store: EventStore, outputs: Outputs) -> None:
        """Bounded work: stop the readers, write the open events' pending changes (closed ones were
        written as they closed), close the store."""
        began = time.monotonic()
        self.watchdog.stop()
        for reader in self._readers().values():
            reader.request_stop()  # no frame is processed any more: the events can be saved while they stop
        try:
            for run in self.cameras.values():
                if isinstance(run.pipeline, LivePatrol):
                    run.pipeline.end()  # what is in view is decided; its events stay open
                run.recorder.flush()  # open events stay open in the store, for the next holder to resume
            self._renew_suppressions(store)  # (what they kept out)
        except StoreError as e:
            log.error("could not save the last changes: %s", e, extra={"event": "store_failed"})
        finally:
            try:  # saved: the cameras are free now, not once the streams have closed
                if self.pool is not None:
                    self.pool.leave()  # the others take its cameras at their next renewal
                else:
                    store.release_leases(self.holder)
            except StoreError as e:
                log.warning("could not release the camera leases (they expire by themselves): %s", e)
            for reader in self._readers().values():
                reader.stop(timeout=max(0.1, 3.0 - (time.monotonic() - began)))
            outputs.stop_delivery()
            for feed in self.feeds.values():
                feed.stop()
            outputs.close()
            if self.http is not None:
                self.http.stop()
        log.info("stopped in %.1fs; open events saved for resumption", time.monotonic() - began,
                 extra={"event": "stopped"})

    def _notice_edits(self) -> None:
        """The watch file changed on disk (the desk's zone editor, in this process or another): reload, as a
        SIGHUP would. Looked at every FILE_CHECK_S."""
        if self._file_seen is None or time.monotonic() - self._file_seen[1] < FILE_CHECK_S:
            return
        mtime = _mtime(self.config_path)
        if mtime != self._file_seen[0]:
            log.info("%s changed: reloading", self.config_path, extra={"event": "file_changed"})
            self._reload.set()
        self._file_seen = (mtime, time.monotonic())

    def reload(self) -> None:
        """Re-read the watch file: new zones and rules apply to running cameras; streams stay up."""
        if self.config_path is None:
            return
        try:  # whatever goes wrong, the running configuration stays: one camera's bad edit stops no camera
            fresh = load_watch(self.config_path)
            if self.pool is not None:  # the file's cameras go to the pool; their holders apply them
                for camera in fresh.cameras:
                    ZoneFilter(camera)
                self.pool.join(fresh.cameras)
                self.reloads["ok"] += 1
                return
            updates = []
            for camera in fresh.cameras:
                run = self.cameras.get(camera.id)
                if run is None:
                    log.warning("reload: new camera %s needs a restart to be watched", camera.id)
                    continue
                ZoneFilter(camera)  # zones that cannot be used fail here, before any camera has changed
                updates.append((run, camera))
        except Exception as e:
            self.reloads["failed"] += 1
            log.error("reload failed, keeping the running configuration: %s",
                      str(e) if isinstance(e, StreetwatchError) else f"{self.config_path}: {cause(e)}",
                      extra={"event": "reload_failed"})
            return
        for run, camera in updates:
            if camera.source != run.config.source:
                log.warning("reload: %s changed its source; the new one is used after a restart", camera.id)
            run.pipeline.reconfigure(camera)
            run.recorder.reconfigure(camera)
            run.config = camera.model_copy(update={"source": run.config.source})
        self.reloads["ok"] += 1
        log.info("reloaded zones and rules from %s", self.config_path, extra={"event": "reloaded"})

    # -- the shared inference step -----------------------------------------------------------------

    def _infer(self, frames: dict[str, Frame]) -> None:
        for camera_id, frame, dets in self.step.infer(list(frames.items())):
            self._process(camera_id, frame, dets)

    def _process(self, camera_id: str, frame: Frame, dets: Detections | None) -> None:
        run = self.cameras.get(camera_id)
        if run is None:  # a frame of a camera handed back to the pool meanwhile
            return
        if run.main_reader is not None:
            frame = run.with_main_picture(frame, max_skew_s=1.0 + 1.0 / self.config.fps)
        run.last_frame = frame
        try:
            run.pipeline.process(frame, dets)
        except StoreError:  # the database cannot be written: stop, open events stay open for the next start
            raise
        except Exception:  # one camera's bad frame must not stop the others; counted in /metrics
            run.failed += 1
            log.exception("%s: processing a frame failed", camera_id, extra={"camera": camera_id})
            return
        run.processed += 1

    # -- observability -----------------------------------------------------------------------------

    def _readers(self) -> dict[str, LiveReader]:
        return {name: reader for run in self.cameras.values() for name, reader in run.readers().items()}

    def _sink_stats(self) -> dict[str, DeliveryStats]:
        delivery = self.outputs.delivery if self.outputs else None
        return {d.sink.id: d.stats for d in delivery.deliverers} if delivery else {}

    def _extra_metrics(self) -> dict[str, Any]:
        return {
            "frames_processed": {c: r.processed for c, r in self.cameras.items()},
            "frames_failed": {c: r.failed for c, r in self.cameras.items()},
            "frames_dropped": {c: self.slots.dropped.get(c, 0) for c in self.cameras},
            "events_opened": {c: r.pipeline.stats().events_opened for c, r in self.cameras.items()},
            "events_suppressed": {c: r.pipeline.stats().suppressed for c, r in self.cameras.items()},
            "frames_inferred": {c: self.step.counts(c)[0] for c in self.cameras},
            "frames_unchanged": {c: self.step.counts(c)[1] for c in self.cameras},
            "reloads": self.reloads["ok"], "reloads_failed": self.reloads["failed"],
            **self._patrol_metrics(),
        }

    def _patrol_metrics(self) -> dict[str, dict[str, int]]:
        """Patrol cameras: frames without a GPS position (a silent receiver shows here) and fixes received."""
        runs = {c: r.pipeline for c, r in self.cameras.items() if isinstance(r.pipeline, LivePatrol)}
        if not runs:
            return {}
        return {"frames_untagged": {c: p.pipeline.stats.untagged for c, p in runs.items()},
                "gps_fixes": {c: p.feed.fixes for c, p in runs.items()}}


FILE_CHECK_S = 2.0
STORE_EVERY_S = 10.0  # how soon a rejection or an undo in the desk, or a promoted card, reaches a running camera


def _mtime(path: Path | None) -> float | None:
    try:
        return path.stat().st_mtime_ns / 1e9 if path else None
    except OSError:
        return None


def _gone(holder: str) -> bool:
    """A lease holder (host:pid:nonce) that was a process on this machine which no longer runs."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():  # our pid with another nonce: a container restarted as pid 1 again
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def run_cli(args: argparse.Namespace) -> int:
    """`streetwatch watch`: exit 0 after SIGTERM/SIGINT (open events saved for resumption); 2 for a bad
    watch file or model."""
    if args.log_json:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    config = load_watch(args.config)
    if args.out is not None:
        config = config.model_copy(update={"out": args.out})
    if args.db is not None:
        config = config.model_copy(update={"db": args.db})
    if args.pool or args.max_cameras:
        pool = config.pool or Pool()
        config = config.model_copy(update={"pool": pool.model_copy(update={"max_cameras": args.max_cameras})
                                           if args.max_cameras else pool})
    loaded = load_card(config.model or str(DEFAULT_CARD), weights=config.weights)
    loaded.weights_path  # noqa: B018 - a missing weights file is an error before any stream opens
    loaded = for_runtime(loaded, args.runtime)
    sinks = sinks_from_urls(args.sink, config.sinks)
    worker = Worker(config, loaded, config_path=args.config, http_port=args.http_port, sinks=sinks,
                    runtime=args.runtime)
    worker.install_signals()
    worker.run()
    return 0
