"""The way out, opened in one order: a sink that cannot start (a missing secret) is one error before anything
is recorded, and leaves neither a store connection nor (for watch) a camera lease behind."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from detector.config.camera import CameraConfig
from detector.config.sinks import SinkConfig
from detector.config.watch import WatchConfig
from detector.errors import ConfigError
from detector.output.outputs import Outputs
from detector.output.store import EventStore

CAMERA = CameraConfig.model_validate({"camera": {"id": "cam-1", "timezone": "UTC"}})
SECRET_SINK = {"url": "http://127.0.0.1:9/events", "authorization_env": "STREETWATCH_TEST_NO_SUCH_TOKEN"}


def test_outputs_register_the_sinks_and_hand_out_recorders(tmp_path: Path) -> None:
    sink = SinkConfig(url="http://127.0.0.1:9/events")
    with Outputs.open(tmp_path / "events.sqlite", tmp_path, {CAMERA.id: [sink]}) as outputs:
        assert outputs.delivery is not None and outputs.messages(CAMERA) is not None
        recorder = outputs.recorder(CAMERA)
        assert recorder.messages is not None and recorder.messages.wake is outputs.wake
        assert outputs.write_final() == [] and (tmp_path / "events.jsonl").exists()
        assert outputs.finish(0.0)[sink.id]["pending"] == 0
    with Outputs.open(tmp_path / "events.sqlite", None, {"cam-1": []}) as outputs:
        assert outputs.delivery is None and outputs.snapshots(CAMERA) is None
        with pytest.raises(ValueError, match="give the outputs a folder"):
            outputs.recorder(CAMERA)
    rows = sqlite3.connect(tmp_path / "events.sqlite").execute("SELECT id, url FROM sinks").fetchall()
    assert rows == [(sink.id, sink.url)]  # recorded for `streetwatch deliver`, once


def test_a_sink_that_cannot_start_is_one_error_and_closes_what_was_opened(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_SINK["authorization_env"], raising=False)
    closed = []
    real_close = EventStore.close
    monkeypatch.setattr(EventStore, "close", lambda self: (closed.append(self.path), real_close(self)))
    with pytest.raises(ConfigError, match="STREETWATCH_TEST_NO_SUCH_TOKEN is not set"):
        Outputs.open(tmp_path / "events.sqlite", tmp_path, {CAMERA.id: [SinkConfig(**SECRET_SINK)]})
    assert closed == [tmp_path / "events.sqlite"]


def test_a_watch_that_cannot_start_its_sinks_frees_its_camera_leases(tmp_path: Path, coco_card,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from detector.apps.watch.worker import Worker

    monkeypatch.delenv(SECRET_SINK["authorization_env"], raising=False)
    config = WatchConfig.model_validate({"out": str(tmp_path), "http": {"port": 0}, "sinks": [SECRET_SINK],
                                         "cameras": [{"camera": {"id": "cam-1", "timezone": "UTC"},
                                                      "source": "a.mp4"}]})
    with pytest.raises(ConfigError, match="is not set"):
        Worker(config, coco_card, detector=object()).run()  # type: ignore[arg-type]
    db = sqlite3.connect(tmp_path / "events.sqlite")
    assert db.execute("SELECT count(*) FROM camera_leases").fetchone() == (0,)
