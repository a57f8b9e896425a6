"""`watch` parts without the model: watch files, backoff, placeholders, frame slots, resumption, readers."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import random
import socket
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import yaml

from detector.apps.watch.health import JsonFormatter
from detector.apps.watch.worker import FrameSlots
from detector.camera.dwell import DwellRule
from detector.camera.events import Event, EventManager
from detector.camera.resume import Resumer, event_from_row
from detector.cli import main
from detector.config.camera import CameraConfig
from detector.config.watch import Reconnect, WatchConfig, load_watch
from detector.config.watch import Watchdog as WatchdogSettings
from detector.detections import Detections, Frame
from detector.errors import ConfigError
from detector.video.live import LiveReader, State, backoff_s, is_flat
from detector.video.watchdog import Watchdog
from testkit import media
from testkit.worker import wait_for

TZ = ZoneInfo("Europe/Amsterdam")
CAMERA = {"camera": {"id": "cam-1", "timezone": "Europe/Amsterdam"}, "rules": {"bike": {"min_dwell_s": 5}}}


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


# -- watch files -----------------------------------------------------------------------------------

def test_watch_file_resolves_paths_and_hides_credentials(tmp_path):
    path = write(tmp_path / "w.yaml", {"out": "events", "cameras": [
        {**CAMERA, "source": "clips/a.mp4"},
        {**CAMERA, "camera": {"id": "cam-2", "timezone": "Asia/Shanghai"},
         "source": "rtsp://admin:secret@10.0.0.7:554/stream1"},
    ]})
    config = load_watch(path)
    assert config.out == tmp_path / "events"
    assert config.cameras[0].is_file and config.cameras[0].source == str(tmp_path / "clips" / "a.mp4")
    assert not config.cameras[1].is_file and config.cameras[1].public_source == "rtsp://10.0.0.7:554/stream1"
    assert config.watchdog.no_frame_s == 20 and config.reconnect.max_s == 10
    assert isinstance(config.cameras[1], CameraConfig)  # a camera file plus `source`


@pytest.mark.parametrize(("change", "message"), [
    ({"cameras": [{**CAMERA, "source": "x.mp4", "sorce": "y"}]}, "cameras.0.sorce: unknown key"),
    ({"cameras": [CAMERA]}, "cameras.0.source: Field required"),
    ({"cameras": [{**CAMERA, "source": "a"}, {**CAMERA, "source": "b"}]}, "camera ids ['cam-1'] are used more"),
    ({"watchdog": {"no_frame": 5}}, "watchdog.no_frame: unknown key"),
    ({"cameras": []}, "cameras: give at least one camera (or a pool: section"),
])
def test_bad_watch_files_name_the_file_and_the_key(tmp_path, change, message):
    path = write(tmp_path / "w.yaml", {"out": "o", "cameras": [{**CAMERA, "source": "a.mp4"}], **change})
    with pytest.raises(ConfigError) as e:
        load_watch(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_cli_watch_with_a_bad_file_exits_2_with_one_line(tmp_path, capsys):
    path = write(tmp_path / "w.yaml", {"out": "o", "cameras": [{**CAMERA, "source": "a.mp4", "zonez": []}]})
    assert main(["watch", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cameras.0.zonez: unknown key" in err and str(path) in err


# -- reconnect backoff, placeholders, frame slots, logs ---------------------------------------------

def test_backoff_grows_exponentially_is_capped_and_jittered():
    settings = Reconnect(initial_s=1, max_s=30, jitter=0.2)
    rng = random.Random(1)
    waits = [backoff_s(n, settings, rng) for n in range(1, 12)]
    for n, wait in enumerate(waits, start=1):
        base = min(30, 2 ** (n - 1))
        assert 0.8 * base <= wait <= 1.2 * base
    assert max(waits) <= 36 and len({round(w, 6) for w in waits[-4:]}) == 4  # capped, and not in lockstep


def test_placeholder_pictures_are_flat_and_a_street_is_not(bike_scene):
    assert is_flat(np.zeros((480, 640, 3), np.uint8))
    assert is_flat(np.full((480, 640, 3), (128, 64, 200), np.uint8))
    assert not is_flat(bike_scene.image)


def test_frame_slots_keep_the_latest_frame_per_camera_and_count_the_dropped():
    slots = FrameSlots()
    frames = [media_frame(i) for i in range(3)]
    slots.put("a", frames[0])
    slots.put("a", frames[1])
    slots.put("b", frames[2])
    taken = slots.take(timeout=0.1)
    assert taken == {"a": frames[1], "b": frames[2]} and slots.dropped == {"a": 1}
    began = time.monotonic()
    assert slots.take(timeout=0.2) == {} and time.monotonic() - began >= 0.15


def test_json_logs_are_one_object_per_line_with_the_extras():
    record = logging.LogRecord("detector.live", logging.WARNING, __file__, 1, "cam %s lost", ("a",), None)
    record.camera = "a"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "cam a lost" and line["camera"] == "a" and line["level"] == "warning"
    assert line["ts"].endswith("Z")


def media_frame(index: int, image: np.ndarray | None = None):
    from detector.detections import Frame

    return Frame(image=np.zeros((4, 4, 3), np.uint8) if image is None else image, pts_s=float(index),
                 time=datetime(2026, 11, 23, 9, 0, tzinfo=TZ) + timedelta(seconds=index), source_uri="x", index=index)


# -- resumption ------------------------------------------------------------------------------------

class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def opened(self, event: Event) -> None:
        self.calls.append(("opened", event.id))

    def updated(self, event: Event) -> None:
        self.calls.append(("updated", event.id))

    def closed(self, event: Event) -> None:
        self.calls.append(("closed", event.id))


def stored_event(box: list[float], last_seen: datetime) -> Event:
    row = {"id": "cam-1-20261123T085000-bike-0a1b2c3d", "camera_id": "cam-1", "kind": "bike",
           "category": {"code": "05-06", "name": "非机动车乱停放"}, "zone_id": None,
           "first_seen": "2026-11-23T08:50:00.000+01:00", "last_seen": last_seen.isoformat(), "dwell_s": 1.0,
           "confidence": 0.8, "bbox": box, "track_id": 3, "snapshot": "snapshots/x.jpg", "clean_frame": None,
           "crop": None, "source": {"uri": "rtsp://cam", "pts_s": 1.0}, "model": {"card": "c", "sha256": "s"},
           "status": "open"}
    return event_from_row(row)


def tracked(boxes: list[list[float]], first_track: int = 1) -> Detections:
    n = len(boxes)
    return Detections(xyxy=np.array(boxes, np.float32), confidence=np.full(n, 0.7), class_name=["bicycle"] * n,
                      kind=["bike"] * n, track_id=np.arange(first_track, first_track + n))


def test_a_stored_open_event_continues_with_its_id_and_an_unseen_one_closes():
    restart = datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    here = stored_event([100, 100, 200, 200], restart - timedelta(minutes=2))
    gone = stored_event([400, 100, 500, 200], restart - timedelta(minutes=2))
    gone = replace(gone, id="cam-1-20261123T085000-bike-ffffffff")
    sink = Recorder()
    manager = EventManager("cam-1", {"card": "c", "sha256": "s"}, {"bike": 30.0}, lambda c, k: {}, sink)
    rules = CameraConfig.model_validate(CAMERA).rules
    dwell, resumer = DwellRule(rules), Resumer([here, gone], rules)
    frame = media_frame(0)
    # The bike at (almost) the same place, and a new object elsewhere.
    dets = tracked([[104, 98, 203, 201], [600, 300, 700, 400]])
    resumer.adopt(dets, dwell, manager)
    violations = dwell.update(dets, restart)
    assert [v.placement.since for v in violations] == [here.first_seen]  # confirmed at once, no new dwell
    manager.update(violations, frame)
    assert sink.calls == [("updated", here.id)] and here.last_seen == frame.time
    assert resumer.resumed == [here.id] and resumer.pending == [gone]
    assert resumer.expire(restart, manager) == []
    assert resumer.expire(restart + timedelta(seconds=31), manager) == [gone]
    assert sink.calls[-1] == ("closed", gone.id) and gone.last_seen == restart - timedelta(minutes=2)


def test_a_moved_object_does_not_inherit_the_stored_event():
    restart = datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    event = stored_event([100, 100, 200, 200], restart)
    manager = EventManager("cam-1", {}, {"bike": 30.0}, lambda c, k: {}, Recorder())
    rules = CameraConfig.model_validate(CAMERA).rules
    dwell, resumer = DwellRule(rules), Resumer([event], rules)
    dets = tracked([[150, 150, 250, 250]])
    resumer.adopt(dets, dwell, manager)
    assert dwell.update(dets, restart) == []  # IoU 0.14: a new placement
    assert resumer.pending == [event] and manager.open == {}


def test_reload_swaps_zones_and_rules_of_a_running_pipeline(coco_card, tmp_path):
    from detector.camera.pipeline import CameraPipeline

    camera = CameraConfig.model_validate({**CAMERA, "rules": {"bike": {"min_dwell_s": 1, "close_after_s": 5}}})
    sink = Recorder()
    sink.flush = lambda: None  # type: ignore[attr-defined]
    pipeline = CameraPipeline(camera, coco_card.card, sink)
    t0 = datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    bike = tracked([[100, 100, 200, 200]])

    def frame(s: float):
        return Frame(image=None, shape=(1280, 640), pts_s=s, time=t0 + timedelta(seconds=s), source_uri="x", index=0)

    for s in range(4):  # dwell reached: one open event
        pipeline.process(frame(s), bike, scene_changed=False)
    assert pipeline.stats().open_events == 1
    fresh = CameraConfig.model_validate({**CAMERA, "rules": {"bike": {"min_dwell_s": 9, "close_after_s": 70}},
                                         "zones": [{"id": "z", "type": "ignore", "polygon": [[0, 0], [1, 0], [1, 1]]}]})
    pipeline.reconfigure(fresh)
    assert pipeline.camera is fresh and pipeline.stats().open_events == 1  # the open event carries on
    for s in range(4, 40):  # unseen for 36 s: closed after 5 s before, but 70 s now
        pipeline.process(frame(s), Detections(), scene_changed=False)
    assert pipeline.stats().open_events == 1 and not any(c[0] == "closed" for c in sink.calls)
    with pytest.raises(ValueError, match="cannot become"):
        pipeline.reconfigure(CameraConfig.model_validate({**CAMERA, "camera": {**CAMERA["camera"], "id": "other"}}))


# -- readers on real files and a silent server ------------------------------------------------------

def reader_for(source: str, tmp_path: Path, fps: float = 2.0, **watchdog: float) -> tuple[LiveReader, list]:
    config = WatchConfig.model_validate({"out": str(tmp_path), "cameras": [{**CAMERA, "source": source}],
                                         "reconnect": {"initial_s": 0.2, "max_s": 0.5, "open_timeout_s": 3,
                                                       "read_timeout_s": 3},
                                         "watchdog": watchdog or {}})
    got: list = []
    reader = LiveReader(config.cameras[0], fps, config.reconnect, config.watchdog, lambda cam, f: got.append(f))
    return reader, got


def test_a_file_source_plays_at_its_pace_with_wall_clock_times_in_the_camera_zone(tmp_path, bike_scene):
    video = media.still_video(tmp_path / "bikes.mp4", [(bike_scene.image, 2.0)])
    reader, got = reader_for(str(video), tmp_path)
    began = datetime.now(TZ)
    reader.start()
    time.sleep(3.2)  # more than the 2 s file: it loops
    reader.stop()
    assert 5 <= len(got) <= 8, len(got)  # 2 fps sampled from 5 fps, in real time
    assert all(f.time.tzinfo == TZ and f.time >= began for f in got)
    assert [f.index for f in got] == sorted(f.index for f in got) and got[0].image.shape == (640, 1280, 3)
    assert reader.stats.state == State.STOPPED and reader.stats.errors == 0


def test_keyframes_alone_are_decoded_when_they_come_as_often_as_the_sampling(tmp_path, bike_scene):
    video = media.still_video(tmp_path / "bikes.mp4", [(bike_scene.image, 6.0)])  # a keyframe every 2 s
    reader, got = reader_for(str(video), tmp_path, fps=0.5)
    reader.start()
    wait_for(lambda: len(got) >= 2, 10, "two sampled frames")
    keyframes_only = reader.stats.keyframes_only
    reader.stop()
    assert keyframes_only and len(got) >= 2 and reader.stats.reconnects == 0
    assert all(f.pts_s % 2.0 < 0.01 for f in got), [f.pts_s for f in got]


def test_black_frames_never_reach_the_model(tmp_path):
    video = media.still_video(tmp_path / "black.mp4", [(np.zeros((360, 640, 3), np.uint8), 2.0)], noise=0)
    reader, got = reader_for(str(video), tmp_path)
    reader.start()
    wait_for(lambda: reader.stats.rejected["flat"] >= 2, 10, "two flat frames")
    reader.stop()
    assert got == [] and reader.stats.rejected["flat"] >= 2


def frozen_video(path: Path, image: np.ndarray, seconds: float, fps: int = 5) -> Path:
    """A camera stuck on one picture: its encoder repeats it, so every decoded frame is bit-identical."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv444p"
        stream.options = {"preset": "ultrafast", "qp": "0", "g": str(2 * fps)}
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        for _ in range(round(seconds * fps)):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_watchdog_restarts_a_frozen_picture(tmp_path, bike_scene):
    video = frozen_video(tmp_path / "frozen.mp4", bike_scene.image, seconds=6.0)
    reader, got = reader_for(str(video), tmp_path, frozen_s=1.0)
    watchdog = Watchdog({"cam-1": reader}, reader.watchdog, interval_s=0.2)
    reader.start()
    watchdog.start()
    wait_for(lambda: reader.stats.watchdog_restarts >= 1 and len(got) >= 2, 10, "a restart of the frozen source")
    watchdog.stop()
    reader.stop()
    assert reader.stats.watchdog_restarts >= 1 and len(got) >= 2


