"""`rescan` end to end on a real archive (testkit/rescan_archive.py): real clips, the real model, SQLite,
PostgreSQL and a local Ray instance; a run killed with SIGKILL and resumed."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from detector.apps.rescan.run import RescanReport, Setup, current_events, rescan
from detector.config.archive import load_archive
from detector.output.store import EventStore, PostgresEventStore
from testkit import (
    REPO,
    pg,
)
from testkit.rescan_archive import BIKE_FILES, CLIPS, TRUNCATED, build_archive

FPS = 1.0  # the CLI runs below pass --fps 1 too: the same setup, so the same events


@pytest.fixture(scope="module")
def archive(tmp_path_factory, shared) -> Path:
    return build_archive(tmp_path_factory.mktemp("archive"), shared)


@pytest.fixture(scope="module")
def clean(archive, coco_card, tmp_path_factory) -> tuple[Path, RescanReport, list[dict]]:
    """One uninterrupted local run: the reference the other runs must equal."""
    out = tmp_path_factory.mktemp("clean")
    report, events = run(archive, coco_card, out)
    return out, report, events


def run(archive: Path, card, out: Path, store: EventStore | None = None, **options) -> tuple[RescanReport, list]:
    store = store or EventStore(out / "events.sqlite")
    try:
        report = rescan(load_archive(archive.parent / "videos", archive), card, store, out_dir=out,
                        setup=Setup(fps=FPS), **options)
        return report, store.events()
    finally:
        store.close()


def cli(archive: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "detector.cli", "rescan", str(archive.parent / "videos"), "--cameras", str(archive),
            "--out", str(out), "--fps", "1", "--no-progress", "--model", "coco"]  # the card of the `clean` run


def test_every_good_file_is_done_and_the_truncated_one_reported(archive, clean):
    _, report, events = clean
    videos = archive.parent / "videos"
    assert len(CLIPS) >= 6 and report.files_total == len(CLIPS) + len(BIKE_FILES) + 1
    assert sorted(report.done) == sorted([str(videos / c / f"{s}.mp4") for c, s, *_ in CLIPS]
                                         + [str(videos / "cam-b" / f"{s}.mp4") for s in BIKE_FILES])
    assert len(report.failed) == 1 and f"{TRUNCATED}.mp4" in report.failed[0] and "truncated" in report.failed[0]
    assert len(report.ignored) == 1 and "notes.txt" in report.ignored[0]
    assert report.video_s == pytest.approx(6 * 10 + 2 * 40, abs=3)
    # The plaza, the parking lot and the office have no parked bike or stall; the bike scene has two
    # misparked bikes, each one event across both files (10:00:00-10:00:40 and 10:00:40-10:01:20).
    assert report.events == {"cam-a": {}, "cam-b": {"bike": 2}}
    assert len(events) == 2
    for event in events:
        first, last = datetime.fromisoformat(event["first_seen"]), datetime.fromisoformat(event["last_seen"])
        assert first.strftime("%H:%M:%S") < "10:00:05" and last.strftime("%H:%M:%S") > "10:01:10"
        assert event["status"] == "closed" and event["zone_id"] is None
        assert (archive.parent / "videos" / "cam-b" / "20261120").as_posix() in event["source"]["uri"]
        assert (clean[0] / event["snapshot"]).read_bytes()[:2] == b"\xff\xd8"


def test_second_run_does_nothing(archive, coco_card, clean):
    out, _, events = clean
    before = sqlite3.connect(out / "events.sqlite").execute("SELECT path, scanned_at FROM scan_files").fetchall()
    report, again = run(archive, coco_card, out)
    assert report.done == [] and report.assembled == [] and len(report.skipped) == report.files_total
    assert again == events
    after = sqlite3.connect(out / "events.sqlite").execute("SELECT path, scanned_at FROM scan_files").fetchall()
    assert after == before


def test_killed_run_resumes_to_the_events_of_a_clean_run(archive, clean, tmp_path):
    db = tmp_path / "events.sqlite"
    process = subprocess.Popen(cli(archive, tmp_path), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    done = 0
    while time.monotonic() < deadline and process.poll() is None:
        if db.exists():
            try:
                done = sqlite3.connect(db).execute("SELECT count(*) FROM scan_files").fetchone()[0]
            except sqlite3.OperationalError:  # the schema is being created
                done = 0
            if done >= 3:
                break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    killed = sqlite3.connect(db)
    assert 3 <= killed.execute("SELECT count(*) FROM scan_files").fetchone()[0] < clean[1].files_total
    assert killed.execute("SELECT count(*) FROM scan_runs").fetchone()[0] == 0
    resumed = subprocess.run(cli(archive, tmp_path), cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 1, resumed.stderr  # 1: the truncated file is reported
    skipped = re.search(r"(\d+) unchanged", resumed.stdout)
    assert skipped and int(skipped.group(1)) >= 3, resumed.stdout  # the files done before the kill
    store = EventStore(db)
    assert store.events() == clean[2]
    assert json.loads(json.dumps(current_events(store, ["cam-a", "cam-b"]))) == clean[2]
    store.close()


def test_ray_engine_gives_the_events_of_the_local_one(archive, coco_card, clean, tmp_path):
    import ray

    try:
        report, events = run(archive, coco_card, tmp_path, engine="ray")
    finally:
        ray.shutdown()
    assert len(report.done) == len(clean[1].done) and len(report.failed) == 1
    assert events == clean[2]


def test_postgresql_gives_the_events_of_sqlite(archive, coco_card, clean, tmp_path):
    with pg.postgres_server() as url:
        report, events = run(archive, coco_card, tmp_path, PostgresEventStore(url))
        assert events == clean[2] and len(report.failed) == 1
        store = PostgresEventStore(url)  # reopening: the schema is there, the second run does nothing
        report, again = run(archive, coco_card, tmp_path, store)
        assert report.done == [] and report.assembled == [] and again == events


def test_other_rules_supersede_the_old_run_without_redetecting(archive, coco_card, clean, tmp_path):
    shutil.copytree(clean[0], tmp_path, dirs_exist_ok=True)
    stricter = archive.parent / "cam-b-strict.yaml"
    stricter.write_text((archive.parent / "cam-b.yaml").read_text().replace("min_dwell_s: 30", "min_dwell_s: 200"))
    other = archive.parent / "archive-strict.yaml"
    other.write_text(archive.read_text().replace("cam-b: cam-b.yaml", "cam-b: cam-b-strict.yaml"))
    report, events = run(other, coco_card, tmp_path)
    assert report.done == [] and report.assembled == ["cam-b"]  # cached detections; only cam-b changed
    assert events == []  # 80 s of bikes do not reach a 200 s dwell
    store = EventStore(tmp_path / "events.sqlite")
    runs = {r["camera_id"] + ":" + r["status"]: r for r in store.scan_runs()}
    assert set(runs) == {"cam-a:current", "cam-b:current", "cam-b:superseded"}
    assert runs["cam-b:superseded"]["superseded_by"] == runs["cam-b:current"]["id"]
    audit = store.scan_events(runs["cam-b:superseded"]["id"])
    assert sorted(e["event_id"] for e in audit) == sorted(e["id"] for e in clean[2])  # kept for audit
    assert all(e["superseded_by"] == runs["cam-b:current"]["id"] for e in audit)
    store.close()
    # Back to the first rules: that run is current again, with the same events, never duplicated.
    report, events = run(archive, coco_card, tmp_path)
    assert report.done == [] and events == clean[2]


def test_assembled_events_are_those_scan_gives_for_the_same_files(archive, coco_card, detector, clean):
    from detector.apps.scan import scan
    from detector.config.camera import load_camera

    camera = load_camera(archive.parent / "cam-b.yaml")
    bikes = [archive.parent / "videos" / "cam-b" / f"{stamp}.mp4" for stamp in BIKE_FILES]
    start = datetime.fromisoformat("2026-11-20T10:00:00").replace(tzinfo=camera.tz)
    result = scan(bikes, camera, coco_card, clean[0] / "scan", fps=FPS, start=start, detector=detector)
    keys = ("id", "first_seen", "last_seen", "track_id", "zone_id", "kind")
    assert [{k: e[k] for k in keys} for e in result.events] == [{k: e[k] for k in keys} for e in clean[2]]


def test_a_file_damaged_after_its_events_were_committed_keeps_them(archive, coco_card, clean, tmp_path):
    """A half-synced recording must not erase the work orders found in it: its earlier detections stand."""
    shutil.copytree(clean[0], tmp_path / "out")
    victim = archive.parent / "videos" / "cam-b" / f"{BIKE_FILES[1]}.mp4"
    original, stat = victim.read_bytes(), victim.stat()
    try:
        victim.write_bytes(original[: len(original) // 2])
        report, events = run(archive, coco_card, tmp_path / "out")
    finally:
        victim.write_bytes(original)
        os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert events == clean[2] and report.assembled == []  # the committed events are all still there
    assert any(BIKE_FILES[1] in line for line in report.kept), report.kept
    assert any(BIKE_FILES[1] in line for line in report.failed), report.failed
    report, events = run(archive, coco_card, tmp_path / "out")  # the file is whole again: nothing to redo
    assert events == clean[2] and report.done == [] and report.kept == []


def test_the_archive_under_another_spelling_is_the_same_input(archive, coco_card, clean, tmp_path):
    shutil.copytree(clean[0], tmp_path / "out")
    spelled = archive.parent / "videos" / ".." / "videos"
    store = EventStore(tmp_path / "out" / "events.sqlite")
    try:
        report = rescan(load_archive(spelled, archive), coco_card, store, out_dir=tmp_path / "out",
                        setup=Setup(fps=FPS))
        events = store.events()
    finally:
        store.close()
    assert report.done == [] and report.assembled == [] and events == clean[2]


def test_rebuilt_events_go_to_the_sinks_once(archive, coco_card, clean, tmp_path):
    """A camera rebuilt from recorded detections (no re-detection) reports its events as opened and closed;
    a second run rebuilds nothing and sends nothing."""
    from collections import Counter

    from detector.config.sinks import SinkConfig
    from testkit.receiver import Receiver

    out, _, events = clean
    src, dst = sqlite3.connect(out / "events.sqlite"), sqlite3.connect(tmp_path / "events.sqlite")
    src.backup(dst)
    src.close()
    dst.execute("DELETE FROM scan_runs")  # as if the runs had never been assembled
    dst.commit()
    dst.close()
    receiver = Receiver().start()
    try:
        sink = SinkConfig(url=receiver.url)
        report, again = run(archive, coco_card, tmp_path, sinks=[sink], deliver_timeout_s=20)
        assert report.done == [] and report.assembled and again == events and events
        assert report.delivery[sink.id] == {"pending": 0, "delivered": 2 * len(events), "dead": 0}
        got = receiver.accepted()
        assert Counter(m["type"] for m in got) == {"opened": len(events), "closed": len(events)}
        assert {m["event"]["id"] for m in got} == {e["id"] for e in events}
        report, _ = run(archive, coco_card, tmp_path, sinks=[sink], deliver_timeout_s=5)
        assert report.assembled == [] and len(receiver.accepted()) == len(got)
    finally:
        receiver.stop()


def test_records_keep_each_vending_boxs_vendor_and_old_records_read_as_none(tmp_path):
    """Pure logic: a record packs the vendor boxes; one written before they existed unpacks with none (and
    its cache key differs, so it is detected again rather than read: RECORD_FORMAT)."""
    import io

    import numpy as np

    from detector.apps.rescan.detect import FileDetections, pack, unpack

    thumb = np.zeros((4, 4, 3), np.uint8)
    record = FileDetections(
        pts=np.array([0.0, 0.5]), size=(64, 48), scene=np.array([False, False]), first=thumb, last=thumb,
        frame=np.array([0, 1], np.int32), xyxy=np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32),
        confidence=np.array([0.9, 0.8], np.float32), class_name=np.array(["umbrella+person", "bicycle"]),
        kind=np.array(["vending", "bike"]), inferred=np.array([True, True]),
        data={"vendor_xyxy": np.array([[0, 0, 2, 6], [np.nan] * 4], np.float32)})
    frames = unpack(pack(record)).detections()
    assert frames[0].extra("vendor_xyxy").tolist() == [[0, 0, 2, 6]] and np.isnan(frames[1].extra("vendor_xyxy")).all()
    old = io.BytesIO()
    np.savez_compressed(old, **{k: v for k, v in np.load(io.BytesIO(pack(record))).items() if k != "vendor_xyxy"})
    assert unpack(old.getvalue()).data == {}  # a record of before vendors: nobody beside any stall
    assert np.isnan(unpack(old.getvalue()).detections()[0].extra("vendor_xyxy")).all()


def test_a_rejected_object_is_left_out_of_the_next_days_files(archive, coco_card, tmp_path):
    from detector.output.reviews import Reviews
    from detector.output.suppressions import SuppressionRows

    root = tmp_path / "archive"
    for stamp in BIKE_FILES:  # cam-b's two files of the parked bikes, alone
        (root / "videos" / "cam-b" / stamp).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(archive.parent / "videos" / "cam-b" / f"{stamp}.mp4", root / "videos" / "cam-b" / f"{stamp}.mp4")
    shutil.copy(archive.parent / "cam-b.yaml", root / "cam-b.yaml")
    only_b = root / "archive.yaml"
    only_b.write_text('pattern: "{camera}/{date:%Y%m%d}/{time:%H%M%S}.mp4"\ncameras:\n  cam-b: cam-b.yaml\n')
    out = tmp_path / "out"
    _, day1 = run(only_b, coco_card, out)
    assert len(day1) == 2
    wrong = min(day1, key=lambda e: e["bbox"][0])
    store = EventStore(out / "events.sqlite")
    assert Reviews(store, out).review(wrong["id"], "rejected", "allowed here", "ops")["sticks"] is True
    store.close()
    for stamp in BIKE_FILES:  # the next day's recording of the same view
        later = root / "videos" / "cam-b" / stamp.replace("20261120", "20261121")
        later.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "videos" / "cam-b" / f"{stamp}.mp4", later.with_suffix(".mp4"))
    report, _ = run(only_b, coco_card, out)
    assert report.assembled == ["cam-b"] and report.suppressed == 1
    current = current_events(EventStore(out / "events.sqlite"), ["cam-b"])
    days = sorted(e["first_seen"][:10] for e in current)
    assert days == ["2026-11-20", "2026-11-20", "2026-11-21"]  # day 2: only the bike nobody rejected
    assert wrong["id"] in {e["id"] for e in current}  # the rejected event itself stays, rejected
    [held] = SuppressionRows(EventStore(out / "events.sqlite")).listing()
    assert held["tracks"] == 1 and held["last_hit"].startswith("2026-11-21")
