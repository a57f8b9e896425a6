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


def test_no_secret_of_a_sink_or_a_source_is_stored_or_printed(tmp_path: Path, capsys) -> None:
    """A snapshot_url with credentials is kept without them; `config check` shows a source's ?token= masked."""
    from detector.cli import main
    from detector.config.sinks import SinkConfig
    from detector.output.outbox import Outbox
    from detector.output.store import EventStore

    store = EventStore(tmp_path / "events.sqlite")
    sink = SinkConfig(url="https://platform.example/events", snapshot="url",
                      snapshot_url="https://desk-user:desk-pass@desk.example/api/events?token=t0ken-value")
    Outbox(store).register([sink])
    store.close()
    dump = "\n".join(sqlite3.connect(tmp_path / "events.sqlite").iterdump())
    assert "desk-pass" not in dump and "t0ken-value" not in dump and "desk.example" in dump
    camera = {"camera": {"id": "cam-1", "timezone": "UTC"},
              "source": "rtsp://inspector:s3cret-pass@192.0.2.1/live?token=t0ken-value"}
    path = tmp_path / "watch.yaml"
    path.write_text(yaml.safe_dump({"out": "out", "cameras": [{**camera, "camera": {"id": "cam-1?token=t0ken-value",
                                                                                      "timezone": "UTC"}}]}))
    assert main(["config", "check", str(path)]) == 2  # a camera id with a query: refused, and said masked
    assert "t0ken-value" not in capsys.readouterr().err


def test_a_since_past_the_calendar_and_export_paths_outside_the_folder_are_refused(tmp_path: Path) -> None:
    from detector.apps.review import export
    from detector.output.reviews import Reviews
    from detector.output.store import EventStore

    reviews = Reviews(EventStore(tmp_path / "events.sqlite"))
    try:
        reviews.page(since="9999-12-31T23:59:59-23:59")
        raise AssertionError("an overflowing since was taken")
    except ValueError as e:
        assert "is not an ISO date or time" in str(e)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not for the dataset")
    events_dir = tmp_path / "events"
    events_dir.mkdir()
    event = {"id": "cam-1-x", "kind": "bike", "bbox": [0, 0, 1, 1], "clean_frame": "../secret.jpg",
             "source": {"uri": "u", "pts_s": 0.0}, "review": {"verdict": "confirmed", "reason": None}}
    counts = export([event], events_dir, tmp_path / "export")
    assert counts[("skipped", "no clean frame", "")] == 1 and not list((tmp_path / "export").rglob("*.jpg"))


def test_logins_are_throttled_logged_and_a_logout_revokes_the_session(tmp_path: Path, caplog) -> None:
    import logging

    import httpx
    import pytest

    from detector.apps.serve.app import Desk, create_app
    from detector.apps.serve.auth import COOKIE, FREE_FAILURES, Gate, load_token
    from detector.errors import ConfigError
    from detector.output.store import EventStore
    from testkit.desk import served

    for weak in ("a" * 16, "abab" * 8, "1234567812345678"):
        (tmp_path / "token").write_text(weak)
        with pytest.raises(ConfigError, match="easy to guess"):
            load_token(tmp_path / "token", "0.0.0.0")
    token = "k3Q-9fZp_2Lx7vRt0wYb"
    EventStore(tmp_path / "events.sqlite").close()
    desk = Desk(target=tmp_path / "events.sqlite", out_dir=tmp_path, gate=Gate(token))
    with served(create_app(desk)) as url, caplog.at_level(logging.WARNING):
        codes = [httpx.post(f"{url}/login", data={"token": f"guess-{n}", "name": "x"}).status_code
                 for n in range(FREE_FAILURES + 3)]
        assert codes[:FREE_FAILURES] == [401] * FREE_FAILURES and set(codes[FREE_FAILURES:]) == {429}
        assert caplog.text.count("wrong token from 127.0.0.1") == FREE_FAILURES  # the refused ones are not tried
        bearer = httpx.get(f"{url}/api/events", headers={"Authorization": "Bearer guess"})
        assert bearer.status_code == 429 and int(bearer.headers["retry-after"]) >= 1
        desk.gate.succeeded("127.0.0.1")  # the waits are the throttle's: let the real operator in
        login = httpx.post(f"{url}/login", data={"token": token, "name": "ana"})
        cookie = login.cookies[COOKIE] if COOKIE in login.cookies else login.history[0].cookies[COOKIE]
        page = httpx.get(f"{url}/", cookies={COOKIE: cookie})
        assert page.status_code == 200
        csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        httpx.post(f"{url}/logout", data={"csrf": csrf}, cookies={COOKIE: cookie})
        again = httpx.get(f"{url}/api/events", cookies={COOKIE: cookie})
        assert again.status_code == 401  # the copied cookie died with the logout
