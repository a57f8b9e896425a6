"""The event store: an SQLite file (WAL) with a versioned schema, and the JSONL log beside it.

SQLite holds every event's current state, written in one transaction per frame, so a crash loses at
most the frame in flight. `events.jsonl` gets one line per event when it closes and is rewritten from
the database at the end of a run, so it always holds each event's final state exactly once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from detector.camera.events import Event
from detector.errors import StreetwatchError

SCHEMA_VERSION = 2

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        camera_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        category_code TEXT NOT NULL,
        category_name TEXT NOT NULL,
        zone_id TEXT,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        dwell_s REAL NOT NULL,
        confidence REAL NOT NULL,
        bbox TEXT NOT NULL,
        track_id INTEGER NOT NULL,
        snapshot TEXT,
        clean_frame TEXT,
        crop TEXT,
        source_uri TEXT NOT NULL,
        source_pts_s REAL NOT NULL,
        model_card TEXT NOT NULL,
        model_sha256 TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed'))
    );
    CREATE INDEX events_camera_time ON events (camera_id, first_seen);
    CREATE INDEX events_status ON events (status);
    """,
    # v2: the re-scan manifest (one row per archive file and detection setup), scan runs (one per camera
    # and setup: model card, weights, rules, sampling) and every run's events, kept for audit when a
    # later run supersedes them. Portable SQL: PostgresEventStore maps BLOB to BYTEA.
    2: """
    CREATE TABLE scan_files (
        path TEXT NOT NULL,
        detect_key TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        size BIGINT NOT NULL,
        mtime DOUBLE PRECISION NOT NULL,
        fingerprint TEXT NOT NULL,
        model_card TEXT NOT NULL,
        weights_sha256 TEXT NOT NULL,
        rules_sha256 TEXT,
        status TEXT NOT NULL CHECK (status IN ('detected', 'done', 'failed')),
        start_time TEXT,
        video_s DOUBLE PRECISION,
        problem TEXT,
        detections BLOB,
        scanned_at TEXT NOT NULL,
        PRIMARY KEY (path, detect_key)
    );
    CREATE INDEX scan_files_camera ON scan_files (camera_id, detect_key);
    CREATE TABLE scan_runs (
        id TEXT PRIMARY KEY,
        camera_id TEXT NOT NULL,
        model_card TEXT NOT NULL,
        weights_sha256 TEXT NOT NULL,
        rules_sha256 TEXT NOT NULL,
        params TEXT NOT NULL,
        files_digest TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('current', 'superseded')),
        superseded_by TEXT,
        finished_at TEXT NOT NULL
    );
    CREATE INDEX scan_runs_camera ON scan_runs (camera_id, status);
    CREATE TABLE scan_events (
        run_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        event TEXT NOT NULL,
        superseded_by TEXT,
        PRIMARY KEY (run_id, event_id)
    );
    CREATE INDEX scan_events_camera ON scan_events (camera_id)
    """,
}

_FILE_COLUMNS = (
    "path", "detect_key", "camera_id", "size", "mtime", "fingerprint", "model_card", "weights_sha256",
    "rules_sha256", "status", "start_time", "video_s", "problem", "detections", "scanned_at",
)

_COLUMNS = (
    "id", "camera_id", "kind", "category_code", "category_name", "zone_id", "first_seen", "last_seen",
    "dwell_s", "confidence", "bbox", "track_id", "snapshot", "clean_frame", "crop", "source_uri",
    "source_pts_s", "model_card", "model_sha256", "status",
)


def _row(event: dict[str, Any]) -> tuple[Any, ...]:
    return (
        event["id"], event["camera_id"], event["kind"], event["category"]["code"], event["category"]["name"],
        event["zone_id"], event["first_seen"], event["last_seen"], event["dwell_s"], event["confidence"],
        json.dumps(event["bbox"]), event["track_id"], event["snapshot"], event["clean_frame"], event["crop"],
        event["source"]["uri"], event["source"]["pts_s"], event["model"]["card"], event["model"]["sha256"],
        event["status"],
    )


def _from_row(row: sqlite3.Row) -> dict[str, Any]:
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
    }