def test_watchdog_restarts_a_source_that_connects_but_never_sends(tmp_path):
    with socket.socket() as silent:  # accepts the TCP connection, then says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        reader, got = reader_for(f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x", tmp_path, no_frame_s=1.0)
        watchdog = Watchdog({"cam-1": reader}, reader.watchdog, interval_s=0.2)
        reader.start()
        watchdog.start()
        wait_for(lambda: reader.stats.watchdog_restarts >= 1, 10, "a restart of the silent source")
        watchdog.stop()
        reader.stop(timeout=0.1)
    assert got == [] and reader.stats.watchdog_restarts >= 1


def test_a_reader_thread_killed_by_an_unexpected_error_is_restarted_by_the_watchdog(tmp_path, bike_scene):
    from detector.apps.watch.health import ReaderCollector

    video = media.still_video(tmp_path / "bikes.mp4", [(bike_scene.image, 2.0)])
    reader, got = reader_for(str(video), tmp_path)
    real_stream, calls = reader._stream, []

    def first_call_dies(generation: int):
        calls.append(generation)
        if len(calls) == 1:
            raise KeyError("injected")  # a bug in the reader, not a bad stream
        return real_stream(generation)

    reader._stream = first_call_dies  # type: ignore[method-assign]
    watchdog = Watchdog({"cam-1": reader}, reader.watchdog, interval_s=0.1)
    reader.start()
    deadline = time.monotonic() + 2
    while reader.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not reader.alive() and reader.stats.state == State.FAILED  # died, and says why
    assert reader.stats.last_error == "reader failed: KeyError: 'injected'"
    watchdog.start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    watchdog.stop()
    reader.stop()
    assert got and reader.stats.deaths == 1 and reader.stats.watchdog_restarts == 1
    metrics = {m.name: m.samples for m in ReaderCollector(lambda: {"cam-1": reader}, dict).collect()}
    assert [s.value for s in metrics["streetwatch_reader_deaths"]] == [1]


