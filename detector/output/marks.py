"""Boxes operators drew in the desk (table `marks`): violations the model missed, drawn on a camera's picture,
and events' boxes set right. `review export` writes both as labels, so the next training learns what the
operators saw.

A missed violation's picture is saved under `out_dir/marks/` (one file per picture: every box drawn on it
shares it), its box in that picture's pixels. A corrected box lies on the event's clean frame, in its pixels
(a sub-stream camera's event box is in sub-stream pixels; the correction is exact on the main stream's frame).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from detector.kinds import Kind
from detector.output.snapshots import write_image_atomic
from detector.output.store import EventStore, marks_t, utc_iso

MIN_SIDE_PX = 4  # a box smaller than this on a side is a slip of the mouse, not an object


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def checked_box(box: Sequence[float], width: int, height: int) -> list[float]:
    """The box clipped to the picture, as x1 < x2, y1 < y2; ValueError when nothing of it is left."""
    if len(box) != 4 or not all(np.isfinite(v) for v in box):
        raise ValueError("a box is four finite numbers: x1, y1, x2, y2 in pixels of the picture")
    x1, x2 = sorted((max(0.0, min(float(box[0]), width)), max(0.0, min(float(box[2]), width))))
    y1, y2 = sorted((max(0.0, min(float(box[1]), height)), max(0.0, min(float(box[3]), height))))
    if x2 - x1 < MIN_SIDE_PX or y2 - y1 < MIN_SIDE_PX:
        raise ValueError(f"the box is under {MIN_SIDE_PX} px on a side inside the picture: draw it again")
    return [round(v, 1) for v in (x1, y1, x2, y2)]


class MarkRows:
    """Reads and writes the marks of one open store; `out_dir` holds the pictures of missed violations."""

    def __init__(self, store: EventStore, out_dir: Path) -> None:
        self.store, self.out_dir = store, out_dir

    def missed(self, camera_id: str, image: np.ndarray, taken_at: datetime,
               boxes: Sequence[tuple[str, Sequence[float]]], reviewer: str, *, source_uri: str | None = None,
               pts_s: float | None = None) -> list[dict[str, Any]]:
        """Violations the model missed in a picture of the camera: (kind, box) each; the picture is saved once."""
        height, width = image.shape[:2]
        checked = [(Kind(kind).value, checked_box(box, width, height)) for kind, box in boxes]
        if not checked:
            raise ValueError("no box to mark")
        where = f"{camera_id}|{source_uri}|{pts_s}|{taken_at.isoformat()}"
        relative = Path("marks") / f"{camera_id}-{hashlib.sha1(where.encode()).hexdigest()[:12]}.jpg"
        if not (self.out_dir / relative).is_file():
            (self.out_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            write_image_atomic(self.out_dir / relative, image, quality=95)  # before the rows that point at it
        rows = [{"id": uuid.uuid4().hex[:16], "camera_id": camera_id, "kind": kind, "bbox": json.dumps(box),
                 "image": str(relative), "width": width, "height": height, "source_uri": source_uri,
                 "pts_s": pts_s, "taken_at": taken_at.isoformat(timespec="milliseconds"), "event_id": None,
                 "reviewer": reviewer, "created_at": _now(), "removed_at": None, "removed_by": None}
                for kind, box in checked]
        with self.store.transaction():
            self.store.db.execute(sa.insert(marks_t), rows)
        return [_out(r) for r in rows]

    def correct(self, event: dict[str, Any], kind: str, box: Sequence[float], frame: np.ndarray,
                reviewer: str) -> dict[str, Any]:
        """An event's box set right on its clean frame as the operator saw it (`frame`, kept under `marks/`: a
        watch rewrites an open event's frame when a better one comes); replaces an earlier correction."""
        height, width = frame.shape[:2]
        kind, checked = Kind(kind).value, checked_box(box, width, height)  # both before the file is written
        relative = Path("marks") / f"fix-{hashlib.sha1(event['id'].encode()).hexdigest()[:16]}.jpg"
        (self.out_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        write_image_atomic(self.out_dir / relative, frame, quality=95)
        row = {"id": f"fix-{event['id']}"[:120], "camera_id": event["camera_id"], "kind": kind,
               "bbox": json.dumps(checked), "image": str(relative), "width": width, "height": height,
               "source_uri": event["source"]["uri"], "pts_s": event["source"]["pts_s"],
               "taken_at": event["first_seen"], "event_id": event["id"], "reviewer": reviewer, "created_at": _now(),
               "removed_at": None, "removed_by": None}
        with self.store.transaction():
            self.store.upsert_row(marks_t, row)
        return _out(row)

    def remove(self, mark_id: str, by: str) -> bool:
        """Take a mark back (kept, with when it was removed); False when there was none."""
        t = marks_t
        with self.store.transaction():
            done = self.store.db.execute(sa.update(t).where(t.c.id == mark_id, t.c.removed_at.is_(None))
                                         .values(removed_at=_now(), removed_by=by))
        return bool(done.rowcount)

    def listing(self, *, camera: str | None = None, event_id: str | None = None, missed_only: bool = False,
                since: str | None = None) -> list[dict[str, Any]]:
        """Marks in force, oldest first."""
        t = marks_t
        query = sa.select(t).where(t.c.removed_at.is_(None)).order_by(t.c.created_at, t.c.id)
        if camera:
            query = query.where(t.c.camera_id == camera)
        if event_id:
            query = query.where(t.c.event_id == event_id)
        if missed_only:
            query = query.where(t.c.event_id.is_(None))
        if since:
            query = query.where(t.c.created_at >= utc_iso(since))
        return [_out(r) for r in self.store.rows(query)]

    def corrections(self) -> dict[str, dict[str, Any]]:
        """Event id -> its corrected box, for `review export`."""
        t = marks_t
        rows = self.store.rows(sa.select(t).where(t.c.removed_at.is_(None), t.c.event_id.is_not(None)))
        return {r["event_id"]: _out(r) for r in rows}


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "bbox": json.loads(row["bbox"]) if isinstance(row["bbox"], str) else row["bbox"]}
