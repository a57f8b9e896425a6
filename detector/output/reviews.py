"""Operators' verdicts on events, and the queries of the review desk: pages of events newest first with
their reviews, one event, counts for the dashboard.

A review is stored apart from its event (table `reviews`, by event id), so re-scanning the same input,
which rewrites the event rows under the same ids, keeps every verdict. A rejection queues a `cancelled`
message for every sink that was told about the event, in the same transaction, so the platform can
withdraw the work order.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from detector.output.messages import message_id
from detector.output.store import EventStore, event_dict, events_t, reviews_t, utc_iso
from detector.output.suppressions import SuppressionRows

VERDICTS = ("confirmed", "rejected")
REASONS = ("not a violation", "allowed here", "duplicate", "other")
MAX_PAGE = 200


def _cursor(row: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(f"{row['first_seen_utc']}|{row['id']}".encode()).decode()


def _uncursor(cursor: str) -> tuple[str, str]:
    try:
        first_seen, _, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a cursor this server gave") from None
    if not event_id:
        raise ValueError("not a cursor this server gave")
    return first_seen, event_id


class Reviews:
    """Verdicts and review-desk queries on one store; `out_dir` holds its snapshots (a rejection remembers
    the object's picture from the event's crop there, so the rejection sticks)."""

    def __init__(self, store: EventStore, out_dir: Path | None = None) -> None:
        self.store = store
        self.out_dir = out_dir

    def page(self, *, kind: str | None = None, camera: str | None = None, status: str | None = None,
             review: str | None = None, since: str | None = None, limit: int = 50, cursor: str | None = None,
             located: bool = False) -> tuple[list[dict[str, Any]], str | None]:
        """Events newest first (with `review`), and the cursor of the next page (None: the last one).
        `review`: confirmed, rejected, or none (not reviewed yet). `since`: an ISO date or time (UTC unless
        it has an offset). `located`: only events with a map position."""
        e, r = events_t, reviews_t
        query = _with_reviews()
        for column, value in ((e.c.kind, kind), (e.c.camera_id, camera), (e.c.status, status)):
            if value:
                query = query.where(column == value)
        if review == "none":
            query = query.where(r.c.verdict.is_(None))
        elif review:
            query = query.where(r.c.verdict == review)
        if since:
            query = query.where(e.c.first_seen_utc >= _utc(since))
        if located:
            query = query.where(e.c.lat.is_not(None))
        if cursor:
            first_seen, event_id = _uncursor(cursor)
            query = query.where(sa.tuple_(e.c.first_seen_utc, e.c.id) < sa.tuple_(sa.literal(first_seen),
                                                                                   sa.literal(event_id)))
        limit = max(1, min(limit, MAX_PAGE))
        rows = self.store.rows(query.order_by(e.c.first_seen_utc.desc(), e.c.id.desc()).limit(limit + 1))
        events = [_with_review(row) for row in rows[:limit]]
        return events, (_cursor(rows[limit - 1]) if len(rows) > limit else None)

    def event(self, event_id: str) -> dict[str, Any] | None:
        rows = self.store.rows(_with_reviews().where(events_t.c.id == event_id))
        return _with_review(rows[0]) if rows else None

    def neighbours(self, event: dict[str, Any]) -> tuple[str | None, str | None]:
        """(newer, older) event ids around `event` in the list's order, for j/k on the event page."""
        e = events_t
        key = sa.tuple_(e.c.first_seen_utc, e.c.id)
        here = sa.tuple_(sa.literal(utc_iso(event["first_seen"])), sa.literal(event["id"]))
        newer = self.store.rows(sa.select(e.c.id).where(key > here).order_by(e.c.first_seen_utc, e.c.id).limit(1))
        older = self.store.rows(sa.select(e.c.id).where(key < here)
                                 .order_by(e.c.first_seen_utc.desc(), e.c.id.desc()).limit(1))
        return (newer[0]["id"] if newer else None), (older[0]["id"] if older else None)

    def review(self, event_id: str, verdict: str, reason: str | None, reviewer: str) -> dict[str, Any]:
        """Store a verdict (replacing an earlier one). A rejection queues `cancelled` for the sinks the event was
        sent to; a confirmation after a rejection queues `reinstated` for those that were told `cancelled`: each
        change of mind reaches the platform, in order, so its work order follows the desk.

        A rejection also sticks (`detector.output.suppressions`): the same object at the same place raises no
        new event; a confirmation lifts that. The answer is the review, with `sticks` (and `why_not`)."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict {verdict!r}: confirmed or rejected")
        if verdict == "rejected" and reason not in REASONS:
            raise ValueError(f"a rejection needs a reason: one of {', '.join(REASONS)}")
        event = self.event(event_id)
        if event is None:
            raise KeyError(event_id)
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        row = {"event_id": event_id, "verdict": verdict, "reason": reason if verdict == "rejected" else None,
               "reviewer": reviewer, "reviewed_at": at}
        suppressions = SuppressionRows(self.store)
        with self.store.transaction():
            self.store.upsert_review(row)
            self.store.enqueue(self._verdict_messages(event, row))
            if verdict == "rejected":
                why_not = suppressions.remember(event, self.out_dir, str(reason), reviewer, at)
                if why_not is not None:  # (a rejection made earlier for another reason no longer holds)
                    suppressions.lift(event_id, f"{reviewer} ({reason})")
            else:
                suppressions.lift(event_id, f"{reviewer} (confirmed)")
                why_not = "confirmed"
        return {**row, "sticks": why_not is None, "why_not": why_not}

    def _verdict_messages(self, event: dict[str, Any], review: dict[str, Any]) -> list[dict[str, Any]]:
        """Per sink that was sent this event: `cancelled` when rejected (unless it was told so last), `reinstated`
        when confirmed after it was told `cancelled`; with the latest work order it was sent."""
        latest: dict[str, dict[str, Any]] = {}
        told: dict[str, str] = {}  # sink -> the last verdict message it was sent
        for r in self.store.sent(event["id"]):
            body = json.loads(r["body"])
            latest[r["sink_id"]] = body
            if body.get("type") in ("cancelled", "reinstated"):
                told[r["sink_id"]] = body["type"]
        type_ = "cancelled" if review["verdict"] == "rejected" else "reinstated"
        cancelled = {s for s in latest if told.get(s) == "cancelled"}
        due = [s for s in latest if (s not in cancelled) == (type_ == "cancelled")]
        now, mid = time.time(), message_id(event["id"], type_, review["reviewed_at"])
        event = {k: v for k, v in event.items() if k != "review"}
        verdict = {k: review[k] for k in ("verdict", "reason", "reviewer", "reviewed_at")}
        return [{"sink_id": sink_id, "message_id": mid, "event_id": event["id"], "camera_id": event["camera_id"],
                 "type": type_, "created_at": now, "attempts": 0, "next_at": now, "status": "pending",
                 "error": None, "done_at": None,
                 "body": json.dumps({"message_id": mid, "type": type_, "event": event,
                                     "work_order": latest[sink_id].get("work_order"), "snapshot_file": None,
                                     "review": verdict}, ensure_ascii=False)}
                for sink_id in due]

    def stats(self) -> dict[str, Any]:
        """For the dashboard: events per kind per day, per camera, and verdicts per kind."""
        e, r = events_t, reviews_t
        day = sa.func.substr(e.c.first_seen, 1, 10).label("day")
        per_day = self.store.rows(sa.select(day, e.c.kind, sa.func.count().label("n")).group_by(day, e.c.kind)
                                   .order_by(day))
        per_camera = self.store.rows(sa.select(e.c.camera_id, sa.func.count().label("n")).group_by(e.c.camera_id)
                                      .order_by(e.c.camera_id))
        verdicts = self.store.rows(sa.select(e.c.kind, r.c.verdict, sa.func.count().label("n"))
                                    .select_from(e.outerjoin(r, r.c.event_id == e.c.id))
                                    .group_by(e.c.kind, r.c.verdict))
        by_kind: dict[str, dict[str, int]] = {}
        for row in verdicts:
            by_kind.setdefault(row["kind"], {"confirmed": 0, "rejected": 0, "unreviewed": 0})[
                row["verdict"] or "unreviewed"] = int(row["n"])
        return {"per_day": per_day, "per_camera": per_camera, "verdicts": by_kind}

    def reviewed(self, since: str | None = None) -> list[dict[str, Any]]:
        """Every reviewed event (oldest first), for `review export`."""
        e, r = events_t, reviews_t
        query = _with_reviews(reviewed_only=True)
        if since:
            query = query.where(r.c.reviewed_at >= _utc(since))
        return [_with_review(row) for row in self.store.rows(query.order_by(e.c.first_seen, e.c.id))]


def _with_reviews(*, reviewed_only: bool = False) -> Any:
    """Events with their review's columns (none where not reviewed, unless `reviewed_only`)."""
    e, r = events_t, reviews_t
    joined = e.join(r, r.c.event_id == e.c.id) if reviewed_only else e.outerjoin(r, r.c.event_id == e.c.id)
    return sa.select(e, r.c.verdict, r.c.reason, r.c.reviewer, r.c.reviewed_at).select_from(joined)


def _utc(text: str) -> str:
    try:
        return utc_iso(text)
    except (ValueError, OverflowError):  # 9999-12-31T23:59-23:59 lies past the last year a datetime holds
        raise ValueError(f"since {text!r} is not an ISO date or time (2026-12-01, 2026-12-01T08:00+08:00)") from None


def _with_review(row: dict[str, Any]) -> dict[str, Any]:
    event = event_dict(row)
    event["review"] = ({k: row[k] for k in ("verdict", "reason", "reviewer", "reviewed_at")}
                       if row.get("verdict") else None)
    return event
