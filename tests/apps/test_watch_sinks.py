"""`streetwatch watch` with a webhook sink, against a real RTSP server and a real HTTP receiver: the
receiver is down, the worker is killed with SIGKILL, restarted, and every message still arrives."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from testkit.receiver import Receiver
from testkit.rtsp import RtspServer, free_port, write_frames
from testkit.worker import WorkerProcess, wait_for

BAY = [[0.52, 0.0], [1.0, 0.0], [1.0, 1.0], [0.52, 1.0]]


def test_kill_9_during_a_receiver_outage_loses_no_message(tmp_path: Path, bike_scene) -> None:
    frames = write_frames(tmp_path / "frames", bike_scene.image)
    server = RtspServer({"bikes": frames}, log=tmp_path / "rtsp.log")
    receiver = Receiver()  # down until the worker has been killed
    port = free_port()
    config = {
        "out": "out", "fps": 2, "http": {"port": port},
        "sinks": [{"url": receiver.url, "name": "city", "update_every_s": 2, "snapshot": "none"}],
        "cameras": [{
            "camera": {"id": "cam-bikes", "timezone": "Europe/Amsterdam"},
            "source": server.url("bikes"),
            "zones": [{"id": "bike-bay", "type": "allowed", "kinds": ["bike"], "polygon": BAY}],
            "rules": {"bike": {"min_dwell_s": 3, "close_after_s": 40}},
        }],
    }
    path = tmp_path / "watch.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    worker = WorkerProcess(path, out, port, tmp_path / "worker.log")
    try:
        server.start()
        worker.start()
        wait_for(lambda: sum(r["type"] == "updated" for r in worker.outbox()) >= 2 and
                 worker.outbox()[0]["attempts"] >= 2, 120, "opened and updated messages, the oldest probed twice")
        health = wait_for(lambda: (h := worker.health()) and h["sinks"]["city"]["retried"] and h, 30,
                          "the sink's failures in /healthz")
        assert health["sinks"]["city"]["state"] == "retrying" and health["sinks"]["city"]["delivered"] == 0
        assert worker.metric("streetwatch_sink_failed_total", "city", label="sink") > 0
        worker.kill()  # SIGKILL: nothing gets to run at exit
        queued = worker.outbox()
        assert queued and all(r["status"] == "pending" for r in queued)
        receiver.start()
        worker.start()
        wait_for(lambda: {r["message_id"] for r in queued} <= {m["message_id"] for m in receiver.accepted()},
                 90, "every message queued before the kill")
        wait_for(lambda: worker.metric("streetwatch_sink_delivered_total", "city", label="sink") > 0, 30,
                 "delivered messages in /metrics")
    finally:
        worker.kill()
        server.kill()
        receiver.stop()
        print((tmp_path / "worker.log").read_text()[-3000:])
    got = receiver.accepted()
    counts = Counter(m["message_id"] for m in got)
    assert all(n == 1 for n in counts.values()), "each message once: none was in flight (the receiver was down)"
    by_event: dict[str, list[str]] = {}
    for m in got:
        by_event.setdefault(m["event"]["id"], []).append(m["type"])
    assert len(by_event) == 2 and all(types[0] == "opened" for types in by_event.values())


def test_watch_processes_share_a_postgresql_store_and_a_camera_is_watched_by_one(tmp_path: Path, bike_scene) -> None:
    import subprocess
    import sys

    from detector.output.store import open_store
    from testkit import REPO, pg

    frames = write_frames(tmp_path / "frames", bike_scene.image)
    server = RtspServer({"bikes": frames}, log=tmp_path / "rtsp.log")

    def watch_file(name: str, port: int, url: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "out": f"out-{name}", "fps": 2, "http": {"port": port}, "db": url, "lease_s": 6,
            "cameras": [{"camera": {"id": "cam-bikes", "timezone": "Europe/Amsterdam"}, "source": server.url("bikes"),
                         "zones": [{"id": "bike-bay", "type": "allowed", "kinds": ["bike"], "polygon": BAY}],
                         "rules": {"bike": {"min_dwell_s": 3, "close_after_s": 40}}}],
        }))
        return path

    with pg.postgres_server() as url:
        port_a, port_b = free_port(), free_port()
        a = WorkerProcess(watch_file("a", port_a, url), tmp_path / "out-a", port_a, tmp_path / "a.log")
        b = WorkerProcess(watch_file("b", port_b, url), tmp_path / "out-b", port_b, tmp_path / "b.log")
        try:
            server.start()
            a.start()
            refused = subprocess.run([sys.executable, "-m", "detector.cli", "watch", "--config", str(b.config)],
                                     cwd=REPO, capture_output=True, text=True, timeout=120)
            assert refused.returncode == 2
            assert "cameras already watched by another process: cam-bikes" in refused.stderr
            assert len(refused.stderr.strip().splitlines()) == 1 and "postgres@" not in refused.stderr

            def events() -> list[dict]:
                store = open_store(url)
                try:
                    return store.events()
                finally:
                    store.close()

            first = wait_for(lambda: len(events()) >= 2 and events(), 120, "two events from process a")
            a.kill()  # SIGKILL: its lease is left behind, held by a process that is gone
            b.start()
            wait_for(lambda: {e["id"] for e in events()} == {e["id"] for e in first} and
                     min(e["last_seen"] for e in events()) > max(e["last_seen"] for e in first), 90,
                     "process b continuing the same events")
        finally:
            a.kill()
            b.kill()
            server.kill()
