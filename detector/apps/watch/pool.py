"""`watch --pool`: several watch processes share one store's camera list, each taking its share.

There is no coordinator: every member renews its own row and leases every third of a lease time and
decides alone, from the same rows, what to take and what to hand back (`plan`). Shares are filled by
capacity (`shares`), so every member computes the same split. A camera whose lease expired, or whose
holder is a killed process on this machine, is free; a member takes free cameras up to its share, and
beyond it only what no other member has room for. A member above its share hands one camera back per
`balance_every_s`, and only while another member is below its share with nothing free to take, so a
joining process fills up without cameras bouncing between the others. Open events travel with the
camera: the old holder flushes them as open, the new one resumes them by id (as after a restart).
A thread of its own (`keep_alive`, on its own store connection) beats and renews the leases, so a process
whose inference falls behind keeps its cameras instead of having them taken while it is merely busy.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detector.config.watch import LiveCamera, Pool, load_watch
from detector.errors import StreetwatchError
from detector.output.pool import PoolRows, camera_entry
from detector.output.store import EventStore, PostgresEventStore, open_store

log = logging.getLogger(__name__)

PLAN_EVERY_S = 1.0  # how often a member looks for free cameras and balance (at most; lease_s/3 if less)
FORGET_AFTER_LEASES = 20  # a member not seen for this many lease times leaves the dashboard


def shares(cameras: int, capacities: dict[str, int]) -> dict[str, int]:
    """Each member's share of `cameras`: even, except that a member is never given more than its capacity
    (what it cannot take goes to the others); ties go the same way on every member."""
    out: dict[str, int] = {}
    left = cameras
    order = sorted(capacities, key=lambda h: (capacities[h], h))
    for i, holder in enumerate(order):
        out[holder] = min(capacities[holder], -(-left // (len(order) - i)))
        left -= out[holder]
    return out


@dataclass(frozen=True)
class Plan:
    take: list[str] = field(default_factory=list)  # free cameras to claim
    shed: list[str] = field(default_factory=list)  # held cameras to hand back
    share: int = 0


def plan(me: str, cameras: list[str], holders: dict[str, str], capacities: dict[str, int], *,
         may_shed: bool) -> Plan:
    """What `me` does now. `cameras`: the pool's; `holders`: camera -> live holder (expired and dead leases
    left out); `capacities`: live member -> the most it holds (`me` among them)."""
    want = shares(len(cameras), capacities)
    held = {h: sorted(c for c in cameras if holders.get(c) == h) for h in capacities}
    free = [c for c in sorted(cameras) if c not in holders]
    mine = held[me]
    take = free[:max(0, want[me] - len(mine))]
    others_room = sum(max(0, want[h] - len(held[h])) for h in capacities if h != me)
    spare = len(free) - len(take) - others_room  # free cameras nobody else has room for
    if spare > 0:
        take += free[len(take):len(take) + min(spare, capacities[me] - len(mine) - len(take))]
    shed: list[str] = []
    if may_shed and len(mine) > want[me] and not free and others_room > 0:
        shed = mine[-1:]
    return Plan(take=take, shed=shed, share=want[me])


@dataclass
class PoolChanges:
    """What a renewal asks of the worker."""

    start: list[LiveCamera] = field(default_factory=list)  # taken: start watching
    stop: dict[str, str] = field(default_factory=dict)  # camera -> why: lost, removed, handed back, changed
    reconfigure: list[LiveCamera] = field(default_factory=list)  # held, zones or rules changed


class PoolMember:
    """One watch process's part in the pool: its row, its leases, and why it holds each camera."""

    def __init__(self, store: EventStore, holder: str, settings: Pool, lease_s: float,
                 dead: Callable[[str], bool]) -> None:
        self.rows, self.holder, self.settings, self.lease_s = PoolRows(store), holder, settings, lease_s
        self.store, self.dead = store, dead
        self.started_at = time.time()
        self.held: dict[str, str] = {}  # camera -> why this process holds it
        self.configs: dict[str, str] = {}  # camera -> sha256 of the config it runs with
        self.share = 0
        self.capacity = settings.max_cameras
        self.busy = 0.0  # share of wall time in inference over the last renewal period
        self._balanced_at = time.monotonic()
        self._lock = threading.Lock()  # the keeper's renewal against the worker's takes and hand-backs
        self._lost: set[str] = set()  # leases the keeper could not renew (another process has them)
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None

    def keep_alive(self, target: str | Path) -> None:
        """Beat and renew the held leases every third of a lease time, in a thread, until `leave()`."""
        self._keeper = threading.Thread(target=self._keep, args=(target,), name="pool-keeper", daemon=True)
        self._keeper.start()

    def _keep(self, target: str | Path) -> None:
        store = open_store(target)
        try:
            while not self._stopping.wait(self.lease_s / 3):
                try:
                    with self._lock:
                        PoolRows(store).beat(self.holder, self.capacity, self.started_at, self.lease_s)
                        held = sorted(self.held)
                        self._lost |= set(held) - store.claim_leases(held, self.holder, self.lease_s, dead=self.dead)
                except Exception as e:  # the store away for a moment: the next beat tries again
                    log.warning("pool: renewing the leases failed, retrying: %s", e,
                                extra={"event": "pool_renew_failed"})
        finally:
            store.close()

    def join(self, cameras: list[LiveCamera]) -> None:
        """Check the store can be shared, say we are here, add the file's cameras to the list."""
        others = self._live_members(time.time()).keys() - {self.holder}
        if others and not isinstance(self.store, PostgresEventStore):
            raise StreetwatchError(f"the SQLite store is already used by pool member {sorted(others)[0]}",
                                   path=self.store.path, fix="an SQLite pool has one process: give every "
                                   "process the same --db postgresql://... to share cameras")
        self.rows.beat(self.holder, self.capacity, self.started_at, self.lease_s)
        if cameras and self.settings.publish:
            changed = self.rows.publish({c.id: camera_entry(c) for c in cameras})
            log.info("pool: cameras added %s, changed %s", changed["added"], changed["changed"],
                     extra={"event": "pool_published", **changed})

    def _live_members(self, now: float) -> dict[str, dict[str, Any]]:
        members = self.rows.members()
        gone = [h for h, m in members.items() if now - m["seen_at"] > FORGET_AFTER_LEASES * self.lease_s]
        self.rows.forget(gone)
        return {h: m for h, m in members.items()
                if h == self.holder or (now - m["seen_at"] <= m["lease_s"] and not self.dead(h))}

    def renew(self, busy: float) -> PoolChanges:
        """Beat, take and hand back by `plan` (every PLAN_EVERY_S: a free camera is not dark for long); what the
        worker must start and stop."""
        with self._lock:
            return self._renew(busy)

    def _renew(self, busy: float) -> PoolChanges:
        now = time.time()
        limit = self.settings.busy
        self.capacity = self.settings.max_cameras if limit is None or busy <= limit else min(
            self.settings.max_cameras, max(len(self.held), 1))
        self.busy = round(busy, 3)  # (the keeper's next beat announces the capacity: it owns the member row)
        pool = self.rows.cameras()
        members = self._live_members(now)
        leases = self.store.leases()
        holders = {c: r["holder"] for c, r in leases.items() if c in pool and (r["holder"] == self.holder or (
            r["expires_at"] >= now and not self.dead(r["holder"])))}  # (a non-pool process's lease counts too)
        may_shed = time.monotonic() - self._balanced_at >= self.settings.balance_every_s
        capacities = {h: m["capacity"] for h, m in members.items()} | {self.holder: self.capacity}
        step = plan(self.holder, list(pool), holders, capacities, may_shed=may_shed)
        self.share = step.share
        changes = PoolChanges()
        for camera in sorted(self._lost & set(self.held)):
            changes.stop[camera] = "lease lost to another process"
        self._lost.clear()
        for camera in sorted(set(self.held) - set(pool)):
            changes.stop[camera] = "removed from the pool"
        for camera in step.shed:
            changes.stop[camera] = "handed back to balance the pool"
            self._balanced_at = time.monotonic()
        for camera in self.held:  # (their leases are the keeper's to renew)
            if camera not in changes.stop and pool[camera]["sha256"] != self.configs[camera]:
                changes.reconfigure.append(self._camera(camera, pool[camera]))
        got = self.store.claim_leases(step.take, self.holder, self.lease_s, dead=self.dead) if step.take else set()
        for camera in step.take:
            if camera in got:
                changes.start.append(self._camera(camera, pool[camera]))
                before = leases.get(camera, {}).get("holder")
                self.held[camera] = f"taken over from {before}" if before and before != self.holder else "free"
        for camera in changes.stop:
            self.held.pop(camera, None)
            self.configs.pop(camera, None)
        return changes

    def _camera(self, camera_id: str, row: dict[str, Any]) -> LiveCamera:
        self.configs[camera_id] = row["sha256"]
        return LiveCamera.model_validate(row["config"])

    def hand_back(self, camera_ids: list[str]) -> None:
        """The worker has stopped these (and saved their open events): free their leases now."""
        if camera_ids:
            with self._lock:
                self.store.release_leases(self.holder, camera_ids)

    def leave(self) -> None:
        """Stop renewing; the member row and every lease go at once, for the others' next renewal."""
        self._stopping.set()
        if self._keeper is not None:
            self._keeper.join(timeout=10)
        self.rows.leave(self.holder)

    def status(self) -> dict[str, Any]:
        """For /healthz: who we are, our share and capacity, and why we hold each camera."""
        return {"holder": self.holder, "share": self.share, "capacity": self.capacity, "busy": self.busy,
                "cameras": dict(sorted(self.held.items()))}


def pool_cli(args: argparse.Namespace) -> int:
    """`streetwatch pool list|add|remove`: the store's camera list, who holds each camera, the members."""
    store = open_store(args.db)
    try:
        rows = PoolRows(store)
        if args.pool_command == "add":
            config = load_watch(args.config)
            changed = rows.publish({c.id: camera_entry(c) for c in config.cameras}, replace=args.replace)
            print(json.dumps(changed))
        elif args.pool_command == "remove":
            gone = rows.remove(args.camera)
            missing = sorted(set(args.camera) - set(gone))
            if missing:
                raise StreetwatchError(f"not in the pool: {', '.join(missing)}", path=store.path,
                                       fix="see `streetwatch pool list --db ...`")
            print(json.dumps({"removed": gone}))
        else:
            print(json.dumps(rows.state(), indent=1))
    finally:
        store.close()
    return 0