def test_reader_state_stays_consistent_under_concurrent_writers(tmp_path):
    import threading

    reader, _ = reader_for("rtsp://127.0.0.1:9/never-started", tmp_path)
    generation = reader._generation  # the connection the "reader thread" writes for (never started here)
    stop, seen = threading.Event(), []

    def frames() -> None:
        for _ in range(2000):
            reader._change(generation, "frames", state=State.STREAMING)
            reader._reject(generation, "flat")

    def watchdog() -> None:
        for _ in range(500):
            reader._change(None, "watchdog_restarts")

    def abandoned() -> None:  # a thread of an older connection whose read has not returned yet
        for _ in range(2000):
            assert not reader._change(generation - 1, "frames", state=State.BACKOFF)

    def scrape() -> None:
        while not stop.is_set():
            seen.append(reader.stats)

    threads = [threading.Thread(target=f) for f in (frames, frames, watchdog, abandoned)]
    scraper = threading.Thread(target=scrape)
    scraper.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    scraper.join()
    final = reader.stats
    assert final.frames == 4000 and final.rejected["flat"] == 4000 and final.watchdog_restarts == 500
    assert final.state == State.STREAMING  # the abandoned connection's writes were dropped
    counts = [(s.frames, s.rejected["flat"], s.watchdog_restarts) for s in seen]
    assert all(a <= b for x, y in itertools.pairwise(counts) for a, b in zip(x, y, strict=True))


