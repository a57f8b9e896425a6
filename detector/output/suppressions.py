"""The store's rejections that stick (table `suppressions`): made by a rejection in the review desk, lifted by
an undo or a later confirmation, read by every app that runs a camera's pipeline (`detector.camera.suppress`).

A rejection for "duplicate" makes none (the object is a real violation, reported by another event), nor does
an event of a moving camera (its boxes are never at the same place twice) or one without a crop to take the
object's picture from.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from detector.camera.suppress import Hits, Suppression, decode_signature, encode_signature, signature
from detector.output.snapshots import stored_image
from detector.output.store import EventStore, suppressions_t, utc_iso

log = logging.getLogger(__name__)

STICKY_REASONS = ("not a violation", "allowed here", "other")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SuppressionRows:
    """Reads and writes the suppressions of one open store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def remember(self, event: dict[str, Any], out_dir: Path | None, reason: str, reviewer: str,
                 at: str) -> str | None:
        """A rejected event's object, in the caller's transaction; why it was not kept, or None when it was."""
        if reason not in STICKY_REASONS:
            return f"a {reason!r} rejection does not stick"
        if event.get("location"):
            return "a moving camera's event does not stick"
        crop = stored_image(out_dir, event.get("crop"))
        if crop is None:
            return "no crop of the event to remember its picture by"
        row = {"id": event["id"], "camera_id": event["camera_id"], "kind": event["kind"],
               "bbox": json.dumps(event["bbox"]), "signature": encode_signature(signature(crop)), "reason": reason,
               "reviewer": reviewer, "created_at": utc_iso(at), "lifted_at": None, "lifted_by": None, "tracks": 0,
               "last_hit": None}
        self.store.upsert_row(suppressions_t, row, keep=("tracks", "last_hit"))  # a second rejection keeps the count
        return None

    def lift(self, suppression_id: str, by: str, at: str | None = None) -> bool:
        """Undo a suppression, in the caller's transaction; False when there was none in force."""
        t = suppressions_t
        done = self.store.db.execute(sa.update(t).where(t.c.id == suppression_id, t.c.lifted_at.is_(None))
                                     .values(lifted_at=utc_iso(at or _now()), lifted_by=by))
        return bool(done.rowcount)

    def undo(self, suppression_id: str, by: str) -> bool:
        """`lift()` in a transaction of its own (the desk's undo button)."""
        with self.store.transaction():
            return self.lift(suppression_id, by)

    def active(self, camera_ids: list[str] | None = None) -> dict[str, list[Suppression]]:
        """Camera id -> the suppressions in force there (expiry is the camera's to judge, by its rule)."""
        t = suppressions_t
        query = sa.select(t).where(t.c.lifted_at.is_(None)).order_by(t.c.created_at, t.c.id)
        if camera_ids is not None:
            query = query.where(t.c.camera_id.in_(camera_ids))
        out: dict[str, list[Suppression]] = defaultdict(list)
        for row in self.store.rows(query):
            try:
                out[row["camera_id"]].append(Suppression(
                    id=row["id"], camera_id=row["camera_id"], kind=row["kind"],
                    bbox=tuple(float(v) for v in json.loads(row["bbox"])),  # type: ignore[arg-type]
                    signature=decode_signature(row["signature"]), since=datetime.fromisoformat(row["created_at"])))
            except (ValueError, TypeError):
                log.warning("suppression %s is unreadable; it is ignored", row["id"])
        return dict(out)

    def of(self, camera_id: str) -> list[Suppression]:
        """The suppressions in force on one camera."""
        return self.active([camera_id]).get(camera_id, [])

    def record(self, hits: dict[str, Hits]) -> None:
        """Objects each suppression kept out (added up), and when last."""
        if not hits:
            return
        t = suppressions_t
        with self.store.transaction():
            for sid, h in hits.items():
                last = utc_iso(h.last.isoformat())
                self.store.db.execute(sa.update(t).where(t.c.id == sid).values(
                    tracks=t.c.tracks + h.tracks,
                    last_hit=sa.case((t.c.last_hit.is_(None) | (t.c.last_hit < last), last), else_=t.c.last_hit)))

    def listing(self, *, camera: str | None = None, lifted: bool = False, limit: int = 500) -> list[dict[str, Any]]:
        """For the desk, newest first: those in force (and with `lifted`, the undone ones too)."""
        t = suppressions_t
        query = sa.select(t).order_by(t.c.created_at.desc(), t.c.id).limit(limit)
        if camera:
            query = query.where(t.c.camera_id == camera)
        if not lifted:
            query = query.where(t.c.lifted_at.is_(None))
        return [{**{k: v for k, v in r.items() if k != "signature"}, "bbox": json.loads(r["bbox"])}
                for r in self.store.rows(query)]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per camera: suppressions in force, and the objects all of them kept out (for /metrics)."""
        t = suppressions_t
        in_force = sa.func.sum(sa.case((t.c.lifted_at.is_(None), 1), else_=0)).label("n")
        rows = self.store.rows(sa.select(t.c.camera_id, in_force, sa.func.sum(t.c.tracks).label("tracks"))
                               .group_by(t.c.camera_id))
        return {r["camera_id"]: {"active": int(r["n"]), "tracks": int(r["tracks"])} for r in rows}
