"""The event store: an SQLite file (WAL) with a versioned schema, and the JSONL log beside it.

SQLite holds every event's current state, written in one transaction per frame, so a crash loses at
most the frame in flight. `events.jsonl` gets one line per event when it closes and is rewritten from
the database at the end of a run, so it always holds each event's final state exactly once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from detector.errors import StreetwatchError
from detector.events import Event

SCHEMA_VERSION = 1

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
}

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

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
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


class JsonlLog:
    """`events.jsonl`: a line per closed event, appended as it closes; `rewrite()` makes it exact."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: Event) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def rewrite(self, events: list[dict[str, Any]]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".events.", suffix=".jsonl", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                for event in events:
                    f.write(json.dumps(event, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