def test_watchdog_settings_default_to_twenty_seconds():
    assert WatchdogSettings().no_frame_s == 20


def test_a_busy_http_port_is_a_one_line_error(tmp_path, coco_card):
    from detector.apps.watch.worker import Worker
    from detector.errors import StreetwatchError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        config = WatchConfig.model_validate({"out": str(tmp_path), "http": {"port": busy.getsockname()[1]},
                                             "cameras": [{**CAMERA, "source": "a.mp4"}]})
        worker = Worker(config, coco_card, detector=object())  # type: ignore[arg-type]
        with pytest.raises(StreetwatchError, match=r"cannot serve /healthz on 127\.0\.0\.1"):
            worker.run()


def test_an_http_mjpeg_camera_is_sampled_by_arrival_not_by_its_made_up_timestamps(tmp_path, bike_scene):
    """MJPEG over HTTP (multipart/x-mixed-replace) at 5 fps; FFmpeg stamps it as if it were 25 fps."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from testkit.rtsp import write_frames

    jpegs = [p.read_bytes() for p in sorted(write_frames(tmp_path / "frames", bike_scene.image, count=3).iterdir())]
    done = threading.Event()

    class Mjpeg(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            i = 0
            while not done.is_set():
                jpeg = jpegs[i % len(jpegs)]
                i += 1
                try:
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                                     + jpeg + b"\r\n")
                except OSError:
                    return
                time.sleep(0.2)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Mjpeg)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        reader, got = reader_for(f"http://127.0.0.1:{server.server_address[1]}/video.mjpg", tmp_path)
        reader.start()
        time.sleep(4.0)
        reader.stop()
    finally:
        done.set()
        server.shutdown()
        server.server_close()
    assert 6 <= len(got) <= 9, len(got)  # 2 fps asked, for about 4 s
    assert got[0].image.shape == bike_scene.image.shape and reader.stats.errors == 0


def test_an_hls_camera_is_sampled_by_its_timestamps(tmp_path, bike_scene):
    """HLS arrives a segment at a time; its frames are still sampled at 2 per second of its own time."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    import av

    folder = tmp_path / "hls"
    folder.mkdir()
    with av.open(str(folder / "cam.m3u8"), mode="w", format="hls",
                 options={"hls_time": "2", "hls_playlist_type": "vod"}) as container:
        stream = container.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 640, 320, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "10"}
        image = bike_scene.image[::2, ::2].copy()
        rng = np.random.default_rng(0)
        for _ in range(30):  # 6 s
            noisy = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        reader, got = reader_for(f"http://127.0.0.1:{server.server_address[1]}/cam.m3u8", tmp_path)
        reader.start()
        wait = time.monotonic() + 10
        while reader.stats.errors == 0 and time.monotonic() < wait:  # the playlist ends: one pass read
            time.sleep(0.1)
        reader.stop()
    finally:
        server.shutdown()
        server.server_close()
    first_pass = [f for f in got if f.index <= 12]
    assert 11 <= len(first_pass) <= 12, [f.pts_s for f in got]  # 6 s at 2 fps, read faster than real time
    assert [round(f.pts_s * 2) for f in first_pass] == list(range(len(first_pass)))
    assert all(f.time <= datetime.now(TZ) for f in got)  # never stamped in the future


