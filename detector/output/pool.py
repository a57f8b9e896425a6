"""The pool's rows in the store (`watch --pool`): the shared camera list and the processes taking part.

Each camera is its watch-file entry, resolved (absolute paths), as JSON, with a hash so that a process
holding it sees when it changed. Each member says how many cameras it will hold and renews `seen_at`
with its leases; a member not seen for a lease time (or a killed process on this machine) is gone, and
its cameras' leases are for others to take. The leases themselves are the store's `camera_leases`.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import sqlalchemy as sa

from detector.config.watch import LiveCamera
from detector.output.store import EventStore, leases_t, pool_cameras_t, pool_members_t
from detector.redact import redact


def camera_entry(camera: LiveCamera) -> dict[str, Any]:
    """A watch file's camera, resolved, as the pool stores it."""
    return camera.model_dump(mode="json", exclude_defaults=True)


def config_sha(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


class PoolRows:
    """Reads and writes the pool tables of one open store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def cameras(self) -> dict[str, dict[str, Any]]:
        """camera id -> {config (parsed), sha256, updated_at}."""
        rows = self.store.rows(sa.select(pool_cameras_t).order_by(pool_cameras_t.c.camera_id))
        return {r["camera_id"]: {**r, "config": json.loads(r["config"])} for r in rows}

    def publish(self, configs: dict[str, dict[str, Any]], *, replace: bool = False) -> dict[str, list[str]]:
        """Add or change cameras (id -> config); with `replace`, the pool is exactly these (others removed).
        What changed: {added, changed, removed} ids."""
        t, now = pool_cameras_t, time.time()
        stmt = self.store.insert(t)
        stmt = stmt.on_conflict_do_update(index_elements=["camera_id"], set_={
            "config": stmt.excluded.config, "sha256": stmt.excluded.sha256, "updated_at": stmt.excluded.updated_at},
            where=t.c.sha256 != stmt.excluded.sha256)
        with self.store.transaction():
            known = {r.camera_id: r.sha256 for r in self.store.db.execute(sa.select(t.c.camera_id, t.c.sha256))}
            shas = {c: config_sha(v) for c, v in configs.items()}
            rows = [{"camera_id": c, "config": json.dumps(v, sort_keys=True), "sha256": shas[c],
                     "updated_at": now} for c, v in sorted(configs.items())]
            if rows:
                self.store.db.execute(stmt, rows)
            removed = sorted(set(known) - set(configs)) if replace else []
            if removed:
                self.store.db.execute(sa.delete(t).where(t.c.camera_id.in_(removed)))
        return {"added": sorted(set(configs) - set(known)), "removed": removed,
                "changed": sorted(c for c in configs if c in known and known[c] != shas[c])}

    def remove(self, camera_ids: list[str]) -> list[str]:
        """Take cameras out of the pool (their holders stop them at their next renewal); those that were in."""
        t = pool_cameras_t
        with self.store.transaction():
            known = set(self.store.db.execute(sa.select(t.c.camera_id).where(t.c.camera_id.in_(camera_ids))).scalars())
            self.store.db.execute(sa.delete(t).where(t.c.camera_id.in_(camera_ids)))
        return sorted(known)

    def beat(self, holder: str, capacity: int, started_at: float, lease_s: float) -> None:
        """This member is alive (for `lease_s` from now) and holds at most `capacity` cameras."""
        t = pool_members_t
        stmt = self.store.insert(t)
        stmt = stmt.on_conflict_do_update(index_elements=["holder"], set_={
            "capacity": stmt.excluded.capacity, "seen_at": stmt.excluded.seen_at})
        with self.store.transaction():
            self.store.db.execute(stmt, {"holder": holder, "capacity": capacity, "seen_at": time.time(),
                                         "started_at": started_at, "lease_s": lease_s})

    def members(self) -> dict[str, dict[str, Any]]:
        """holder -> {capacity, seen_at, started_at}."""
        return {r["holder"]: r for r in self.store.rows(sa.select(pool_members_t))}

    def leave(self, holder: str) -> None:
        """The member and its leases go at once: its cameras are free for the others' next renewal."""
        with self.store.transaction():
            self.store.db.execute(sa.delete(pool_members_t).where(pool_members_t.c.holder == holder))
            self.store.db.execute(sa.delete(leases_t).where(leases_t.c.holder == holder))

    def forget(self, holders: list[str]) -> None:
        """Members long gone (not seen for many lease times): their rows only clutter the dashboard."""
        if holders:
            with self.store.transaction():
                self.store.db.execute(sa.delete(pool_members_t).where(pool_members_t.c.holder.in_(holders)))

    def state(self) -> dict[str, Any]:
        """The cameras (with their holder, or none), the members (alive: seen within their lease time) with
        what they hold, and the cameras nobody holds: what `streetwatch pool list` prints and the desk shows."""
        now = time.time()
        leases = {c: r for c, r in self.store.leases().items() if r["expires_at"] >= now}
        cameras = {c: {"holder": leases[c]["holder"] if c in leases else None,
                       "source": redact(str(row["config"].get("source", "")))} for c, row in self.cameras().items()}
        members = {h: {"alive": now - m["seen_at"] <= m["lease_s"], "capacity": m["capacity"],
                       "seen_s_ago": round(now - m["seen_at"], 1),
                       "cameras": sorted(c for c, v in cameras.items() if v["holder"] == h)}
                   for h, m in self.members().items()}
        return {"cameras": cameras, "members": members,
                "unheld": sorted(c for c, v in cameras.items() if v["holder"] is None)}
