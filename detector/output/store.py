"""The event store: an SQLite file (WAL) or PostgreSQL, one set of tables on SQLAlchemy Core, a versioned schema.

The store holds every event's current state, written in one transaction per frame, so a crash loses at
most the frame in flight (the JSONL log beside it is `detector.output.jsonl`).

The tables are defined once below; each statement is built with SQLAlchemy Core and rendered for the
database at hand (`ON CONFLICT ... DO UPDATE` by `sqlite.insert` or `postgresql.insert`). The schema
version is in `PRAGMA user_version` on SQLite and in the table `schema_version` on PostgreSQL; see
`_MIGRATIONS`. (Alembic was weighed and not taken: it needs each table written a second time, frozen,
in its migration files, its own `alembic_version` table beside `user_version`, and a bridge for the
files made before it, for upgrades that are, so far, new tables.) `scripts/bench_store.py` measures
the write rate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from detector.camera.events import Event
from detector.errors import StoreError, StreetwatchError

SCHEMA_VERSION = 6

meta = sa.MetaData()
_text, _real, _double = sa.Text, sa.REAL, sa.DOUBLE_PRECISION


def _req(name: str, kind: Any = _text, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, kind, nullable=False, **kw)


events_t = sa.Table(
    "events", meta,
    sa.Column("id", _text, primary_key=True), _req("camera_id"), _req("kind"), _req("category_code"),
    _req("category_name"), sa.Column("zone_id", _text), _req("first_seen"), _req("last_seen"),
    _req("dwell_s", _real), _req("confidence", _real), _req("bbox"), _req("track_id", sa.Integer),
    sa.Column("snapshot", _text), sa.Column("clean_frame", _text), sa.Column("crop", _text), _req("source_uri"),
    _req("source_pts_s", _real), _req("model_card"), _req("model_sha256"), _req("status"),
    # v4: events of moving cameras: where the object is (lat/lon, for maps), the rest of its geo fields
    # (accuracy, method, the vehicle, sightings, passes) as JSON, and `cleared` when a later pass found it gone.
    sa.Column("lat", _double), sa.Column("lon", _double), sa.Column("geo", _text), sa.Column("resolution", _text),
    # ... and first_seen in UTC: cameras in several zones sort and filter as one timeline.
    sa.Column("first_seen_utc", _text),
    sa.CheckConstraint("status IN ('open', 'closed')"),
    sa.Index("events_camera_time", "camera_id", "first_seen"), sa.Index("events_status", "status"),
    sa.Index("events_newest", "first_seen_utc", "id"),  # v4: the review desk's newest-first pages
)
# v2: the re-scan manifest (one row per archive file and detection setup), scan runs (one per camera
# and setup: model card, weights, rules, sampling) and every run's events, kept for audit when a
# later run supersedes them.
scan_files_t = sa.Table(
    "scan_files", meta,
    sa.Column("path", _text, primary_key=True), sa.Column("detect_key", _text, primary_key=True),
    _req("camera_id"), _req("size", sa.BigInteger), _req("mtime", _double), _req("fingerprint"), _req("model_card"),
    _req("weights_sha256"), sa.Column("rules_sha256", _text), _req("status"), sa.Column("start_time", _text),
    sa.Column("video_s", _double), sa.Column("problem", _text), sa.Column("detections", sa.LargeBinary),
    _req("scanned_at"),
    sa.CheckConstraint("status IN ('detected', 'done', 'failed')"),
    sa.Index("scan_files_camera", "camera_id", "detect_key"),
)
scan_runs_t = sa.Table(
    "scan_runs", meta,
    sa.Column("id", _text, primary_key=True), _req("camera_id"), _req("model_card"), _req("weights_sha256"),
    _req("rules_sha256"), _req("params"), _req("files_digest"), _req("status"), sa.Column("superseded_by", _text),
    _req("finished_at"),
    sa.CheckConstraint("status IN ('current', 'superseded')"),
    sa.Index("scan_runs_camera", "camera_id", "status"),
)
scan_events_t = sa.Table(
    "scan_events", meta,
    sa.Column("run_id", _text, primary_key=True), sa.Column("event_id", _text, primary_key=True),
    _req("camera_id"), _req("event"), sa.Column("superseded_by", _text),
    sa.Index("scan_events_camera", "camera_id"),
)

# v3: the outbox. A message per event change and sink, written in the transaction of the event row it
# reflects; `seq` orders them, (sink_id, message_id) makes a re-run of the same input a no-op. Sinks are
# recorded (URL without password, options) so `streetwatch deliver` can drain the outbox later.
sinks_t = sa.Table(
    "sinks", meta,
    sa.Column("id", _text, primary_key=True), _req("url"), _req("options"), _req("created_at"),
)
outbox_t = sa.Table(
    "outbox", meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True), _req("sink_id"), _req("message_id"),
    _req("event_id"), _req("camera_id"), _req("type"), _req("body"), _req("created_at", _double),
    _req("attempts", sa.Integer), _req("next_at", _double), _req("status"), sa.Column("error", _text),
    sa.Column("done_at", _double),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'dead')"),
    sa.UniqueConstraint("sink_id", "message_id", name="outbox_message"),
    sa.Index("outbox_due", "sink_id", "status", "seq"), sa.Index("outbox_event", "event_id"),  # v4: cancellations
)

# Also v3: camera leases. Several watch processes may share one PostgreSQL store; a camera is watched by
# one of them at a time, the holder renewing its row before it expires.
leases_t = sa.Table(
    "camera_leases", meta,
    sa.Column("camera_id", _text, primary_key=True), _req("holder"), _req("expires_at", _double),
)

# Also v4: the places patrols found (confirmed or waiting for a second pass), shared by every vehicle that
# writes to the store, so a later pass updates or clears them instead of opening duplicates.
places_t = sa.Table(
    "places", meta,
    sa.Column("id", _text, primary_key=True), _req("kind"), _req("lat", _double), _req("lon", _double),
    _req("first_seen"), _req("last_seen"), _req("sightings", sa.Integer), _req("passes", sa.Integer),
    _req("confirmed", sa.Integer), _req("status"), sa.Column("resolution", _text), sa.Column("cleared_at", _text),
    sa.Column("event_id", _text),
    sa.CheckConstraint("status IN ('open', 'closed')"),
    sa.Index("places_kind_status", "kind", "status"),
)

# Also v4: the video files patrols have counted, so a file given again does not count its sightings twice.
patrol_sources_t = sa.Table(
    "patrol_sources", meta,
    sa.Column("uri", _text, primary_key=True), _req("camera_id"), _req("start_time"), _req("processed_at"),
)

# Also v4: operators' verdicts on events, kept apart from the events so a re-scan (same ids) keeps them.
reviews_t = sa.Table(
    "reviews", meta,
    sa.Column("event_id", _text, primary_key=True), _req("verdict"), sa.Column("reason", _text), _req("reviewer"),
    _req("reviewed_at"),
    sa.CheckConstraint("verdict IN ('confirmed', 'rejected')"),
)

# v5: a pool of watch processes (`watch --pool`): the cameras they share out (each camera's watch-file entry,
# resolved, as JSON) and the processes taking part (the most cameras each will hold, and when it last said so).
pool_cameras_t = sa.Table(
    "pool_cameras", meta,
    sa.Column("camera_id", _text, primary_key=True), _req("config"), _req("sha256"), _req("updated_at", _double),
)
pool_members_t = sa.Table(
    "pool_members", meta,
    sa.Column("holder", _text, primary_key=True), _req("capacity", sa.Integer), _req("seen_at", _double),
    _req("started_at", _double), _req("lease_s", _double),
)

# v6: rejections that stick (`detector.camera.suppress`): per rejected event, its camera, kind, box and
# picture (a 16x16 Lab signature), when and by whom; `lifted_at` once undone (or the event confirmed), and
# how many objects it kept out since (`tracks`, the last at `last_hit`).
suppressions_t = sa.Table(
    "suppressions", meta,
    sa.Column("id", _text, primary_key=True), _req("camera_id"), _req("kind"), _req("bbox"), _req("signature"),
    _req("reason"), _req("reviewer"), _req("created_at"), sa.Column("lifted_at", _text), sa.Column("lifted_by", _text),
    _req("tracks", sa.Integer), sa.Column("last_hit", _text),
    sa.Index("suppressions_camera", "camera_id", "lifted_at"),
)

# Also v6: boxes operators drew: a violation the model missed, on a camera's picture, or an event's box set
# right on its clean frame (`event_id`); `image` is the picture drawn on, saved under the output folder. Boxes
# are in pixels of `image`, so `review export` labels them exactly.
marks_t = sa.Table(
    "marks", meta,
    sa.Column("id", _text, primary_key=True), _req("camera_id"), _req("kind"), _req("bbox"), _req("image"),
    _req("width", sa.Integer), _req("height", sa.Integer), sa.Column("source_uri", _text),
    sa.Column("pts_s", _double), _req("taken_at"), sa.Column("event_id", _text), _req("reviewer"),
    _req("created_at"), sa.Column("removed_at", _text), sa.Column("removed_by", _text),
    sa.Index("marks_camera", "camera_id"), sa.Index("marks_event", "event_id"),
)

# Also v6: which card each camera group runs (`streetwatch models promote`), and the one before it, for a
# rollback; a watch process of that group switches to it without a restart.
card_rollouts_t = sa.Table(
    "card_rollouts", meta,
    sa.Column("group_name", _text, primary_key=True), _req("card"), sa.Column("previous", _text),
    _req("changed_at"), _req("changed_by"), _req("why"), sa.Column("report", _text),
)

_V4_COLUMNS = ("lat DOUBLE PRECISION", "lon DOUBLE PRECISION", "geo TEXT", "resolution TEXT", "first_seen_utc TEXT")


def utc_iso(text: str) -> str:
    """An ISO time in UTC, milliseconds, so that times of cameras in different zones compare as strings."""
    from datetime import UTC, datetime

    t = datetime.fromisoformat(text)
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC).isoformat(timespec="milliseconds")


def _to_v4(c: sa.Connection) -> None:
    for column in _V4_COLUMNS:
        c.exec_driver_sql(f"ALTER TABLE events ADD COLUMN {column}")
    rows = c.exec_driver_sql("SELECT id, first_seen FROM events").all()
    update = sa.text("UPDATE events SET first_seen_utc = :u WHERE id = :i")
    for start in range(0, len(rows), 500):
        c.execute(update, [{"i": r[0], "u": utc_iso(r[1])} for r in rows[start:start + 500]])
    meta.create_all(c, tables=[places_t, reviews_t, patrol_sources_t])
    c.exec_driver_sql("CREATE INDEX IF NOT EXISTS events_newest ON events (first_seen_utc, id)")
    # (step 3 makes the outbox from its definition above, which has this index already)
    c.exec_driver_sql("CREATE INDEX IF NOT EXISTS outbox_event ON outbox (event_id)")


# version -> the step from the version before. A new database gets every table at once (create_all) and
# the latest version. A step creates the tables it introduces from their definitions above; a step that
# changes an existing table must use explicit DDL (ALTER TABLE ...), and a table changed later than
# the step that created it needs that step frozen (its own sa.Table) so an old file upgrades the same.
_MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {
    2: lambda c: meta.create_all(c, tables=[scan_files_t, scan_runs_t, scan_events_t]),
    3: lambda c: meta.create_all(c, tables=[sinks_t, outbox_t, leases_t]),
    4: _to_v4,
    5: lambda c: meta.create_all(c, tables=[pool_cameras_t, pool_members_t]),
    6: lambda c: meta.create_all(c, tables=[suppressions_t, marks_t, card_rollouts_t]),
}
GEO_FIELDS = ("location", "vehicle", "sightings", "passes")


def _row(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event["id"], "camera_id": event["camera_id"], "kind": event["kind"],
        "category_code": event["category"]["code"], "category_name": event["category"]["name"],
        "zone_id": event["zone_id"], "first_seen": event["first_seen"], "last_seen": event["last_seen"],
        "dwell_s": event["dwell_s"], "confidence": event["confidence"], "bbox": json.dumps(event["bbox"]),
        "track_id": event["track_id"], "snapshot": event["snapshot"], "clean_frame": event["clean_frame"],
        "crop": event["crop"], "source_uri": event["source"]["uri"], "source_pts_s": event["source"]["pts_s"],
        "model_card": event["model"]["card"], "model_sha256": event["model"]["sha256"], "status": event["status"],
        "first_seen_utc": utc_iso(event["first_seen"]), **_geo_row(event),
    }


def _geo_row(event: dict[str, Any]) -> dict[str, Any]:
    location = event.get("location")
    if not location:
        return {"lat": None, "lon": None, "geo": None, "resolution": None}
    return {"lat": location["lat"], "lon": location["lon"], "resolution": event.get("resolution"),
            "geo": json.dumps({k: event.get(k) for k in GEO_FIELDS}, ensure_ascii=False)}


def event_dict(row: Any) -> dict[str, Any]:
    """An event as `events.jsonl` has it, from its row in `events`."""
    return {
        "id": row["id"],
        "camera_id": row["camera_id"],
        "kind": row["kind"],
        "category": {"code": row["category_code"], "name": row["category_name"]},
        "zone_id": row["zone_id"],
        "first_seen": row["first_seen"],
        "last_seen": row["last_seen"],
        "dwell_s": row["dwell_s"],
        "confidence": row["confidence"],
        "bbox": json.loads(row["bbox"]),
        "track_id": row["track_id"],
        "snapshot": row["snapshot"],
        "clean_frame": row["clean_frame"],
        "crop": row["crop"],
        "source": {"uri": row["source_uri"], "pts_s": row["source_pts_s"]},
        "model": {"card": row["model_card"], "sha256": row["model_sha256"]},
        "status": row["status"],
        **({**json.loads(row["geo"]), "resolution": row["resolution"]} if row.get("geo") else {}),
    }


def _upsert(insert: Any, table: sa.Table, keep: tuple[str, ...] = ()) -> Any:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE SET every other column but `keep`, in the dialect's own
    insert."""
    stmt = insert(table)
    keys = [c.name for c in table.primary_key]
    return stmt.on_conflict_do_update(index_elements=keys, set_={
        c.name: stmt.excluded[c.name] for c in table.c if c.name not in keys and c.name not in keep})


