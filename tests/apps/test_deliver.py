"""Sinks end to end: `scan --sink` of the parked-bike video to a receiver that is down at first, the
camera file's sinks, and `streetwatch deliver` killed with SIGKILL mid-run and started again."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import yaml

from detector.apps.scan import scan
from detector.config.camera import CameraConfig
from detector.config.sinks import SinkConfig
from detector.output import delivery
from detector.output.outbox import Outbox
from detector.output.store import EventStore
from testkit import REPO
from testkit.receiver import Receiver
from tests.apps.test_scan import START, bay_camera
from tests.output.test_delivery import lifecycle


def test_scan_pushes_opened_and_closed_with_work_orders_to_a_receiver_down_at_first(tmp_path: Path, videos,
                                                                                    coco_card, detector,
                                                                                    monkeypatch) -> None:
    monkeypatch.setattr(delivery, "BACKOFF_CAP_S", 1.0)
    receiver = Receiver()

    def up_after_the_first_failure() -> None:  # the platform is down until a message has failed to reach it
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if (tmp_path / "events.sqlite").exists():
                store = EventStore(tmp_path / "events.sqlite")
                try:
                    if any(r["attempts"] for r in Outbox(store).messages()):
                        break
                finally:
                    store.close()
            time.sleep(0.2)
        receiver.start()

    threading.Thread(target=up_after_the_first_failure, daemon=True).start()
    camera = CameraConfig.model_validate({**bay_camera().model_dump(mode="json", exclude={"sinks"}),
                                          "camera": {"id": "cam-bikes", "timezone": "Europe/Amsterdam",
                                                     "name": "Dam square", "device_id": "31010400001320000001"}})
    try:
        result = scan([videos["bikes_90s"]], camera, coco_card, tmp_path, start=START, detector=detector,
                      sinks=[SinkConfig(url=receiver.url)], deliver_timeout_s=20)
    finally:
        time.sleep(0.1)
        receiver.stop()
    assert len(result.events) == 2
    sink_id = SinkConfig(url=receiver.url).id
    assert result.delivery[sink_id]["pending"] == 0 and result.delivery[sink_id]["dead"] == 0
    got = receiver.accepted()
    by_event: dict[str, list[str]] = {}
    for m in got:
        by_event.setdefault(m["event"]["id"], []).append(m["type"])
    assert set(by_event) == {e["id"] for e in result.events}
    for types in by_event.values():
        assert types[0] == "opened" and types[-1] == "closed" and set(types) <= {"opened", "updated", "closed"}
    closed = [m for m in got if m["type"] == "closed"]
    for m in closed:
        assert m["work_order"]["category"]["code"] == "05-06" and m["work_order"]["camera"]["name"] == "Dam square"
        final = next(e for e in result.events if e["id"] == m["event"]["id"])
        assert m["event"]["status"] == "closed" and m["event"]["last_seen"] == final["last_seen"]
        image = cv2.imdecode(np.frombuffer(base64.b64decode(m["snapshot"]["jpeg_base64"]), np.uint8),
                             cv2.IMREAD_COLOR)
        assert image is not None and image.shape[0] > 100
    first = Outbox(EventStore(tmp_path / "events.sqlite")).messages()[0]
    assert first["type"] == "opened" and first["attempts"] >= 2  # tried while the receiver was down, then sent


def test_camera_file_sinks_and_a_bad_sink_url_from_the_cli(tmp_path: Path, videos) -> None:
    receiver = Receiver().start()
    camera = bay_camera(dwell=8).model_dump(mode="json", exclude={"sinks"})  # events within the 20 s clip
    camera["sinks"] = [{"url": receiver.url, "name": "city", "update_every_s": 3600, "snapshot": "none"}]
    path = tmp_path / "camera.yaml"
    path.write_text(yaml.safe_dump(camera))
    try:
        run = subprocess.run([sys.executable, "-m", "detector.cli", "scan", str(videos["bikes_20s"]), "--camera",
                              str(path), "--out", str(tmp_path / "out"), "--model", "coco", "--start",
                              START.isoformat()], capture_output=True, text=True, cwd=REPO, timeout=600)
    finally:
        receiver.stop()
    assert run.returncode == 0, run.stderr
    assert "sink city: " in run.stdout and "messages delivered" in run.stdout
    got = receiver.accepted()
    assert Counter(m["type"] for m in got) == {"opened": 2, "closed": 2}  # updates throttled to one an hour
    assert all(m["snapshot"] is None for m in got)
    bad = subprocess.run([sys.executable, "-m", "detector.cli", "scan", str(videos["bikes_20s"]), "--camera",
                          str(path), "--out", str(tmp_path / "o2"), "--model", "coco", "--sink", "smtp://x"],
                         capture_output=True, text=True, cwd=REPO, timeout=600)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --sink: ") and "unknown scheme" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_deliver_killed_mid_run_resends_only_what_was_not_acknowledged(tmp_path: Path) -> None:
    receiver = Receiver(delay_s=0.03).start()  # slow enough that SIGKILL lands mid-run
    try:
        store = EventStore(tmp_path / "events.sqlite")
        sink = SinkConfig(url=receiver.url)
        lifecycle(store, [sink], 40)  # 120 messages
        expected = [r["message_id"] for r in Outbox(store).messages()]
        store.close()
        cmd = [sys.executable, "-m", "detector.cli", "deliver", str(tmp_path)]
        first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len(receiver.requests) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        done_before = len(receiver.requests)
        assert 20 <= done_before < 120
        again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        sent_now = int(again.stdout.split(": ")[1].split()[0])  # "sink ID: N messages delivered"
        assert 0 < sent_now <= 120 - done_before + 1  # what the killed run had not got acknowledged
    finally:
        receiver.stop()
    ids = [m["message_id"] for m in receiver.accepted()]
    assert set(ids) == set(expected)  # everything arrived
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert len(dupes) <= 1  # at most the one in flight when it was killed, under its own message_id
    nothing = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert nothing.returncode == 0 and len(receiver.requests) == len(ids)


def test_deliver_refuses_a_folder_without_a_store(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "detector.cli", "deliver", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "no events.sqlite" in run.stderr and "fix:" in run.stderr
    assert json.dumps(run.stderr)  # one line


def test_deliver_takes_the_credentials_the_database_does_not_keep(tmp_path: Path) -> None:
    receiver = Receiver().start()
    try:
        store = EventStore(tmp_path / "events.sqlite")
        secret = f"{receiver.url}?token=s3cret"
        lifecycle(store, [SinkConfig(url=secret)], 1)
        assert "s3cret" not in json.dumps(Outbox(store).sinks()[0].model_dump())
        store.close()
        cmd = [sys.executable, "-m", "detector.cli", "deliver", str(tmp_path), "--sink", secret]
        run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert {r["path"] for r in receiver.requests} == {"/events?token=s3cret"}
        assert "3 messages delivered" in run.stdout and "s3cret" not in run.stdout
        again = subprocess.run(cmd[:5], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "nothing pending" in again.stdout
    finally:
        receiver.stop()
