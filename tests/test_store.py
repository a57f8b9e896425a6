import sqlite3
from pathlib import Path

import pytest

from detector.errors import StreetwatchError
from detector.output.store import EventStore


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    EventStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StreetwatchError, match="schema v99, this streetwatch knows v2"):
        EventStore(path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    path.write_bytes(b"x" * 4096)
    with pytest.raises(StreetwatchError, match="not a usable events database"):
        EventStore(path)