def _store_error(error: BaseException, path: Path) -> StoreError:
    """One line for a failed write, with the fix that fits the cause."""
    orig = getattr(error, "orig", None) or error
    reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if "full" in reason or "space" in reason:
        fix = "free disk space there or give another --out/--db"
    elif "locked" in reason or "busy" in reason:
        fix = "another process holds the database for too long; stop it or give another --out/--db"
    else:
        fix = "check the database, its disk and its permissions, or give another --out/--db"
    return StoreError(f"cannot write the events database ({reason})", path=path,
                      fix=f"{fix}; what was committed before stays as it was, open events are resumed by the next run")


IN_CHUNK = 500


class _LeaseHeld(Exception):
    """Raised inside the lease transaction so that it rolls back; carries {camera: holder}."""

    def __init__(self, held: dict[str, str]) -> None:
        super().__init__(held)
        self.held = held


class EventStore:
    """Upsert events by id; ids are deterministic, so re-running the same input replaces, never duplicates."""

    def __init__(self, path: Path, *, busy_s: float = 30.0) -> None:
        """`busy_s`: how long a write waits for another writer before it is a `StoreError` (the desk waits less:
        a page should answer 503 rather than hang)."""
        self.path = path
        self.target: str | Path = path  # what open_store() takes to open another connection to it
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: sqlite3 itself never BEGINs; transaction() does, taking the write lock up front
        engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.StaticPool,
                                  connect_args={"timeout": busy_s, "isolation_level": None})

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi: Any, _record: Any) -> None:
            dbapi.execute("PRAGMA journal_mode=WAL")
            dbapi.execute("PRAGMA synchronous=NORMAL")

        try:
            self.db = engine.connect()
        except sa.exc.DatabaseError as e:
            engine.dispose()
            raise StreetwatchError(f"not a usable events database ({e.orig})", path=path,
                                   fix="move the file away or pick another --out") from None
        try:
            self._prepare(sqlite.insert)
        except BaseException:
            self.close()
            raise

    def _prepare(self, insert: Any) -> None:
        self.insert = insert  # the dialect's INSERT (with on_conflict_*), here and for upserts built beside the store
        self._upsert = {t.name: _upsert(insert, t) for t in (events_t, scan_files_t, scan_runs_t, reviews_t)}
        sinks = insert(sinks_t)  # a sink registered again keeps its first created_at
        self._upsert["sinks"] = sinks.on_conflict_do_update(
            index_elements=["id"], set_={"url": sinks.excluded.url, "options": sinks.excluded.options})
        self._enqueue = insert(outbox_t).on_conflict_do_nothing(index_elements=["sink_id", "message_id"])
        places = insert(places_t)  # a place another vehicle closed stays closed
        self._upsert["places"] = places.on_conflict_do_update(
            index_elements=["id"], set_={c.name: places.excluded[c.name] for c in places_t.c if c.name != "id"},
            where=sa.or_(places_t.c.status == "open", places.excluded.status == "closed"))
        self._migrate()

    def _version(self) -> int:
        return int(self.db.exec_driver_sql("PRAGMA user_version").scalar() or 0)

    def _set_version(self, version: int) -> None:
        self.db.exec_driver_sql(f"PRAGMA user_version = {version}")

    def _current(self) -> bool:
        """The schema is this version's already: read without any lock, so a reader (the desk opens a store per
        thread) never waits for a writer."""
        try:
            with self.db.begin():
                return self._read_version() == SCHEMA_VERSION
        except sa.exc.DBAPIError:
            return False

    def _read_version(self) -> int:
        return int(self.db.exec_driver_sql("PRAGMA user_version").scalar() or 0)

    def _migrate(self) -> None:
        if self._current():
            return
        with self.transaction():  # a new or older file: the write lock, then the version again under it
            version = self._version()
            if version > SCHEMA_VERSION:
                raise StreetwatchError(
                    f"events database has schema v{version}, this streetwatch knows v{SCHEMA_VERSION}",
                    path=self.path, fix="upgrade streetwatch",
                )
            if version == 0:
                meta.create_all(self.db)
            else:
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    _MIGRATIONS[target](self.db)
            if version < SCHEMA_VERSION:
                self._set_version(SCHEMA_VERSION)

    begin = "BEGIN IMMEDIATE"  # SQLite: take the write lock up front, not at the first write

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; a database that cannot be written (disk full, read-only, gone) is one `StoreError`."""
        driver_error = self.db.dialect.loaded_dbapi.Error  # BEGIN goes to the driver straight, unwrapped
        try:
            with self.db.begin():
                if self.begin:  # straight to the driver: through SQLAlchemy it costs as much as the upsert
                    cast(Any, self.db.connection.driver_connection).execute(self.begin)
                yield
        except (sa.exc.DBAPIError, driver_error) as e:
            raise _store_error(e, self.path) from e

    def _many(self, stmt: Any, rows: list[dict[str, Any]]) -> None:
        if rows:  # an empty list would run the statement once without parameters
            self.db.execute(stmt, rows)

    def upsert(self, events: list[Event], messages: list[dict[str, Any]] | None = None,
               places: list[dict[str, Any]] | None = None) -> None:
        """Event rows, the outbox messages that report them and the patrol places behind them, in one
        transaction."""
        if events or messages or places:
            with self.transaction():
                self._many(self._upsert["events"], [_row(e.to_dict()) for e in events])
                self._many(self._enqueue, messages or [])
                self._many(self._upsert["places"], [{c.name: p.get(c.name) for c in places_t.c} for p in places or []])

    def places(self) -> list[dict[str, Any]]:
        """Every patrol place (see `detector.geo.places`), open and closed."""
        return self.rows(sa.select(places_t).order_by(places_t.c.first_seen, places_t.c.id))


    def patrol_sources(self) -> set[str]:
        return {r["uri"] for r in self.rows(sa.select(patrol_sources_t.c.uri))}

    def record_patrol_source(self, uri: str, camera_id: str, start_time: str) -> None:
        from datetime import UTC, datetime

        with self.transaction():
            self.db.execute(self.insert(patrol_sources_t).on_conflict_do_nothing(index_elements=["uri"]),
                            {"uri": uri, "camera_id": camera_id, "start_time": start_time,
                             "processed_at": datetime.now(UTC).isoformat(timespec="seconds")})

    def sources(self, camera_id: str) -> list[str]:
        """The videos (or streams) a camera's events came from, in name order."""
        query = sa.select(events_t.c.source_uri).where(events_t.c.camera_id == camera_id).distinct()
        return sorted(r["source_uri"] for r in self.rows(query))

    def events(self, *, status: str | None = None, camera_id: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(events_t).order_by(events_t.c.first_seen, events_t.c.id)
        if status:
            query = query.where(events_t.c.status == status)
        if camera_id:
            query = query.where(events_t.c.camera_id == camera_id)
        return [event_dict(r) for r in self.rows(query)]

    def rows(self, query: Any) -> list[dict[str, Any]]:
        """The rows of a SELECT, read outside any write transaction."""
        with self.db.begin():  # ended at once: the connection holds no snapshot (no write lock on SQLite)
            return [dict(r) for r in self.db.execute(query).mappings()]

    def write(self, *statements: Any) -> None:
        """Statements in one transaction (e.g. an outbox row's outcome)."""
        with self.transaction():
            for statement in statements:
                self.db.execute(statement)

    def register_sinks(self, rows: list[dict[str, Any]]) -> None:
        """Sink rows (id, url without credentials, options); a sink registered again keeps its first time."""
        if rows:
            with self.transaction():
                self.db.execute(self._upsert["sinks"], rows)

    def enqueue(self, messages: list[dict[str, Any]]) -> None:
        """Outbox rows, in the caller's transaction; a message already queued (sink and id) stays as it was."""
        self._many(self._enqueue, messages)

    def sent(self, event_id: str) -> list[dict[str, Any]]:
        """The outbox rows (sink_id, body) queued for an event, oldest first, read in the caller's transaction."""
        o = outbox_t
        query = sa.select(o.c.sink_id, o.c.body).where(o.c.event_id == event_id).order_by(o.c.seq)
        return [dict(r) for r in self.db.execute(query).mappings()]

    def upsert_row(self, table: sa.Table, row: dict[str, Any], *, keep: tuple[str, ...] = ()) -> None:
        """A row that replaces the one with its primary key (but for the columns in `keep`), in the caller's
        transaction."""
        self.db.execute(_upsert(self.insert, table, keep), row)

    def upsert_review(self, row: dict[str, Any]) -> None:
        """An operator's verdict, replacing an earlier one, in the caller's transaction."""
        self.db.execute(self._upsert["reviews"], row)

    def close(self) -> None:
        self.db.close()
        self.db.engine.dispose()

    # --- the re-scan manifest and runs (schema v2), used by detector.apps.rescan ---

    def scan_files(self, detect_key: str) -> dict[str, dict[str, Any]]:
        """Manifest rows of one detection setup by path, without the detections blob."""
        t = scan_files_t
        rows = self.rows(sa.select(*(c for c in t.c if c.name != "detections")).where(t.c.detect_key == detect_key))
        return {r["path"]: r for r in rows}

    def record_file(self, row: dict[str, Any]) -> None:
        """Insert or replace one file's manifest row (with its detections) in one transaction."""
        with self.transaction():
            self.db.execute(self._upsert["scan_files"], {c.name: row.get(c.name) for c in scan_files_t.c})

    def file_detections(self, path: str, detect_key: str) -> bytes:
        t = scan_files_t
        rows = self.rows(sa.select(t.c.detections).where(t.c.path == path, t.c.detect_key == detect_key))
        return bytes(rows[0]["detections"]) if rows and rows[0]["detections"] is not None else b""

    def scan_run(self, run_id: str) -> dict[str, Any] | None:
        rows = self.rows(sa.select(scan_runs_t).where(scan_runs_t.c.id == run_id))
        return rows[0] if rows else None

    def scan_runs(self) -> list[dict[str, Any]]:
        t = scan_runs_t
        return self.rows(sa.select(t).order_by(t.c.camera_id, t.c.finished_at, t.c.id))

    def scan_events(self, run_id: str | None = None) -> list[dict[str, Any]]:
        t = scan_events_t
        query = sa.select(t).order_by(t.c.run_id, t.c.event_id)
        return self.rows(query.where(t.c.run_id == run_id) if run_id else query)

    def commit_run(self, run: dict[str, Any], events: list[Event], paths: list[str], detect_key: str,
                   messages: list[dict[str, Any]] | None = None) -> None:
        """A camera's re-scan, all or nothing: its events become current, other runs' events of the camera
        are superseded (kept in scan_events, removed from events), its files are marked done, and the
        messages reporting its events are queued (those already queued by an earlier run stay as they are)."""
        camera_id, run_id = run["camera_id"], run["id"]
        dicts = [e.to_dict() for e in events]
        runs, evs, files = scan_runs_t, scan_events_t, scan_files_t
        with self.transaction():
            others = self.db.execute(sa.select(runs.c.id).where(
                runs.c.camera_id == camera_id, runs.c.id != run_id, runs.c.status == "current")).scalars().all()
            old_ids = set(self.db.execute(sa.select(evs.c.event_id).where(
                evs.c.camera_id == camera_id,
                sa.or_(evs.c.run_id == run_id, evs.c.superseded_by.is_(None)))).scalars())
            gone = sorted(old_ids - {e["id"] for e in dicts})
            self._in_chunks(gone, lambda ids: sa.delete(events_t).where(events_t.c.id.in_(ids)))
            if others:
                self.db.execute(sa.update(runs).where(runs.c.id.in_(others))
                                .values(status="superseded", superseded_by=run_id))
                self.db.execute(sa.update(evs).where(evs.c.run_id.in_(others)).values(superseded_by=run_id))
            # Re-committing this run: rows of events still found are replaced; those of events no longer found
            # stay, marked by this commit, so nothing leaves `events` without a row saying why.
            keep = [e["id"] for e in dicts]
            self._in_chunks(keep, lambda ids: sa.delete(evs).where(evs.c.run_id == run_id, evs.c.event_id.in_(ids)))
            self._in_chunks(gone, lambda ids: sa.update(evs).where(
                evs.c.run_id == run_id, evs.c.event_id.in_(ids), evs.c.superseded_by.is_(None))
                .values(superseded_by=f"{run_id}@{run['finished_at']}"))
            self._many(sa.insert(evs), [{"run_id": run_id, "event_id": e["id"], "camera_id": camera_id,
                                         "event": json.dumps(e, ensure_ascii=False), "superseded_by": None}
                                        for e in dicts])
            self._many(self._upsert["events"], [_row(e) for e in dicts])
            self.db.execute(self._upsert["scan_runs"],
                            {c.name: {**run, "status": "current", "superseded_by": None}[c.name] for c in runs.c})
            self._in_chunks(paths, lambda chunk: sa.update(files).where(
                files.c.path.in_(chunk), files.c.detect_key == detect_key, files.c.status != "failed")
                .values(status="done", rules_sha256=run["rules_sha256"]))
            self._many(self._enqueue, messages or [])

    def take_leases(self, camera_ids: list[str], holder: str, seconds: float,
                    dead: Callable[[str], bool] = lambda _: False) -> dict[str, str]:
        """Take or renew the cameras' leases for `holder`, all or none: {camera: other holder} of those held
        by another live process whose lease has not expired (then nothing is taken). `dead(holder)` says a
        holder is known to be gone (a killed process on this machine), so its leases need not run out."""
        try:
            with self.transaction():
                taken = self._claim(camera_ids, holder, seconds, dead)
                held = {c: self.db.execute(sa.select(leases_t.c.holder).where(leases_t.c.camera_id == c)).scalar_one()
                        for c in camera_ids if c not in taken}
                if held:
                    raise _LeaseHeld(held)
        except _LeaseHeld as e:
            return e.held
        return {}

    def claim_leases(self, camera_ids: list[str], holder: str, seconds: float,
                     dead: Callable[[str], bool] = lambda _: False) -> set[str]:
        """Take or renew each camera's lease that is free, ours, expired or a dead holder's; the ones now ours
        (a pool takes what it can, camera by camera)."""
        with self.transaction():
            return self._claim(camera_ids, holder, seconds, dead)

    def _claim(self, camera_ids: list[str], holder: str, seconds: float, dead: Callable[[str], bool]) -> set[str]:
        """One conditional upsert per camera (taken where it is ours, expired or dead), so two processes
        starting together cannot both get a camera. Expiry uses each host's clock: keep them in sync (NTP)."""
        t, now = leases_t, time.time()
        current = {r["camera_id"]: r["holder"] for r in self.db.execute(
            sa.select(t).where(t.c.camera_id.in_(camera_ids))).mappings()}
        gone = sorted({h for h in current.values() if h != holder and dead(h)})
        stmt = self.insert(t).values(holder=sa.bindparam("h"), expires_at=sa.bindparam("e"),
                                      camera_id=sa.bindparam("c"))
        stmt = stmt.on_conflict_do_update(
            index_elements=["camera_id"],
            set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
            where=sa.or_(t.c.holder == holder, t.c.expires_at < now, t.c.holder.in_(gone or [""])),
        ).returning(t.c.camera_id)
        return {c for c in camera_ids
                if self.db.execute(stmt, {"h": holder, "e": now + seconds, "c": c}).scalar() is not None}

    def leases(self) -> dict[str, dict[str, Any]]:
        """Every camera lease: {camera: {holder, expires_at}}."""
        return {r["camera_id"]: r for r in self.rows(sa.select(leases_t))}

    def release_leases(self, holder: str, camera_ids: list[str] | None = None) -> None:
        """Free the holder's leases (of `camera_ids` only, if given) at once, for another process to take."""
        where = leases_t.c.holder == holder
        with self.transaction():
            self.db.execute(sa.delete(leases_t).where(where if camera_ids is None else
                                                      sa.and_(where, leases_t.c.camera_id.in_(camera_ids))))

    def _in_chunks(self, values: list[str], statement: Callable[[list[str]], Any]) -> None:
        """`statement(chunk)` for chunks of `values`: one `IN (...)` of a camera's many files or events would
        pass the databases' limits on bound parameters (SQLite 32766, PostgreSQL 65535)."""
        for start in range(0, len(values), IN_CHUNK):
            self.db.execute(statement(values[start:start + IN_CHUNK]))


def open_store(target: str | Path, *, busy_s: float = 30.0) -> EventStore:
    """An events database: a `postgresql://` URL, else an SQLite file path (see `EventStore` for `busy_s`)."""
    if str(target).startswith(("postgresql://", "postgres://")):
        return PostgresEventStore(str(target))
    return EventStore(Path(target), busy_s=busy_s)


class PostgresEventStore(EventStore):
    """The same store on PostgreSQL, for runs on several machines; schema version in `schema_version`."""

    begin = ""  # psycopg begins a transaction at the first statement

    def __init__(self, url: str) -> None:
        self.path = Path(url.split("@")[-1])  # for messages, without credentials
        self.target = url
        try:
            engine = sa.create_engine("postgresql+psycopg://" + url.split("://", 1)[1], poolclass=sa.pool.StaticPool)
            self.db = engine.connect()
        except ImportError:
            raise StreetwatchError("PostgreSQL needs the psycopg package",
                                   fix="pip install 'streetwatch[scale]'") from None
        except sa.exc.DBAPIError as e:  # unreachable, bad credentials
            raise StreetwatchError(f"cannot connect to PostgreSQL ({str(e.orig).strip().splitlines()[0]})",
                                   path=self.path, fix="check the --db URL and that the server runs") from None
        self._prepare(postgresql.insert)

    def _read_version(self) -> int:
        return int(self.db.exec_driver_sql("SELECT max(version) FROM schema_version").scalar() or 0)

    def _version(self) -> int:
        self.db.exec_driver_sql("SELECT pg_advisory_xact_lock(7418261)")  # several machines may start at once
        self.db.exec_driver_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        return int(self.db.exec_driver_sql("SELECT max(version) FROM schema_version").scalar() or 0)

    def _set_version(self, version: int) -> None:
        self.db.exec_driver_sql(f"INSERT INTO schema_version (version) VALUES ({version})")