class EventStore:
    """Upsert events by id; ids are deterministic, so re-running the same input replaces, never duplicates."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StreetwatchError(
                f"not a usable events database ({e})", path=path, fix="move the file away or pick another --out"
            ) from None

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StreetwatchError(
                f"events database has schema v{version}, this streetwatch knows v{SCHEMA_VERSION}",
                path=self.path,
                fix="upgrade streetwatch",
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for statement in filter(str.strip, _MIGRATIONS[target].split(";")):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {target}")

    begin = "BEGIN IMMEDIATE"  # SQLite: take the write lock up front, not at the first write

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute(self.begin)
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def upsert(self, events: list[Event]) -> None:
        if not events:
            return
        placeholders = ", ".join("?" * len(_COLUMNS))
        updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
        with self.transaction():
            self.db.executemany(
                f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                [_row(e.to_dict()) for e in events],
            )

    def events(self, *, status: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM events" + (" WHERE status = ?" if status else "") + " ORDER BY first_seen, id"
        return [_from_row(r) for r in self.db.execute(query, (status,) if status else ())]

    def close(self) -> None:
        self.db.close()

    # --- the re-scan manifest and runs (schema v2), used by detector.rescan ---

    def scan_files(self, detect_key: str) -> dict[str, dict[str, Any]]:
        """Manifest rows of one detection setup by path, without the detections blob."""
        columns = ", ".join(c for c in _FILE_COLUMNS if c != "detections")
        rows = self.db.execute(f"SELECT {columns} FROM scan_files WHERE detect_key = ?", (detect_key,))
        return {r["path"]: dict(r) for r in rows}

    def record_file(self, row: dict[str, Any]) -> None:
        """Insert or replace one file's manifest row (with its detections) in one transaction."""
        values = tuple(row.get(c) for c in _FILE_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _FILE_COLUMNS[2:])
        with self.transaction():
            self.db.execute(
                f"INSERT INTO scan_files ({', '.join(_FILE_COLUMNS)}) VALUES ({', '.join('?' * len(values))}) "
                f"ON CONFLICT (path, detect_key) DO UPDATE SET {updates}",
                values,
            )

    def file_detections(self, path: str, detect_key: str) -> bytes:
        row = self.db.execute("SELECT detections FROM scan_files WHERE path = ? AND detect_key = ?",
                              (path, detect_key)).fetchone()
        return bytes(row["detections"]) if row and row["detections"] is not None else b""

    def scan_run(self, run_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM scan_runs WHERE id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    def scan_runs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM scan_runs ORDER BY camera_id, finished_at, id")]

    def scan_events(self, run_id: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM scan_events" + (" WHERE run_id = ?" if run_id else "") + " ORDER BY run_id, event_id"
        return [dict(r) for r in self.db.execute(query, (run_id,) if run_id else ())]

    def commit_run(self, run: dict[str, Any], events: list[Event], paths: list[str], detect_key: str) -> None:
        """A camera's re-scan, all or nothing: its events become current, other runs' events of the camera
        are superseded (kept in scan_events, removed from events), and its files are marked done."""
        camera_id, run_id = run["camera_id"], run["id"]
        dicts = [e.to_dict() for e in events]
        with self.transaction():
            others = [r["id"] for r in self.db.execute(
                "SELECT id FROM scan_runs WHERE camera_id = ? AND id <> ? AND status = 'current'", (camera_id, run_id))]
            old_ids = {r["event_id"] for r in self.db.execute(
                "SELECT event_id FROM scan_events WHERE camera_id = ? AND (run_id = ? OR superseded_by IS NULL)",
                (camera_id, run_id))}
            keep = {e["id"] for e in dicts}
            self.db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in sorted(old_ids - keep)])
            for other in others:
                self.db.execute("UPDATE scan_runs SET status = 'superseded', superseded_by = ? WHERE id = ?",
                                (run_id, other))
                self.db.execute("UPDATE scan_events SET superseded_by = ? WHERE run_id = ?", (run_id, other))
            self.db.execute("DELETE FROM scan_events WHERE run_id = ?", (run_id,))
            self.db.executemany(
                "INSERT INTO scan_events (run_id, event_id, camera_id, event, superseded_by) VALUES (?, ?, ?, ?, NULL)",
                [(run_id, e["id"], camera_id, json.dumps(e, ensure_ascii=False)) for e in dicts],
            )
            placeholders = ", ".join("?" * len(_COLUMNS))
            updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
            self.db.executemany(
                f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                [_row(e) for e in dicts],
            )
            columns = ("id", "camera_id", "model_card", "weights_sha256", "rules_sha256", "params", "files_digest",
                       "status", "superseded_by", "finished_at")
            self.db.execute(
                f"INSERT INTO scan_runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in columns[1:])}",
                tuple({**run, "status": "current", "superseded_by": None}[c] for c in columns),
            )
            self.db.executemany(
                "UPDATE scan_files SET status = 'done', rules_sha256 = ? WHERE path = ? AND detect_key = ? "
                "AND status <> 'failed'",
                [(run["rules_sha256"], p, detect_key) for p in paths],
            )


def open_store(target: str | Path) -> EventStore:
    """An events database: a `postgresql://` URL, else an SQLite file path."""
    if str(target).startswith(("postgresql://", "postgres://")):
        return PostgresEventStore(str(target))
    return EventStore(Path(target))


class _PgConnection:
    """The slice of sqlite3's connection API EventStore uses, over psycopg (`?` placeholders become `%s`)."""

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg.rows import dict_row

        self.conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), rows)

    def close(self) -> None:
        self.conn.close()


class PostgresEventStore(EventStore):
    """The same store on PostgreSQL, for runs on several machines; schema version in `schema_version`."""

    begin = "BEGIN"

    def __init__(self, url: str) -> None:
        self.path = Path(url.split("@")[-1])  # for messages, without credentials
        try:
            self.db = _PgConnection(url)  # type: ignore[assignment]
        except ImportError:
            raise StreetwatchError("PostgreSQL needs the psycopg package",
                                   fix="pip install 'streetwatch[scale]'") from None
        except Exception as e:  # psycopg.OperationalError and friends: unreachable, bad credentials
            raise StreetwatchError(f"cannot connect to PostgreSQL ({str(e).strip().splitlines()[0]})",
                                   path=self.path, fix="check the --db URL and that the server runs") from None
        self._migrate()

    def _migrate(self) -> None:
        with self.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(7418261)")  # several machines may start at once
            self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self.db.execute("SELECT max(version) AS v FROM schema_version").fetchone()
            version = row["v"] or 0
            if version > SCHEMA_VERSION:
                raise StreetwatchError(
                    f"events database has schema v{version}, this streetwatch knows v{SCHEMA_VERSION}",
                    path=self.path, fix="upgrade streetwatch",
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in filter(str.strip, _MIGRATIONS[target].split(";")):
                    self.db.execute(statement.replace(" BLOB", " BYTEA"))
                self.db.execute("INSERT INTO schema_version (version) VALUES (?)", (target,))
