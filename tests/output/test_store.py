import sqlite3
from pathlib import Path

import pytest

from detector.errors import StreetwatchError
from detector.output.marks import MarkRows
from detector.output.outbox import Outbox
from detector.output.pool import PoolRows
from detector.output.store import SCHEMA_VERSION, EventStore
from detector.output.suppressions import SuppressionRows


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    EventStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StreetwatchError, match="schema v99, this streetwatch knows v6"):
        EventStore(path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    path.write_bytes(b"x" * 4096)
    with pytest.raises(StreetwatchError, match="not a usable events database"):
        EventStore(path)


# The schema as the hand-written sqlite3 store (before SQLAlchemy) created it: v1 is `events`, v2 adds the rest.
V1 = """
CREATE TABLE events (id TEXT PRIMARY KEY, camera_id TEXT NOT NULL, kind TEXT NOT NULL, category_code TEXT NOT NULL,
    category_name TEXT NOT NULL, zone_id TEXT, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
    dwell_s REAL NOT NULL, confidence REAL NOT NULL, bbox TEXT NOT NULL, track_id INTEGER NOT NULL, snapshot TEXT,
    clean_frame TEXT, crop TEXT, source_uri TEXT NOT NULL, source_pts_s REAL NOT NULL, model_card TEXT NOT NULL,
    model_sha256 TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('open', 'closed')));
CREATE INDEX events_camera_time ON events (camera_id, first_seen);
CREATE INDEX events_status ON events (status);
"""
V2 = """
CREATE TABLE scan_files (path TEXT NOT NULL, detect_key TEXT NOT NULL, camera_id TEXT NOT NULL, size BIGINT NOT NULL,
    mtime DOUBLE PRECISION NOT NULL, fingerprint TEXT NOT NULL, model_card TEXT NOT NULL,
    weights_sha256 TEXT NOT NULL, rules_sha256 TEXT,
    status TEXT NOT NULL CHECK (status IN ('detected', 'done', 'failed')), start_time TEXT, video_s DOUBLE PRECISION,
    problem TEXT, detections BLOB, scanned_at TEXT NOT NULL, PRIMARY KEY (path, detect_key));
CREATE INDEX scan_files_camera ON scan_files (camera_id, detect_key);
CREATE TABLE scan_runs (id TEXT PRIMARY KEY, camera_id TEXT NOT NULL, model_card TEXT NOT NULL,
    weights_sha256 TEXT NOT NULL, rules_sha256 TEXT NOT NULL, params TEXT NOT NULL, files_digest TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('current', 'superseded')), superseded_by TEXT, finished_at TEXT NOT NULL);
CREATE INDEX scan_runs_camera ON scan_runs (camera_id, status);
CREATE TABLE scan_events (run_id TEXT NOT NULL, event_id TEXT NOT NULL, camera_id TEXT NOT NULL, event TEXT NOT NULL,
    superseded_by TEXT, PRIMARY KEY (run_id, event_id));
CREATE INDEX scan_events_camera ON scan_events (camera_id);
"""
ROW = ("cam-1-e1", "cam-1", "bike", "05-06", "非机动车乱停放", None, "2026-11-20T10:00:00.000+01:00",
       "2026-11-20T10:01:00.000+01:00", 60.0, 0.75, "[1.0, 2.0, 3.0, 4.0]", 7, "s.jpg", "c.jpg", "k.jpg",
       "rtsp://cam-1", 59.5, "coco-yolov8n", "ab" * 32, "open")


def old_file(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    db.executescript(V1 + (V2 if version >= 2 else "") + f"PRAGMA journal_mode=WAL; PRAGMA user_version = {version};")
    db.execute(f"INSERT INTO events VALUES ({', '.join('?' * len(ROW))})", ROW)
    if version >= 2:
        db.execute("INSERT INTO scan_files VALUES ('/a/1.mp4', 'k', 'cam-1', 10, 1.5, 'f', 'coco', 'w', NULL, "
                   "'detected', '2026-11-20T10:00:00+01:00', 600.0, NULL, x'00ff', '2026-11-21T00:00:00+01:00')")
    db.commit()
    db.close()


@pytest.mark.parametrize("version", [1, 2])
def test_files_of_earlier_streetwatch_open_and_upgrade(tmp_path: Path, version: int) -> None:
    path = tmp_path / "events.sqlite"
    old_file(path, version)
    store = EventStore(path)
    [event] = store.events()
    assert event == {
        "id": "cam-1-e1", "camera_id": "cam-1", "kind": "bike", "category": {"code": "05-06", "name": "非机动车乱停放"},
        "zone_id": None, "first_seen": ROW[6], "last_seen": ROW[7], "dwell_s": 60.0, "confidence": 0.75,
        "bbox": [1.0, 2.0, 3.0, 4.0], "track_id": 7, "snapshot": "s.jpg", "clean_frame": "c.jpg", "crop": "k.jpg",
        "source": {"uri": "rtsp://cam-1", "pts_s": 59.5}, "model": {"card": "coco-yolov8n", "sha256": "ab" * 32},
        "status": "open",
    }
    if version == 2:
        assert list(store.scan_files("k")) == ["/a/1.mp4"] and store.file_detections("/a/1.mp4", "k") == b"\x00\xff"
    else:
        assert store.scan_files("k") == {} and store.scan_runs() == []  # the v2 tables were added
    assert Outbox(store).counts() == {} and Outbox(store).sinks() == []  # the v3 outbox was added
    assert store.places() == []  # v4: patrol places, and geo columns on events
    store.upsert([_geo_event("cam-1-e2")])
    geo = next(e for e in store.events() if e["id"] == "cam-1-e2")
    assert geo["location"]["lat"] == 31.2 and geo["passes"] == 2
    assert PoolRows(store).cameras() == {} and PoolRows(store).members() == {}  # v5: the watch pool's tables
    assert SuppressionRows(store).listing(lifted=True) == []  # v6: rejections that stick
    assert MarkRows(store, path.parent).listing() == []  # ... and boxes operators drew
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _geo_event(event_id: str):
    event = _event(event_id)
    event.locate({"lat": 31.2, "lon": 121.4, "accuracy_m": 2.0, "method": "pinhole"}, None, 9, 2, "cleared")
    return event


def test_geo_fields_of_patrol_events_round_trip_and_fixed_camera_events_have_none(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    store.upsert([_geo_event("geo"), _event("fixed")])
    by_id = {e["id"]: e for e in store.events()}
    assert by_id["geo"]["location"] == {"lat": 31.2, "lon": 121.4, "accuracy_m": 2.0, "method": "pinhole"}
    assert (by_id["geo"]["sightings"], by_id["geo"]["passes"], by_id["geo"]["resolution"]) == (9, 2, "cleared")
    assert "location" not in by_id["fixed"] and by_id["fixed"] == _event("fixed").to_dict() | {
        "first_seen": by_id["fixed"]["first_seen"], "last_seen": by_id["fixed"]["last_seen"]}
    store.close()


def _event(event_id: str):
    from datetime import UTC, datetime

    from detector.camera.events import Event, Status

    t = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    return Event(id=event_id, camera_id="cam", kind="bike", category={"code": "05-06", "name": "x"}, zone_id=None,
                 first_seen=t, last_seen=t, confidence=0.9, bbox=[0, 0, 1, 1], track_id=1,
                 source={"uri": "/v.mp4", "pts_s": 0.0}, model={"card": "c", "sha256": "s"}, status=Status.CLOSED)


def test_an_event_that_a_recommitted_run_no_longer_finds_keeps_its_audit_row(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    run = {"id": "cam-run", "camera_id": "cam", "model_card": "c", "weights_sha256": "w", "rules_sha256": "r",
           "params": "{}", "files_digest": "d1", "finished_at": "2026-11-20T11:00:00+00:00"}
    store.commit_run(run, [_event("a"), _event("b")], [], "k")
    store.commit_run({**run, "files_digest": "d2", "finished_at": "2026-11-21T11:00:00+00:00"}, [_event("a")], [], "k")
    assert [e["id"] for e in store.events()] == ["a"]
    audit = {r["event_id"]: r["superseded_by"] for r in store.scan_events("cam-run")}
    store.close()
    assert audit == {"a": None, "b": "cam-run@2026-11-21T11:00:00+00:00"}  # why b left `events`


def test_a_full_database_is_one_line_and_keeps_what_was_committed(tmp_path: Path) -> None:
    from detector.errors import StoreError

    store = EventStore(tmp_path / "events.sqlite")
    store.upsert([_event("kept")])
    pages = store.db.connection.driver_connection.execute("PRAGMA page_count").fetchone()[0]
    store.db.connection.driver_connection.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full now
    with pytest.raises(StoreError, match=r"events\.sqlite: cannot write the events database \(database or disk "
                                         r"is full\) — fix: free disk space") as info:
        store.upsert([_event(f"e{i}") for i in range(2000)])
    assert "\n" not in str(info.value) and info.value.exit_code == 2
    assert [e["id"] for e in store.events()] == ["kept"]  # all or nothing
    store.close()


def test_a_place_another_vehicle_closed_is_not_reopened(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    row = {"id": "garbage-1", "kind": "garbage", "lat": 31.2, "lon": 121.4, "first_seen": "2026-12-01T01:00:00+00:00",
           "last_seen": "2026-12-01T01:00:05+00:00", "sightings": 5, "passes": 1, "confirmed": 1, "status": "open",
           "resolution": None, "cleared_at": None, "event_id": "e1"}
    store.upsert([], places=[row])
    store.upsert([], places=[{**row, "status": "closed", "resolution": "cleared", "cleared_at": "2026-12-01T03:00"}])
    store.upsert([], places=[{**row, "sightings": 9}])  # a vehicle that still held it open
    [kept] = store.places()
    assert kept["status"] == "closed" and kept["resolution"] == "cleared" and kept["sightings"] == 5
    store.close()
