"""`events.jsonl`: one line per closed event, appended (and fsynced) as it closes.

A scan rewrites it from the store at the end, so it holds each event's final state exactly once; a
long-running worker only appends, so its shutdown work does not grow with the months it has run.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from detector.camera.events import Event


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