# -- sub-stream cameras ------------------------------------------------------------------------------

def test_a_sub_stream_camera_detects_on_the_sub_stream_and_snaps_the_main_stream(tmp_path, bike_scene, coco_card,
                                                                                 detector):
    import sqlite3
    import threading

    import cv2

    from detector.apps.watch.worker import Worker

    small = cv2.resize(bike_scene.image, (640, 320), interpolation=cv2.INTER_AREA)
    sub = media.still_video(tmp_path / "sub.mp4", [(small, 4.0)])
    main = media.still_video(tmp_path / "main.mp4", [(bike_scene.image, 4.0)])
    camera = {"camera": {"id": "cam-sub", "timezone": "Europe/Amsterdam"},
              "zones": [{"id": "bay", "type": "allowed", "kinds": ["bike"],
                         "polygon": [[0.52, 0.0], [1.0, 0.0], [1.0, 1.0], [0.52, 1.0]]}],
              "rules": {"bike": {"min_dwell_s": 2, "close_after_s": 5}}}
    config = WatchConfig.model_validate({"out": str(tmp_path / "out"), "http": {"port": 0}, "static_recheck_s": 0,
                                         "cameras": [{**camera, "source": str(sub), "snapshot_source": str(main)}]})
    workers: list[Worker] = []

    def run() -> None:  # the worker's SQLite connection belongs to the thread that runs it
        workers.append(Worker(config, coco_card, detector=detector))
        workers[0].run()

    thread = threading.Thread(target=run)
    thread.start()

    def two_events_with_snapshots() -> bool:
        path = tmp_path / "out" / "events.sqlite"
        if not path.exists():
            return False
        try:
            with sqlite3.connect(path) as db:
                return db.execute("SELECT count(*) FROM events WHERE crop IS NOT NULL").fetchone()[0] == 2
        except sqlite3.OperationalError:
            return False

    wait_for(two_events_with_snapshots, 30, "two events with snapshots")
    assert set(workers[0]._readers()) == {"cam-sub", "cam-sub:main"}
    workers[0].stop()
    thread.join(timeout=15)
    with sqlite3.connect(tmp_path / "out" / "events.sqlite") as db:
        rows = db.execute("SELECT bbox, clean_frame, crop FROM events").fetchall()
    assert len(rows) == 2, rows  # the two bikes outside the bay, as on the full-resolution stream
    for bbox, clean, crop in rows:
        assert max(json.loads(bbox)) <= 640  # boxes in sub-stream pixels
        assert cv2.imread(str(tmp_path / "out" / clean)).shape == (640, 1280, 3)  # the main stream's picture
        assert cv2.imread(str(tmp_path / "out" / crop)).shape[0] > 160  # cropped at main resolution


