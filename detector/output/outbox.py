"""The outbox: every message a sink must receive, stored with the event change it reports.

A push that drops messages while the platform is down loses violations, so nothing is sent from memory:
`Messages` turns an event change into one outbox row per sink (stored by the sink's transaction), and a
`Deliverer` (detector.output.delivery) sends them from the database, so a crash or `kill -9` only means
a message is sent again after the restart, under the same `message_id`.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from detector.camera.events import Event
from detector.config.camera import CameraConfig
from detector.config.sinks import SinkConfig, stored_url
from detector.errors import ConfigError
from detector.output import messages
from detector.output.store import EventStore, outbox_t, sinks_t

PENDING_PAGE = 200  # outbox rows a deliverer reads per pass


class Messages:
    """Outbox rows for one camera's event changes; `updated` at most every `update_every_s` per sink."""

    def __init__(self, sinks: list[SinkConfig], camera: CameraConfig, out_dir: Path | None,
                 wake: threading.Event | None = None) -> None:
        self.sinks, self.camera, self.out_dir = sinks, camera, out_dir
        self._last_update: dict[tuple[str, str], datetime] = {}
        self.wake = wake or threading.Event()  # set after a commit that queued messages: deliverers look at once

    def reconfigure(self, camera: CameraConfig) -> None:
        self.camera = camera

    def change(self, event: Event, type_: str) -> list[dict[str, Any]]:
        if not self.sinks:
            return []
        sinks = self.sinks
        if type_ == "updated":
            sinks = [s for s in sinks if self._update_due(s, event)]
        elif type_ == "closed":
            for s in sinks:
                self._last_update.pop((s.id, event.id), None)
        else:
            for s in sinks:
                self._last_update[(s.id, event.id)] = event.last_seen
        if not sinks:
            return []
        body = messages.build(event.to_dict(), type_, self.camera, self.out_dir)
        now = time.time()
        text = json.dumps(body, ensure_ascii=False)
        return [{"sink_id": s.id, "message_id": body["message_id"], "event_id": event.id,
                 "camera_id": event.camera_id, "type": type_, "body": text, "created_at": now, "attempts": 0,
                 "next_at": now, "status": "pending", "error": None, "done_at": None} for s in sinks]

    def _update_due(self, sink: SinkConfig, event: Event) -> bool:
        last = self._last_update.get((sink.id, event.id))
        if last is not None and (event.last_seen - last).total_seconds() < sink.update_every_s:
            return False
        self._last_update[(sink.id, event.id)] = event.last_seen
        return True


def _stored_options(sink: SinkConfig) -> str:
    """A sink's options as the database keeps them: every URL among them without its credentials."""
    options = sink.model_dump(mode="json", exclude={"url"})
    if options.get("snapshot_url"):
        options["snapshot_url"] = stored_url(options["snapshot_url"])
    return json.dumps(options)


class Outbox:
    """The outbox tables of one store connection (a deliverer has its own: connections are not shared)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def register(self, sinks: list[SinkConfig]) -> None:
        """Record the sinks (URL without credentials, options) so `streetwatch deliver` knows where
        pending rows go; the first registration's time stays."""
        rows = [{"id": s.id, "url": stored_url(s.url), "options": _stored_options(s),
                 "created_at": datetime.now(UTC).isoformat()} for s in sinks]
        self.store.register_sinks(rows)

    def sinks(self) -> list[SinkConfig]:
        """The recorded sinks; one whose options no longer validate is a one-line error naming the database."""
        rows = self.store.rows(sa.select(sinks_t).order_by(sinks_t.c.id))
        try:
            return [SinkConfig(url=r["url"], **json.loads(r["options"])) for r in rows]
        except (ValidationError, ValueError) as e:
            raise ConfigError(f"a recorded sink no longer validates ({str(e).splitlines()[0]})",
                              path=self.store.path, fix="pass the sinks again with --sink") from None

    def _scope(self, query: Any, sink_id: str, cameras: list[str] | None) -> Any:
        t = outbox_t
        query = query.where(t.c.sink_id == sink_id)
        return query.where(t.c.camera_id.in_(cameras)) if cameras is not None else query

    def pending(self, sink_id: str, cameras: list[str] | None = None,
                limit: int = PENDING_PAGE) -> list[dict[str, Any]]:
        """The oldest pending rows of a sink, of `cameras` only where given (a process sends what its own
        cameras queued: it holds their snapshots, and one sender per camera keeps their order)."""
        t = outbox_t
        query = self._scope(sa.select(t), sink_id, cameras).where(t.c.status == "pending")
        return self.store.rows(query.order_by(t.c.seq).limit(limit))

    def pending_count(self, sink_id: str, cameras: list[str] | None = None) -> int:
        t = outbox_t
        query = self._scope(sa.select(sa.func.count()).select_from(t), sink_id, cameras).where(t.c.status == "pending")
        return int(self.store.rows(query.with_only_columns(sa.func.count().label("n")))[0]["n"])

    def delivered(self, seq: int, attempts: int) -> None:
        self._set(seq, status="delivered", attempts=attempts, done_at=time.time(), error=None)

    def retry(self, seq: int, attempts: int, next_at: float, error: str) -> None:
        self._set(seq, attempts=attempts, next_at=next_at, error=error[:500])

    def dead(self, seq: int, attempts: int, error: str) -> None:
        self._set(seq, status="dead", attempts=attempts, done_at=time.time(), error=error[:500])

    def _set(self, seq: int, **values: Any) -> None:
        """Only a row still pending changes: another sender's outcome is never overwritten."""
        t = outbox_t
        self.store.write(sa.update(t).where(t.c.seq == seq, t.c.status == "pending").values(**values))

    def counts(self, cameras: list[str] | None = None) -> dict[str, dict[str, int]]:
        """sink id -> status -> messages (of `cameras` only where given)."""
        t = outbox_t
        query = sa.select(t.c.sink_id, t.c.status, sa.func.count().label("n"))
        if cameras is not None:
            query = query.where(t.c.camera_id.in_(cameras))
        out: dict[str, dict[str, int]] = {}
        for r in self.store.rows(query.group_by(t.c.sink_id, t.c.status)):
            out.setdefault(r["sink_id"], {"pending": 0, "delivered": 0, "dead": 0})[r["status"]] = int(r["n"])
        return out

    def messages(self, sink_id: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(outbox_t).order_by(outbox_t.c.seq)
        return self.store.rows(query.where(outbox_t.c.sink_id == sink_id) if sink_id else query)
