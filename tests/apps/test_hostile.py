"""What a hostile user tried: credentials that must never leave the process, YAML that must not hang it."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import psutil
import yaml

from testkit.rtsp import REPO, free_port
from testkit.worker import WorkerProcess, wait_for

BOMB = "\n".join([
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    *(f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi", strict=True)),
])


def watch_file(tmp_path: Path, cameras: list[dict], port: int) -> Path:
    config = {"out": "out", "model": str(REPO / "detector" / "cards" / "coco.yaml"), "http": {"port": port},
              "reconnect": {"initial_s": 0.2, "max_s": 0.5, "open_timeout_s": 2}, "cameras": cameras}
    path = tmp_path / "watch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_credentials_never_reach_logs_healthz_metrics_or_events(tmp_path: Path, shared: Path) -> None:
    dead = free_port()  # nothing listens: every attempt fails with an error that repeats the URL
    cameras = [{"camera": {"id": "cam-secret", "timezone": "UTC"}, "rules": {"bike": {"min_dwell_s": 4}},
                "source": f"rtsp://inspector:s3cret-pass@127.0.0.1:{dead}/live?token=t0ken-value",
                "snapshot_source": f"rtsp://inspector:s3cret-main@127.0.0.1:{dead}/main"}]
    port = free_port()
    worker = WorkerProcess(watch_file(tmp_path, cameras, port), tmp_path / "out", port, tmp_path / "worker.log")
    try:
        worker.start()
        wait_for(lambda: (worker.health() or {}).get("cameras", {}).get("cam-secret", {}).get("errors", 0) >= 3,
                 30, "three failed attempts")
        outputs = {"healthz": worker._get("/healthz")[1].decode(), "metrics": worker._get("/metrics")[1].decode()}
        assert worker.terminate()[0] == 0
    finally:
        worker.kill()
    outputs["log"] = (tmp_path / "worker.log").read_text()
    db = tmp_path / "out" / "events.sqlite"
    with sqlite3.connect(db) as conn:
        outputs["events"] = repr(conn.execute("SELECT * FROM events").fetchall())
    assert "source lost or unreachable" in outputs["log"] and "cam-secret" in outputs["healthz"]
    assert "Connection refused" in outputs["healthz"]  # the error is there, without what it repeated
    for name, text in outputs.items():
        for secret in ("s3cret-pass", "s3cret-main", "t0ken-value", "inspector:"):
            assert secret not in text, f"{secret!r} leaked into {name}"


def test_an_alias_bomb_is_refused_at_once_by_config_check(tmp_path: Path) -> None:
    from detector.cli import main

    path = tmp_path / "bomb.yaml"
    camera = "camera: {id: x, timezone: UTC}\nzones: [{id: z, type: *i, polygon: [[0, 0], [1, 0], [1, 1]]}]\n"
    path.write_text(BOMB + "\n" + camera)
    began = time.monotonic()
    assert main(["config", "check", str(path)]) == 2
    assert time.monotonic() - began < 2


def test_an_alias_bomb_given_to_a_running_worker_by_sighup_is_refused_and_the_worker_answers(tmp_path: Path,
                                                                                          shared: Path) -> None:
    video = shared / "videos" / "vtest.avi"
    cameras = [{"camera": {"id": "cam-1", "timezone": "UTC"}, "rules": {"bike": {"min_dwell_s": 4}},
                "source": str(video)}]
    port = free_port()
    path = watch_file(tmp_path, cameras, port)
    worker = WorkerProcess(path, tmp_path / "out", port, tmp_path / "worker.log")
    try:
        worker.start()
        assert worker.process is not None
        wait_for(lambda: worker.metric("streetwatch_frames_processed_total", "cam-1") >= 10, 60, "ten frames processed")
        rss = psutil.Process(worker.process.pid).memory_info().rss
        config = yaml.safe_load(path.read_text())
        config["cameras"][0]["zones"] = [{"id": "z", "type": "BOMB", "polygon": [[0, 0], [1, 0], [1, 1]]}]
        path.write_text(BOMB + "\n" + yaml.safe_dump(config).replace("type: BOMB", "type: *i"))
        worker.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in (tmp_path / "worker.log").read_text(), 10, "the refused reload")
        assert worker.health() is not None  # still answering
        assert psutil.Process(worker.process.pid).memory_info().rss < rss + 200 * 2**20
        code, seconds = worker.terminate()
        assert code == 0 and seconds < 10
    finally:
        worker.kill()
    assert "expands to more than" in (tmp_path / "worker.log").read_text()