def test_pixel_zones_with_a_sub_stream_are_an_error(tmp_path):
    camera = {**CAMERA, "zones": [{"id": "bay", "type": "allowed", "polygon": [[0, 0], [100, 0], [100, 100]]}],
              "source": "sub.mp4", "snapshot_source": "main.mp4"}
    with pytest.raises(ValueError, match=r"zones \['bay'\] are in pixels"):
        WatchConfig.model_validate({"out": str(tmp_path), "cameras": [camera]})


def test_a_frame_that_fails_is_counted_and_the_other_cameras_go_on(tmp_path, coco_card, caplog):
    from detector.apps.watch.worker import Worker
    from detector.output.outputs import Outputs

    config = WatchConfig.model_validate({"out": str(tmp_path), "http": {"port": 0},
                                         "cameras": [{**CAMERA, "source": "a.mp4"},
                                                     {**CAMERA, "camera": {**CAMERA["camera"], "id": "cam-2"},
                                                      "source": "b.mp4"}]})
    worker = Worker(config, coco_card, detector=object())  # type: ignore[arg-type]
    outputs = Outputs.open(tmp_path / "events.sqlite", tmp_path, {c.id: [] for c in config.cameras})
    for camera in config.cameras:
        worker.cameras[camera.id] = worker._camera_run(camera, outputs, [])
    good = media_frame(0, image=np.full((36, 64, 3), 90, np.uint8))
    bad = replace(good, image=None)  # no picture and no scene answer: the pipeline refuses it
    with caplog.at_level(logging.ERROR):
        worker._process("cam-1", bad, Detections())
        worker._process("cam-2", good, Detections())
    outputs.close()
    metrics = worker._extra_metrics()
    assert metrics["frames_failed"] == {"cam-1": 1, "cam-2": 0}
    assert metrics["frames_processed"] == {"cam-1": 0, "cam-2": 1}
    assert "cam-1: processing a frame failed" in caplog.text


