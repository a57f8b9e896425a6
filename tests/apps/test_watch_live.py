"""`streetwatch watch` against a real RTSP server (GStreamer) with the real model: faults injected.

The stream is the parked-bike scene composed from real photos (testkit/media.py), two bikes outside the
bike bay, so two violations are in view the whole time. Short dwell, long close_after, so the run is short
and an outage of 15 s is within one event.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.rtsp import RtspServer, free_port, write_frames
from testkit.worker import WorkerProcess, wait_for

BAY = [[0.52, 0.0], [1.0, 0.0], [1.0, 1.0], [0.52, 1.0]]


def last_seen(events: list[dict[str, Any]]) -> dict[str, float]:
    from datetime import datetime

    return {e["id"]: datetime.fromisoformat(e["last_seen"]).timestamp() for e in events}


@pytest.fixture
def setup(tmp_path: Path, bike_scene, shared):
    frames = write_frames(tmp_path / "frames", bike_scene.image)
    stuck = socket.socket()  # accepts connections and never answers: a camera hung mid-handshake
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(16)
    server = RtspServer({"bikes": frames}, log=tmp_path / "rtsp.log")
    port = free_port()
    config = {
        "out": "out",
        "fps": 2,
        "reconnect": {"initial_s": 0.5, "max_s": 2.0},
        "watchdog": {"no_frame_s": 8},
        "http": {"port": port},
        "cameras": [
            {
                "camera": {"id": "cam-bikes", "timezone": "Europe/Amsterdam"},
                "source": server.url("bikes"),
                "zones": [{"id": "bike-bay", "type": "allowed", "kinds": ["bike"], "polygon": BAY}],
                "rules": {"bike": {"min_dwell_s": 4, "close_after_s": 40}},
            },
            {   # a camera that never comes up: nothing listens on this port
                "camera": {"id": "cam-never", "timezone": "Asia/Shanghai"},
                "source": f"rtsp://127.0.0.1:{free_port()}/none",
                "rules": {"bike": {"min_dwell_s": 4}},
            },
            {
                "camera": {"id": "cam-stuck", "timezone": "Asia/Shanghai"},
                "source": f"rtsp://127.0.0.1:{stuck.getsockname()[1]}/hung",
                "rules": {"bike": {"min_dwell_s": 4}},
            },
        ],
    }
    path = tmp_path / "watch.yaml"
    path.write_text(yaml.safe_dump(config))
    worker = WorkerProcess(path, tmp_path / "out", port, tmp_path / "worker.log")
    yield server, worker, config, path
    worker.kill()
    server.kill()
    stuck.close()
    print((tmp_path / "worker.log").read_text()[-4000:])


def test_outage_restart_and_reload_keep_one_event_per_violation(setup):
    server, worker, config, path = setup
    server.start()
    worker.start()

    # Two bikes outside the bay become two open events; the dead camera does not hold them up.
    events = wait_for(lambda: len(worker.events()) >= 2 and worker.events(), 120, "two open events")
    ids = {e["id"] for e in events}
    assert len(ids) == 2 and {e["status"] for e in events} == {"open"}
    health = worker.health()
    assert health["cameras"]["cam-bikes"]["state"] == "streaming"
    assert health["cameras"]["cam-never"]["state"] in ("backoff", "connecting")
    assert health["cameras"]["cam-never"]["frames"] == 0
    assert worker.metric("streetwatch_source_errors_total", "cam-never") >= 1

    # The server dies for 15 s and comes back: the worker reconnects and the same events go on.
    server.kill()
    killed = time.time()
    time.sleep(15)
    assert worker.health()["cameras"]["cam-bikes"]["state"] != "streaming"
    back = server.start()
    first = wait_for(lambda: (worker.health()["cameras"]["cam-bikes"]["last_frame_unix"] or 0) > back
                     and worker.health()["cameras"]["cam-bikes"]["last_frame_unix"], 30, "a frame after the return")
    print(f"server down {back - killed:.1f}s; first new frame {first - back:.2f}s after its return")
    assert worker.metric("streetwatch_reconnects_total", "cam-bikes") >= 1
    assert worker.metric("streetwatch_watchdog_restarts_total", "cam-stuck") >= 1  # hung, restarted, alone
    # A still scene: most frames reuse the last detections, the model still runs every static_recheck_s.
    assert worker.metric("streetwatch_frames_unchanged_total", "cam-bikes") > worker.metric(
        "streetwatch_frames_inferred_total", "cam-bikes") >= 2
    assert worker.health()["cameras"]["cam-stuck"]["frames"] == 0
    wait_for(lambda: min(last_seen(worker.events()).values()) > back, 30, "events seen after the return")
    events = worker.events()
    assert {e["id"] for e in events} == ids and {e["status"] for e in events} == {"open"}  # no duplicate

    # SIGTERM: exit 0 within 10 s, and the open events are saved as they were.
    before = last_seen(worker.events())
    code, took = worker.terminate()
    assert code == 0 and took < 10, (code, took)
    saved = worker.events()
    assert {e["id"] for e in saved} == ids and {e["status"] for e in saved} == {"open"}
    assert all(last_seen(saved)[i] >= before[i] for i in ids)

    # A restart continues both events (same ids) instead of opening new ones after a fresh dwell.
    restarted = time.time()
    worker.start()
    wait_for(lambda: min(last_seen(worker.events()).values()) > restarted, 90, "resumed events seen again")
    events = worker.events()
    assert {e["id"] for e in events} == ids and {e["status"] for e in events} == {"open"}

    # SIGHUP with the whole frame a bike bay: the stream stays up, the bikes stop being violations.
    errors = worker.metric("streetwatch_source_errors_total", "cam-bikes")
    config["cameras"][0]["zones"][0]["polygon"] = [[0, 0], [1, 0], [1, 1], [0, 1]]
    path.write_text(yaml.safe_dump(config))
    frames = worker.metric("streetwatch_frames_total", "cam-bikes")
    worker.process.send_signal(signal.SIGHUP)
    time.sleep(3)  # a frame in flight may still count under the old zones
    frozen = last_seen(worker.events())
    time.sleep(4)
    assert last_seen(worker.events()) == frozen
    assert worker.metric("streetwatch_frames_total", "cam-bikes") > frames + 4
    assert worker.metric("streetwatch_source_errors_total", "cam-bikes") == errors
    code, took = worker.terminate()
    assert code == 0 and took < 10, (code, took)
    assert {e["id"] for e in worker.events()} == ids
    # --log-json: one JSON object per line, telling what happened to which camera.
    logged = [json.loads(line) for line in worker.log.read_text().splitlines() if line.startswith("{")]
    assert {e["event_id"] for e in logged if e.get("event") == "resumed"} == ids
    assert any(e.get("event") == "source_down" and e.get("camera") == "cam-bikes" for e in logged)
    assert any(e.get("event") == "reloaded" for e in logged)
