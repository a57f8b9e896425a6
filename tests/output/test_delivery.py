"""The outbox and its deliverers against real receivers: an HTTP server that fails on purpose and a real
Mosquitto broker, on a real SQLite file (PostgreSQL in test_delivery_pg)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.camera.events import Event, Status
from detector.config.camera import CameraConfig, load_camera
from detector.config.sinks import SinkConfig, redact_url, sinks_from_urls
from detector.errors import ConfigError
from detector.output import delivery
from detector.output.delivery import Deliverer, DeliveryPool
from detector.output.outbox import Messages, Outbox
from detector.output.store import EventStore
from testkit.receiver import Broker, Receiver, Subscriber

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
CAMERA = CameraConfig.model_validate({"camera": {
    "id": "cam-7", "timezone": "Asia/Shanghai", "name": "人民路口", "device_id": "34020000001320000007",
    "location": {"lon": 121.47, "lat": 31.23, "address": "上海市人民路 100 号", "grid_code": "310101-07"}}})


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "BACKOFF_BASE_S", 0.05)
    monkeypatch.setattr(delivery, "BACKOFF_CAP_S", 0.4)


def event(n: int, seconds: float = 60.0, status: Status = Status.OPEN, snapshot: str | None = None) -> Event:
    return Event(id=f"ev-{n}", camera_id="cam-7", kind="garbage", category={"code": "01-03", "name": "积存垃圾渣土"},
                 zone_id=None, first_seen=T0 + timedelta(minutes=n),
                 last_seen=T0 + timedelta(minutes=n, seconds=seconds),
                 confidence=0.8, bbox=[1, 2, 3, 4], track_id=n, source={"uri": "v.mp4", "pts_s": 1.0},
                 model={"card": "c", "sha256": "x"}, status=status, snapshot=snapshot)


def lifecycle(store: EventStore, sinks: list[SinkConfig], n: int, out: Path | None = None) -> list[Event]:
    """`n` events, each opened, updated twice (throttled) and closed, stored as a sink stores them."""
    messages = Messages(sinks, CAMERA, out)
    Outbox(store).register(sinks)
    events = []
    for i in range(n):
        e = event(i, snapshot="snapshots/a.jpg" if out else None)
        store.upsert([e], messages.change(e, "opened"))
        for extra in (5.0, 120.0):  # the first is within update_every_s (60) of the opening, the second not
            e.seen(e.last_seen + timedelta(seconds=extra))
            store.upsert([e], messages.change(e, "updated"))
        e.close()
        store.upsert([e], messages.change(e, "closed"))
        events.append(e)
    return events


def test_messages_carry_the_event_a_work_order_and_stable_ids(tmp_path: Path) -> None:
    out = tmp_path
    image = np.full((40, 60, 3), 120, np.uint8)
    (out / "snapshots").mkdir()
    cv2.imwrite(str(out / "snapshots/a.jpg"), image)
    receiver = Receiver().start()
    try:
        store = EventStore(out / "events.sqlite")
        sink = SinkConfig(url=receiver.url)
        lifecycle(store, [sink], 2, out)
        assert [r["type"] for r in Outbox(store).messages()] == ["opened", "updated", "closed"] * 2
        d = Deliverer(Outbox(store), sink)
        assert d.drain(10) and d.stats.delivered == 6
        got = receiver.accepted()
        assert [m["type"] for m in got] == ["opened", "updated", "closed"] * 2
        first = got[0]
        assert first["event"]["id"] == "ev-0" and first["event"]["status"] == "open" and got[2]["event"]["status"] \
            == "closed"
        order = first["work_order"]
        assert order["category"] == {"code": "01-03", "name": "积存垃圾渣土"}
        assert order["camera"] == {"id": "cam-7", "name": "人民路口", "device_id": "34020000001320000007"}
        assert order["location"]["lat"] == 31.23 and order["location"]["grid_code"] == "310101-07"
        assert "上海市人民路 100 号" in order["title"]["zh"] and "2026-11-30 16:00:00" in order["description"]["zh"]
        assert order["description"]["en"].startswith("Piled garbage at") and "1 min" in order["description"]["en"]
        jpeg = base64.b64decode(first["snapshot"]["jpeg_base64"])
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (40, 60, 3)
        assert first["snapshot"]["path"] == "snapshots/a.jpg" and "sent_at" in first
        ids = [m["message_id"] for m in got]
        assert len(set(ids)) == 6 and receiver.requests[0]["headers"]["X-Streetwatch-Message-Id"] == ids[0]
        again = EventStore(tmp_path / "again.sqlite")  # the same input again: the same message ids
        lifecycle(again, [sink], 2, out)
        assert [r["message_id"] for r in Outbox(again).messages()] == ids
        lifecycle(store, [sink], 2, out)  # re-running into the same store queues nothing new
        assert len(Outbox(store).messages()) == 6
    finally:
        receiver.stop()


def test_5xx_and_timeouts_are_retried_4xx_is_dead_lettered_and_order_holds(tmp_path: Path) -> None:
    answers = {0: 500, 1: 503}  # the first two attempts fail, the rest succeed
    receiver = Receiver(answer=lambda n: answers.get(n, 200)).start()
    try:
        store = EventStore(tmp_path / "events.sqlite")
        sink = SinkConfig(url=receiver.url)
        lifecycle(store, [sink], 3)
        d = Deliverer(Outbox(store), sink)
        assert d.drain(20)
        got = receiver.accepted()
        assert len(got) == 9 and d.stats.retried == 2
        for n in range(3):
            assert [m["type"] for m in got if m["event"]["id"] == f"ev-{n}"] == ["opened", "updated", "closed"]
        rows = Outbox(store).messages()
        assert all(r["status"] == "delivered" for r in rows)
        assert [r["attempts"] for r in rows] == [3, 1, 1, 1, 1, 1, 1, 1, 1]  # the oldest probed until it went
    finally:
        receiver.stop()
    refusing = Receiver(answer=lambda n: 422).start()
    try:
        store = EventStore(tmp_path / "refused.sqlite")
        sink = SinkConfig(url=refusing.url)
        lifecycle(store, [sink], 1)
        d = Deliverer(Outbox(store), sink)
        assert d.drain(5)
        assert len(refusing.requests) == 3 and d.stats.dead == 3  # each tried once, not retried forever
        rows = Outbox(store).messages()
        assert {r["status"] for r in rows} == {"dead"} and "HTTP 422" in rows[0]["error"]
    finally:
        refusing.stop()
    slow = Receiver(delay_s=1.5).start()  # slower than the sink's timeout: retried
    try:
        store = EventStore(tmp_path / "slow.sqlite")
        sink = SinkConfig(url=slow.url, timeout_s=0.3)
        lifecycle(store, [sink], 1)
        d = Deliverer(Outbox(store), sink)
        assert not d.drain(1.0)
        row = Outbox(store).messages()[0]
        assert row["status"] == "pending" and row["attempts"] >= 1 and "no answer within" in row["error"]
    finally:
        slow.stop()


def test_a_receiver_down_at_start_gets_everything_once_it_is_up(tmp_path: Path) -> None:
    receiver = Receiver()
    store = EventStore(tmp_path / "events.sqlite")
    sink = SinkConfig(url=receiver.url)
    lifecycle(store, [sink], 2)
    pool = DeliveryPool(tmp_path / "events.sqlite", [sink]).start()
    try:
        time.sleep(1.0)  # refused connections meanwhile: retried with backoff
        assert Outbox(store).counts()[sink.id]["pending"] == 6
        assert Outbox(store).messages()[0]["attempts"] >= 2
        receiver.start()
        counts = pool.finish(15)
    finally:
        pool.close()
        receiver.stop()
    assert counts[sink.id] == {"pending": 0, "delivered": 6, "dead": 0}
    assert len(receiver.accepted()) == 6


def test_messages_older_than_max_age_are_dead_lettered_and_counted(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    sink = SinkConfig(url="http://127.0.0.1:9/never", max_age_s=0.3)
    lifecycle(store, [sink], 1)
    d = Deliverer(Outbox(store), sink)
    time.sleep(0.4)
    d.step()
    rows = Outbox(store).messages()
    assert {r["status"] for r in rows} == {"dead"} and "max_age_s" in rows[0]["error"] and d.stats.dead == 3


def test_webhook_signs_bodies_and_sends_the_authorization_from_the_environment(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITY_TOKEN", "Bearer s3cret")
    monkeypatch.setenv("CITY_HMAC", "k3y")
    receiver = Receiver().start()
    try:
        store = EventStore(tmp_path / "events.sqlite")
        sink = SinkConfig(url=receiver.url, authorization_env="CITY_TOKEN", hmac_secret_env="CITY_HMAC")
        lifecycle(store, [sink], 1)
        assert Deliverer(Outbox(store), sink).drain(5)
        for request in receiver.requests:
            expected = hmac.new(b"k3y", request["raw"], hashlib.sha256).hexdigest()
            assert request["headers"]["X-Streetwatch-Signature"] == f"sha256={expected}"
            assert request["headers"]["Authorization"] == "Bearer s3cret"
        stored = json.dumps(Outbox(store).sinks()[0].model_dump())
        assert "s3cret" not in stored and "k3y" not in stored  # the database names the variables only
    finally:
        receiver.stop()
    monkeypatch.delenv("CITY_HMAC")
    with pytest.raises(ConfigError, match="CITY_HMAC is not set"):
        DeliveryPool(tmp_path / "events.sqlite", [sink]).start()


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://host/x", "unknown scheme 'ftp'"),
    ("http:///nohost", "has no host"),
    ("mqtt://host:99999/x", "bad port"),
])
def test_bad_sink_urls_are_one_line_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        sinks_from_urls([url])
    assert message in str(e.value) and "\n" not in str(e.value) and e.value.fix


def test_sink_ids_and_stored_urls_hold_no_password() -> None:
    sink = SinkConfig(url="mqtt://city:pa55@broker.example:1883/streetwatch")
    assert "pa55" not in sink.id and "pa55" not in redact_url(sink.url) and "city" not in redact_url(sink.url,
                                                                                                      drop_user=True)
    assert sink.id == SinkConfig(url="mqtt://other:pw@broker.example:1883/streetwatch").id


def test_mqtt_sink_publishes_qos1_per_camera_and_kind_across_a_broker_restart(tmp_path: Path) -> None:
    broker = Broker(tmp_path).start()
    subscriber = Subscriber(broker.port, "city/#")
    store = EventStore(tmp_path / "events.sqlite")
    sink = SinkConfig(url=broker.url)
    lifecycle(store, [sink], 1)
    pool = DeliveryPool(tmp_path / "events.sqlite", [sink]).start()
    try:
        deadline = time.monotonic() + 10
        while len(subscriber.messages) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [t for t, _ in subscriber.messages] == ["city/cam-7/garbage"] * 3
        broker.stop()  # an outage: new messages wait in the outbox
        messages = Messages([sink], CAMERA, None)
        late = event(5)
        store.upsert([late], messages.change(late, "opened"))
        time.sleep(1.0)
        assert Outbox(store).counts()[sink.id]["pending"] == 1
        broker.start()
        counts = pool.finish(20)
        deadline = time.monotonic() + 10
        while len(subscriber.messages) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pool.close()
        subscriber.close()
        broker.stop()
    assert counts[sink.id]["delivered"] == 4
    assert [m["event"]["id"] for _, m in subscriber.messages] == ["ev-0"] * 3 + ["ev-5"]


def test_the_postgresql_outbox_delivers_like_sqlite_through_streetwatch_deliver(tmp_path: Path) -> None:
    import subprocess
    import sys

    from detector.output.store import open_store
    from testkit import REPO, pg

    receiver = Receiver(answer=lambda n: 500 if n < 2 else 200).start()
    try:
        with pg.postgres_server() as url:
            store = open_store(url)
            sink = SinkConfig(url=receiver.url)
            lifecycle(store, [sink], 3)
            lifecycle(store, [sink], 3)  # the same changes again: nothing new queued
            assert len(Outbox(store).messages()) == 9
            run = subprocess.run([sys.executable, "-m", "detector.cli", "deliver", "--db", url], cwd=REPO,
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stderr
            assert f"sink {sink.id}: 9 messages delivered" in run.stdout
            assert Outbox(store).counts() == {sink.id: {"pending": 0, "delivered": 9, "dead": 0}}
            store.close()
    finally:
        receiver.stop()
    got = receiver.accepted()
    assert len(got) == 9 and len({m["message_id"] for m in got}) == 9
    for n in range(3):
        assert [m["type"] for m in got if m["event"]["id"] == f"ev-{n}"] == ["opened", "updated", "closed"]


def cell(code: str, x0: float, name: str) -> dict:
    ring = [[x0, 31.0], [x0 + 0.1, 31.0], [x0 + 0.1, 31.5], [x0, 31.5], [x0, 31.0]]
    return {"type": "Feature", "properties": {"code": code, "name": name, "department": f"{name}城管中队"},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def test_work_orders_take_the_grid_cell_of_the_camera_and_the_citys_category_codes(tmp_path: Path) -> None:
    (tmp_path / "grid.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        cell("310101-01", 121.30, "外滩"), cell("310101-02", 121.40, "人民广场")]}, ensure_ascii=False))
    (tmp_path / "codes.yaml").write_text("categories:\n  '01-03': {code: SH-0103, name: 乱堆物料}\n")
    camera = CAMERA.model_dump(mode="json", exclude_none=True)
    camera["camera"]["location"].pop("grid_code")
    path = tmp_path / "cam.yaml"
    import yaml

    path.write_text(yaml.safe_dump({**camera, "grid": "grid.geojson", "categories": "codes.yaml"},
                                   allow_unicode=True))
    config = load_camera(path)
    body = Messages([SinkConfig(url="http://127.0.0.1:1/x")], config, None).change(event(1), "opened")[0]["body"]
    order = json.loads(body)["work_order"]
    assert order["location"]["grid_code"] == "310101-02" and order["location"]["department"] == "人民广场城管中队"
    assert order["category"] == {"code": "SH-0103", "name": "乱堆物料"} and "乱堆物料" in order["title"]["zh"]


@pytest.mark.parametrize(("grid", "message"), [
    ("{not json", "not JSON"),
    (json.dumps({"type": "FeatureCollection", "features": []}), "non-empty GeoJSON FeatureCollection"),
    (json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "A"},
     "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}}]}),
     "not a valid polygon: Self-intersection"),
    (json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
     "geometry": None}]}), "no properties.code"),
])
def test_a_malformed_grid_file_is_a_one_line_error_naming_it(tmp_path: Path, grid: str, message: str) -> None:
    (tmp_path / "grid.geojson").write_text(grid)
    path = tmp_path / "cam.yaml"
    path.write_text("camera: {id: c1, timezone: Asia/Shanghai}\ngrid: grid.geojson\n")
    with pytest.raises(ConfigError) as e:
        load_camera(path)
    assert message in str(e.value) and "grid.geojson" in str(e.value) and "\n" not in str(e.value)


def test_a_bad_category_dictionary_is_refused(tmp_path: Path) -> None:
    (tmp_path / "codes.yaml").write_text("categories:\n  '99-99': {code: X, name: Y}\n")
    path = tmp_path / "cam.yaml"
    path.write_text("camera: {id: c1, timezone: Asia/Shanghai}\ncategories: codes.yaml\n")
    with pytest.raises(ConfigError, match="unknown category '99-99'"):
        load_camera(path)


def test_a_rejected_token_or_wrong_path_is_retried_not_dead_lettered(tmp_path: Path) -> None:
    """401/403/404 say nothing about the message: every message would get them, so nothing is given up."""
    for code in (401, 404, 301):
        receiver = Receiver(answer=lambda n, code=code: code if n < 2 else 200).start()
        try:
            store = EventStore(tmp_path / f"{code}.sqlite")
            sink = SinkConfig(url=receiver.url)
            lifecycle(store, [sink], 1)
            d = Deliverer(Outbox(store), sink)
            assert d.drain(10) and d.stats.dead == 0 and d.stats.retried == 2
            assert {r["status"] for r in Outbox(store).messages()} == {"delivered"}
        finally:
            receiver.stop()


def test_a_deliverer_sends_only_its_own_cameras_messages(tmp_path: Path) -> None:
    receiver = Receiver().start()
    try:
        store = EventStore(tmp_path / "events.sqlite")
        sink = SinkConfig(url=receiver.url)
        lifecycle(store, [sink], 1)  # cam-7
        other = CameraConfig.model_validate({"camera": {"id": "cam-8", "timezone": "UTC"}})
        e = replace(event(9), camera_id="cam-8")
        store.upsert([e], Messages([sink], other, None).change(e, "opened"))
        mine = Deliverer(Outbox(store), sink, cameras=["cam-7"])
        assert mine.drain(5) and mine.stats.delivered == 3
        assert {m["event"]["camera_id"] for m in receiver.accepted()} == {"cam-7"}
        assert Outbox(store).pending_count(sink.id) == 1  # cam-8's, for the process that watches it
    finally:
        receiver.stop()


def test_camera_leases_go_to_one_holder_until_released_expired_or_dead(tmp_path: Path) -> None:
    store, other = EventStore(tmp_path / "events.sqlite"), EventStore(tmp_path / "events.sqlite")
    assert store.take_leases(["c1", "c2"], "a", 30) == {}
    assert other.take_leases(["c2", "c3"], "b", 30) == {"c2": "a"}
    assert other.take_leases(["c3"], "b", 30) == {}  # all or none: c3 was not taken by the refused call before
    assert store.take_leases(["c1", "c2"], "a", 30) == {}  # renewal
    assert other.take_leases(["c1"], "b", 30, dead=lambda h: h == "a") == {}  # a's process is gone
    store.release_leases("a")
    assert other.take_leases(["c2"], "b", 30) == {}
    assert store.take_leases(["c9"], "a", 0.01) == {}
    time.sleep(0.05)
    assert other.take_leases(["c9"], "b", 30) == {}  # expired


def test_two_different_sinks_under_one_name_are_refused() -> None:
    from detector.config.sinks import merge_sinks

    a, b = SinkConfig(url="http://a/hook", name="city"), SinkConfig(url="http://b/hook", name="city")
    assert merge_sinks([a], [a]) == [a]
    with pytest.raises(ConfigError, match="two different sinks share the id 'city'"):
        merge_sinks([a], [b])
    with pytest.raises(ValueError, match="apply to MQTT sinks"):
        SinkConfig(url="http://a/x", username_env="U")


def test_an_attempt_has_one_deadline_however_slowly_the_receiver_answers(tmp_path: Path) -> None:
    """A receiver that drips its answer a byte a second (each read well inside any per-read timeout) holds an
    attempt only `timeout_s`; while it hangs, the sink shows `stuck` with what is pending; stop() ends it at once."""
    import threading
    import time

    receiver = Receiver(drip_s=1.0).start()
    try:
        store = EventStore(tmp_path / "events.sqlite")
        sink = SinkConfig(url=receiver.url, timeout_s=3)
        lifecycle(store, [sink], 1)
        deliverer = Deliverer(Outbox(store), sink)
        began = time.monotonic()
        assert not deliverer.drain(2.0)  # one attempt, cut at 3 s
        assert 2.5 < time.monotonic() - began < 5.0 and deliverer.stats.retried == 1
        assert "no answer within 3 s" in (deliverer.stats.last_error or "")
        slow = Deliverer(Outbox(EventStore(tmp_path / "events.sqlite")), sink.model_copy(update={"timeout_s": 60}))
        thread = threading.Thread(target=slow.run, kwargs={"poll_s": 0.2}, daemon=True)
        thread.start()
        time.sleep(6.5)
        health = slow.stats.as_dict()
        assert health["state"] == "stuck" and health["in_flight_s"] > 5 and health["pending"] == 3
        stopped = time.monotonic()
        slow.stop()
        thread.join(timeout=5)
        assert not thread.is_alive() and time.monotonic() - stopped < 2.0
    finally:
        receiver.stop()


def test_a_receivers_answer_is_never_read_past_its_status(tmp_path: Path) -> None:
    """A 2xx followed by 600 MB of body: delivered, and only the status was read."""
    receiver = Receiver(body_bytes=600 << 20).start()
    try:
        store = EventStore(tmp_path / "events.sqlite")
        sink = SinkConfig(url=receiver.url, timeout_s=10)
        lifecycle(store, [sink], 1)
        deliverer = Deliverer(Outbox(store), sink)
        assert deliverer.drain(20) and deliverer.stats.delivered == 3
        assert receiver.sent_body < 64 << 20  # the socket closed long before the body was through
    finally:
        receiver.stop()