def test_a_reload_that_fails_for_any_reason_keeps_the_running_configuration(tmp_path, coco_card, caplog,
                                                                            monkeypatch):
    """A `.nan` in an edited polygon (it stopped the whole process before), or any other failure while the file is
    read: one line, the running zones and rules stay, and /metrics counts it."""
    from detector.apps.watch import worker as worker_module
    from detector.output.outputs import Outputs

    text = (f"out: {tmp_path}\nhttp: {{port: 0}}\ncameras:\n  - camera: {{id: cam-1, timezone: Europe/Amsterdam}}\n"
            "    source: a.mp4\n    rules: {bike: {min_dwell_s: 5}}\n"
            "    zones: [{id: bay, type: allowed, polygon: [[0, 0], [0.5, 0], [0.5, 0.5]]}]\n")
    path = tmp_path / "watch.yaml"
    path.write_text(text)
    worker = worker_module.Worker(load_watch(path), coco_card, config_path=path, detector=object())  # type: ignore[arg-type]
    outputs = Outputs.open(tmp_path / "events.sqlite", tmp_path, {"cam-1": []})
    try:
        worker.cameras["cam-1"] = worker._camera_run(worker.config.cameras[0], outputs, [])
        running = worker.cameras["cam-1"].pipeline.camera
        path.write_text(text.replace("0.5, 0.5", ".nan, 0.5"))
        with caplog.at_level(logging.ERROR):
            worker.reload()
        assert "reload failed, keeping the running configuration" in caplog.text and "finite number" in caplog.text
        monkeypatch.setattr(worker_module, "load_watch", lambda p: (_ for _ in ()).throw(RuntimeError("disk on fire")))
        worker.reload()
        assert "RuntimeError: disk on fire" in caplog.text
        assert worker.cameras["cam-1"].pipeline.camera is running
        monkeypatch.undo()
        path.write_text(text.replace("bay", "bay-2"))
        worker.reload()
        assert worker.cameras["cam-1"].pipeline.camera.zones[0].id == "bay-2"
        metrics = worker._extra_metrics()
        assert (metrics["reloads"], metrics["reloads_failed"]) == (1, 2)
    finally:
        outputs.close()


def _bike_bay_camera(camera_id: str, close_after_s: float) -> dict:
    """The bike scene's camera: the right photo a bay, bikes a violation after 2 s."""
    return {"camera": {"id": camera_id, "timezone": "Europe/Amsterdam"},
            "zones": [{"id": "bay", "type": "allowed", "kinds": ["bike"],
                       "polygon": [[0.52, 0.0], [1.0, 0.0], [1.0, 1.0], [0.52, 1.0]]}],
            "rules": {"bike": {"min_dwell_s": 2, "close_after_s": close_after_s}}}


@contextlib.contextmanager
def _watching(config: WatchConfig, card, detector):
    """A Worker running `config` in a thread of its own (its SQLite connection belongs to that thread), stopped
    and joined on the way out."""
    import threading

    from detector.apps.watch.worker import Worker

    workers: list[Worker] = []

    def run() -> None:
        workers.append(Worker(config, card, detector=detector))
        workers[0].run()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield wait_for(lambda: workers[0] if workers else None, 30, "the worker")
    finally:
        if workers:
            workers[0].stop()
        thread.join(timeout=15)


def _query(db: Path, sql: str) -> list[tuple]:
    """The rows of `sql` on a store a worker is writing (none before it exists)."""
    import sqlite3

    try:
        with sqlite3.connect(db) as connection:
            return connection.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


