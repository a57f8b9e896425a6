"""`watch --pool`: the plan each member makes alone (pure), the pool's rows (real SQLite), and three real
watch processes sharing twelve RTSP cameras on a real PostgreSQL: a killed one's cameras are taken over,
a restarted one takes cameras back, and every camera keeps its one event id throughout."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from detector.apps.watch.pool import PoolMember, plan, shares
from detector.config.watch import Pool, load_watch
from detector.errors import StreetwatchError
from detector.output.pool import PoolRows
from detector.output.store import open_store
from testkit import REPO
from testkit.rtsp import RtspServer, free_port, write_frames
from testkit.worker import WorkerProcess, other_host_works, wait_for

BAY = [[0.52, 0.0], [1.0, 0.0], [1.0, 1.0], [0.52, 1.0]]
CAMS = [f"cam-{i:02d}" for i in range(12)]


def test_shares_are_even_within_capacity_and_the_same_on_every_member() -> None:
    assert shares(12, {"a": 64, "b": 64, "c": 64}) == {"a": 4, "b": 4, "c": 4}
    assert shares(12, {"a": 64, "b": 64}) == {"a": 6, "b": 6}
    assert shares(13, {"a": 2, "b": 64, "c": 64}) == {"a": 2, "b": 6, "c": 5}
    assert shares(5, {"a": 1, "b": 1}) == {"a": 1, "b": 1}  # the rest waits: nobody has room
    assert shares(0, {"a": 4}) == {"a": 0}


def test_a_member_takes_free_cameras_up_to_its_share_and_beyond_only_what_nobody_has_room_for() -> None:
    caps = {"a": 64, "b": 64, "c": 64}
    first = plan("a", CAMS, {}, caps, may_shed=True)
    assert first.take == CAMS[:4] and first.shed == [] and first.share == 4
    # b and c are at capacity 2: a takes what they cannot
    alone = plan("a", CAMS, {c: "b" for c in CAMS[:2]} | {c: "c" for c in CAMS[2:4]}, {"a": 64, "b": 2, "c": 2},
                 may_shed=True)
    assert alone.take == CAMS[4:]
    # a's capacity bounds it too
    assert plan("a", CAMS, {}, {"a": 3}, may_shed=True).take == CAMS[:3]


def test_an_over_share_member_hands_back_one_camera_only_to_a_member_with_room_and_nothing_free() -> None:
    caps = {"a": 64, "b": 64, "c": 64}
    held = {c: "a" for c in CAMS[:6]} | {c: "b" for c in CAMS[6:]}  # c just joined
    step = plan("a", CAMS, held, caps, may_shed=True)
    assert step.shed == [CAMS[5]] and step.take == []
    assert plan("a", CAMS, held, caps, may_shed=False).shed == []  # rate-limited
    assert plan("a", CAMS, held, {"a": 64, "b": 64}, may_shed=True).shed == []  # at its share: stays
    freed = {k: v for k, v in held.items() if k != CAMS[5]}
    assert plan("a", CAMS, freed, caps, may_shed=True) == plan("a", CAMS, freed, caps, may_shed=True)
    assert plan("a", CAMS, freed, caps, may_shed=True).shed == []  # something is free: the joiner takes that
    assert plan("a", CAMS, freed, caps, may_shed=True).take == []  # and a does not take it back
    assert plan("c", CAMS, freed, caps, may_shed=True).take == [CAMS[5]]


def test_pool_rows_publish_change_remove_and_leases_go_camera_by_camera(tmp_path: Path) -> None:
    store = open_store(tmp_path / "events.sqlite")
    try:
        rows = PoolRows(store)
        assert rows.publish({"c1": {"source": "rtsp://u:secret@h/1"}, "c2": {"source": "a.mp4"}}) == {
            "added": ["c1", "c2"], "removed": [], "changed": []}
        assert rows.publish({"c1": {"source": "rtsp://u:secret@h/1"}})["changed"] == []
        assert rows.publish({"c2": {"source": "b.mp4"}})["changed"] == ["c2"]
        assert rows.publish({"c3": {"source": "c.mp4"}}, replace=True) == {
            "added": ["c3"], "removed": ["c1", "c2"], "changed": []}
        rows.publish({"c1": {"source": "rtsp://u:secret@h/1"}})
        assert store.claim_leases(["c1", "c3"], "a", 30) == {"c1", "c3"}
        assert store.claim_leases(["c1", "c3", "c9"], "b", 30) == {"c9"}  # camera by camera, not all or none
        store.release_leases("a", ["c3"])
        assert store.claim_leases(["c3"], "b", 30) == {"c3"}
        state = rows.state()
        assert state["cameras"]["c1"] == {"holder": "a", "source": "rtsp://h/1"}  # no credentials
        assert state["unheld"] == []
        assert rows.remove(["c1", "c7"]) == ["c1"]
        rows.beat("a", 8, time.time(), 30)
        assert rows.state()["members"]["a"]["alive"]
        rows.leave("a")
        assert rows.members() == {} and "c1" not in store.leases()
    finally:
        store.close()


def test_an_sqlite_pool_has_one_process(tmp_path: Path) -> None:
    store = open_store(tmp_path / "events.sqlite")
    try:
        first = PoolMember(store, "host:1:a", Pool(), 30, dead=lambda _: False)
        first.join([])
        second = PoolMember(store, "host:2:b", Pool(), 30, dead=lambda _: False)
        with pytest.raises(StreetwatchError, match="SQLite store is already used by pool member host:1:a"):
            second.join([])
        PoolMember(store, "host:2:b", Pool(), 30, dead=lambda h: h == "host:1:a").join([])  # gone: no error
    finally:
        store.close()


def test_a_busy_member_takes_no_more_cameras_when_capacity_is_measured(tmp_path: Path) -> None:
    store = open_store(tmp_path / "events.sqlite")
    try:
        PoolRows(store).publish({c: {"camera": {"id": c, "timezone": "UTC"}, "source": "a.mp4"} for c in CAMS[:4]})
        member = PoolMember(store, "host:1:a", Pool(max_cameras=3, busy=0.8), 30, dead=lambda _: False)
        member.join([])
        assert [c.id for c in member.renew(busy=0.9).start] == [CAMS[0]]  # busy: as if it were full at one
        assert member.status()["capacity"] == 1 and member.status()["busy"] == 0.9
        assert [c.id for c in member.renew(busy=0.5).start] == CAMS[1:3]  # headroom again: up to max_cameras
        assert member.renew(busy=0.5).stop == {}
        PoolRows(store).remove([CAMS[1]])
        assert member.renew(busy=0.5).stop == {CAMS[1]: "removed from the pool"}
    finally:
        store.close()


def test_the_keeper_renews_the_leases_and_a_lease_lost_stops_the_camera(tmp_path: Path) -> None:
    store = open_store(tmp_path / "events.sqlite")
    try:
        PoolRows(store).publish({c: {"camera": {"id": c, "timezone": "UTC"}, "source": "a.mp4"} for c in CAMS[:2]})
        member = PoolMember(store, "host:1:a", Pool(), 3, dead=lambda _: False)
        member.join([])
        assert [c.id for c in member.renew(busy=0.0).start] == CAMS[:2]
        member.keep_alive(store.target)
        first = store.leases()[CAMS[0]]["expires_at"]
        wait_for(lambda: store.leases()[CAMS[0]]["expires_at"] > first, 5, "the keeper renewing the leases")
        store.release_leases("host:1:a", [CAMS[0]])  # as if it had expired...
        assert store.claim_leases([CAMS[0]], "host:2:b", 30) == {CAMS[0]}  # ...and another process took it
        lost = wait_for(lambda: member.renew(busy=0.0).stop, 5, "the keeper noticing")
        assert lost == {CAMS[0]: "lease lost to another process"} and member.renew(busy=0.0).start == []
        member.leave()
        assert store.leases() == {CAMS[0]: store.leases()[CAMS[0]]} and store.leases()[CAMS[0]]["holder"] == "host:2:b"
    finally:
        store.close()


def test_a_watch_file_with_a_pool_may_list_no_camera(tmp_path: Path) -> None:
    path = tmp_path / "watch.yaml"
    path.write_text(yaml.safe_dump({"out": "out", "pool": {"max_cameras": 8}, "cameras": []}))
    assert load_watch(path).pool == Pool(max_cameras=8)
    path.write_text(yaml.safe_dump({"out": "out", "cameras": []}))
    with pytest.raises(StreetwatchError, match="give at least one camera"):
        load_watch(path)


def _held(worker: WorkerProcess) -> dict[str, str]:
    health = worker.health()
    return health["pool"]["cameras"] if health else {}


def _streaming(worker: WorkerProcess) -> set[str]:
    health = worker.health() or {"cameras": {}}
    return {c for c, h in health["cameras"].items() if h["state"] == "streaming"}


def test_three_processes_share_twelve_cameras_and_take_over_a_killed_one(tmp_path: Path, bike_scene) -> None:
    frames = write_frames(tmp_path / "frames", bike_scene.image)
    server = RtspServer({c: frames for c in CAMS}, fps=2, log=tmp_path / "rtsp.log")
    cams = tmp_path / "cameras.yaml"
    cams.write_text(yaml.safe_dump({"out": "unused", "cameras": [
        {"camera": {"id": c, "timezone": "Europe/Amsterdam"}, "source": server.url(c),
         "zones": [{"id": "bike-bay", "type": "allowed", "kinds": ["bike"], "polygon": BAY}],
         "rules": {"bike": {"min_dwell_s": 2, "close_after_s": 120}}} for c in CAMS]}))
    from testkit import pg

    with pg.postgres_server() as url:
        workers = {}
        ids: dict[str, list[str]] = {}
        # c as if on another machine: its death is then seen only by its leases expiring, not by its pid
        elsewhere = other_host_works()
        for name in "abc":
            port = free_port()
            path = tmp_path / f"{name}.yaml"
            path.write_text(yaml.safe_dump({"out": f"out-{name}", "fps": 0.34, "http": {"port": port}, "db": url,
                                            "lease_s": 6, "pool": {"balance_every_s": 2}, "cameras": []}))
            workers[name] = WorkerProcess(path, tmp_path / f"out-{name}", port, tmp_path / f"{name}.log",
                                          hostname="machine-c" if name == "c" and elsewhere else None)

        def events() -> dict[str, list[dict]]:
            store = open_store(url)
            try:
                by_camera: dict[str, list[dict]] = {c: [] for c in CAMS}
                for e in store.events():
                    by_camera[e["camera_id"]].append(e)
                return by_camera
            finally:
                store.close()

        def spread(names: str) -> dict[str, set[str]]:
            held = {n: set(_held(workers[n])) for n in names}
            return held if sum(map(len, held.values())) == 12 and set().union(*held.values()) == set(CAMS) else {}

        def continued(cameras: set[str], since: dict[str, str]) -> bool:
            """Every camera still has its first events, open, and no other; these were seen after `since`."""
            now = events()
            if any(sorted(e["id"] for e in v) != ids[c] or {e["status"] for e in v} != {"open"}
                   for c, v in now.items()):
                raise AssertionError(f"an event was lost, split or closed: {now}")
            return all(min(e["last_seen"] for e in now[c]) > since[c] for c in cameras)

        def pool(*args: str) -> dict:
            done = subprocess.run([sys.executable, "-m", "detector.cli", "pool", *args, "--db", url], cwd=REPO,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)

        try:
            server.start()
            for worker in workers.values():
                worker.start()
            assert pool("add", str(cams))["added"] == CAMS
            held = wait_for(lambda: (h := spread("abc")) and all(len(v) == 4 for v in h.values()) and h, 60,
                            "four cameras in each process")
            wait_for(lambda: all(_streaming(workers[n]) == held[n] for n in "abc"), 60, "every camera streaming")
            first = wait_for(lambda: (e := events()) and all(len(v) == 2 for v in e.values()) and e, 120,
                             "an event for each of the scene's two bikes on every camera")
            ids.update({c: sorted(x["id"] for x in v) for c, v in first.items()})

            dead = workers["c"].health()["pool"]["holder"]
            workers["c"].kill()  # SIGKILL: its leases stay behind until they expire (or it is seen gone)
            killed = time.monotonic()
            wait_for(lambda: (h := spread("ab")) and held["c"] <= _streaming(workers["a"]) | _streaming(workers["b"])
                     and h, 6 + 10, "c's cameras streaming in a and b within lease time + 10 s")
            takeover_s = time.monotonic() - killed
            why = _held(workers["a"]) | _held(workers["b"])
            assert {why[c] for c in held["c"]} == {f"taken over from {dead}"}
            wait_for(lambda: continued(held["c"], {c: max(e["last_seen"] for e in first[c]) for c in CAMS}), 90,
                     "c's open events continued by a and b, with their ids")

            workers["c"].start()
            back = wait_for(lambda: (h := spread("abc")) and all(len(v) == 4 for v in h.values()) and h, 90,
                            "c taking four cameras back")
            wait_for(lambda: _streaming(workers["c"]) == back["c"], 60, "c streaming its cameras")
            moved = back["c"]
            mark = {c: max(x["last_seen"] for x in e) for c, e in events().items()}
            wait_for(lambda: continued(moved, mark), 90, "the moved cameras' events continued, none split")
            assert workers["c"].metric("streetwatch_pool_cameras", None) == 4
            listed = pool("list")
            assert listed["unheld"] == []
            assert sorted(len(m["cameras"]) for m in listed["members"].values()) == [0, 4, 4, 4]
            assert [m["cameras"] for m in listed["members"].values() if not m["alive"]] == [[]]  # the killed c

            stopped = time.monotonic()
            workers["a"].process.send_signal(signal.SIGTERM)  # a stopped process hands its cameras back at once
            wait_for(lambda: spread("bc"), 10, "a's cameras taken by b and c")
            handover_s = time.monotonic() - stopped
            assert workers["a"].process.wait(30) == 0
            exit_s = time.monotonic() - stopped
            print(f"takeover after SIGKILL ({'another machine' if elsewhere else 'same machine'}): "
                  f"{takeover_s:.1f}s; handover after SIGTERM: {handover_s:.1f}s (a exited in {exit_s:.1f}s)")
        finally:
            for name, worker in workers.items():
                print(name, "pool status:", json.dumps((worker.health() or {}).get("pool")))
            for worker in workers.values():
                worker.kill()
            server.kill()
            for name in "abc":
                print(name, (tmp_path / f"{name}.log").read_text()[-1500:])


def test_the_pool_command_adds_lists_and_removes_cameras(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from detector.cli import main

    db = str(tmp_path / "events.sqlite")
    path = tmp_path / "cams.yaml"
    path.write_text(yaml.safe_dump({"out": "out", "cameras": [
        {"camera": {"id": c, "timezone": "UTC"}, "source": f"rtsp://user:pw@cam/{c}"} for c in CAMS[:2]]}))
    assert main(["pool", "add", str(path), "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == CAMS[:2]
    assert main(["pool", "list", "--db", db]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["unheld"] == CAMS[:2] and "pw" not in json.dumps(listed)
    assert main(["pool", "remove", CAMS[0], "--db", db]) == 0
    assert json.loads(capsys.readouterr().out) == {"removed": [CAMS[0]]}
    assert main(["pool", "remove", "nope", "--db", db]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not in the pool: nope" in err[0]