def test_a_rejection_made_while_watching_keeps_its_object_from_raising_events(tmp_path, bike_scene, coco_card,
                                                                             detector, monkeypatch):
    from detector.apps.watch import worker as worker_module
    from detector.output.reviews import Reviews
    from detector.output.store import open_store
    from detector.output.suppressions import SuppressionRows

    monkeypatch.setattr(worker_module, "STORE_EVERY_S", 0.5)  # the desk's rejection reaches it at once
    video = media.still_video(tmp_path / "bikes.mp4", [(bike_scene.image, 6.0)])
    out = tmp_path / "out"
    config = WatchConfig.model_validate({"out": str(out), "http": {"port": 0}, "static_recheck_s": 0, "cameras": [
        {**_bike_bay_camera("cam-live", close_after_s=3), "source": str(video)}]})

    def rows() -> list[tuple]:
        return _query(out / "events.sqlite", "SELECT id, status, crop FROM events ORDER BY id")

    with _watching(config, coco_card, detector) as worker:
        wait_for(lambda: len([r for r in rows() if r[2]]) == 2, 40, "two events with snapshots")
        store = open_store(out / "events.sqlite")
        wrong = min(store.events(), key=lambda e: e["bbox"][0])
        assert Reviews(store, out).review(wrong["id"], "rejected", "not a violation", "ops")["sticks"] is True
        wait_for(lambda: dict((i, s) for i, s, _ in rows())[wrong["id"]] == "closed", 15, "the rejected one closed")
        time.sleep(5)  # the bike is still there, looping: kept out, never a new event
        assert len(rows()) == 2 and [s for i, s, _ in rows() if i != wrong["id"]] == ["open"]
        assert worker._extra_metrics()["events_suppressed"] == {"cam-live": 1}
    [held] = SuppressionRows(store).listing()
    assert held["tracks"] == 1 and held["last_hit"]  # written at the latest when the worker stopped
    store.close()


def test_a_promoted_card_is_taken_without_a_restart_and_a_rollback_goes_back(tmp_path, bike_scene, coco_card,
                                                                            detector, monkeypatch, caplog):
    from detector.apps.watch import worker as worker_module
    from detector.output.rollouts import RolloutRows
    from detector.output.store import open_store
    from testkit import REPO

    monkeypatch.setattr(worker_module, "STORE_EVERY_S", 0.5)
    other = tmp_path / "coco-b.yaml"  # the same network under another name: a "learnt" card
    other.write_text((REPO / "detector" / "cards" / "coco.yaml").read_text().replace("name: coco-yolov8n",
                                                                                     "name: coco-b"))
    video = media.still_video(tmp_path / "bikes.mp4", [(bike_scene.image, 6.0)])
    out = tmp_path / "out"
    camera = {**_bike_bay_camera("cam-group", close_after_s=30), "source": str(video)}
    config = WatchConfig.model_validate({"out": str(out), "http": {"port": 0}, "static_recheck_s": 0,
                                         "model": "coco", "card_group": "north", "cameras": [camera]})

    def open_events() -> dict[str, str]:
        return dict(_query(out / "events.sqlite", "SELECT id, last_seen FROM events WHERE status = 'open'"))

    with _watching(config, coco_card, detector) as worker:
        wait_for(lambda: len(open_events()) == 2, 40, "two open events")
        before = open_events()
        store = open_store(out / "events.sqlite")
        RolloutRows(store).promote("north", str(other), "test", "better on the holdout", default="coco")
        wait_for(lambda: worker.loaded.card.name == "coco-b", 60, "the promoted card running")
        wait_for(lambda: all(open_events().get(i, "") > seen for i, seen in before.items()), 20,
                 "the open events seen again under the new card")
        RolloutRows(store).promote("north", str(tmp_path / "missing.yaml"), "test", "a card that is not there")
        wait_for(lambda: worker.cards.failed is not None, 20, "the missing card refused")
        assert worker.loaded.card.name == "coco-b"  # the running one stays
        RolloutRows(store).promote("north", "coco", "test", "back")
        wait_for(lambda: worker.loaded.card.name == "coco-yolov8n", 60, "the rollback")
        assert set(open_events()) == set(before)  # no event was lost or split by the switches
        store.close()
    assert "does not load, the running one stays" in caplog.text
