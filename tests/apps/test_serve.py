"""The review desk over HTTP (a real server, httpx): pages, the API, reviews that persist and survive a
re-scan, `cancelled` to the sinks, `review export`, and what it refuses: no token, no CSRF, paths."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import pytest

from detector.apps.scan import scan
from detector.apps.serve.app import create_app
from detector.apps.serve.run import desk_for
from detector.cli import main
from detector.config.camera import load_camera
from detector.output.store import EventStore
from testkit.desk import served
from testkit.receiver import Receiver
from testkit.rtsp import REPO

TOKEN = "a-long-enough-review-token-0123456789"


@pytest.fixture
def out(demo_bikes_scanned: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(demo_bikes_scanned, copy)
    return copy


def _csrf(page: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_an_open_desk_on_loopback_shows_events_and_keeps_reviews_across_a_rescan(out: Path, videos,
                                                                                coco_card) -> None:
    with served(create_app(desk_for(out, None, None))) as url, httpx.Client(base_url=url) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.text.count('class="event"') == 2
        events = client.get("/api/events").json()["events"]
        first = events[0]["id"]
        assert client.post(f"/api/events/{first}/review", json={"verdict": "confirmed"}).status_code == 403
        ok = client.post(f"/api/events/{first}/review", json={"verdict": "confirmed"},
                         headers={"X-CSRF-Token": _csrf(page.text)})
        assert ok.status_code == 200 and ok.json()["reviewer"] == "local"
        bad = client.post(f"/api/events/{first}/review", json={"verdict": "rejected"},
                          headers={"X-CSRF-Token": _csrf(page.text)})
        assert bad.status_code == 422 and "reason" in bad.json()["detail"]
        for path in (f"/events/{first}", "/map", "/dashboard", "/docs", f"/api/events/{first}/snapshot.jpg",
                     f"/api/events/{first}/clean.jpg", f"/api/events/{first}/crop.jpg"):
            assert client.get(path).status_code == 200, path
    scan([videos["bikes_90s"]], load_camera(REPO / "zones" / "demo-bikes.yaml"), coco_card, out, fps=1.0)
    with served(create_app(desk_for(out, None, None))) as url:
        again = httpx.get(f"{url}/api/events/{first}").json()
    assert again["review"]["verdict"] == "confirmed"  # same input, same ids: the verdict stays


def test_pages_lists_filters_and_cursors(out: Path) -> None:
    from testkit.desk import multiply

    store = EventStore(out / "events.sqlite")
    multiply(store, 120)
    store.close()
    with served(create_app(desk_for(out, None, None))) as url, httpx.Client(base_url=url) as client:
        seen, cursor = [], None
        while True:
            body = client.get("/api/events", params={"limit": 50, **({"cursor": cursor} if cursor else {})}).json()
            seen += [e["id"] for e in body["events"]]
            cursor = body["next"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 122
        times = [e["first_seen"] for e in client.get("/api/events", params={"limit": 200}).json()["events"]]
        assert times == sorted(times, reverse=True)
        assert client.get("/api/events", params={"kind": "garbage"}).json()["events"] == []
        assert client.get("/api/events", params={"cursor": "not-a-cursor"}).status_code == 400


def test_a_token_desk_refuses_strangers_and_csrf_less_cookie_posts(out: Path) -> None:
    with served(create_app(desk_for(out, None, TOKEN))) as url, httpx.Client(base_url=url) as client:
        assert client.get("/api/events").status_code == 401
        assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")
        first = client.get("/api/events", headers={"Authorization": f"Bearer {TOKEN}"}).json()["events"][0]["id"]
        assert client.get(f"/api/events/{first}/crop.jpg", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.post("/login", data={"token": "wrong", "name": "ann"}).status_code == 401
        login = client.post("/login", data={"token": TOKEN, "name": "ann", "next": "https://evil.example/"},
                            follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/"  # no open redirect
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        page = client.get("/")
        assert page.status_code == 200 and TOKEN not in page.text  # credentials never in pages
        review = {"verdict": "rejected", "reason": "allowed here"}
        assert client.post(f"/api/events/{first}/review", json=review).status_code == 403
        assert client.post(f"/api/events/{first}/review", json=review, headers={"X-CSRF-Token": "x"}).status_code == 403
        done = client.post(f"/api/events/{first}/review", json=review, headers={"X-CSRF-Token": _csrf(page.text)})
        assert done.status_code == 200 and done.json()["reviewer"] == "ann"
        api = httpx.post(f"{url}/api/events/{first}/review", json={"verdict": "confirmed"},
                         headers={"Authorization": f"Bearer {TOKEN}", "X-Reviewer": "script"})
        assert api.status_code == 200 and api.json()["reviewer"] == "script"  # bearer: no cookie, no CSRF


def test_files_are_served_by_event_id_only(out: Path) -> None:
    store = EventStore(out / "events.sqlite")
    [event] = [e for e in store.events()][:1]
    (out.parent / "secret.jpg").write_bytes(b"\xff\xd8 not for the desk")
    store.db.exec_driver_sql(f"UPDATE events SET crop = '../secret.jpg' WHERE id = '{event['id']}'")
    store.db.commit()
    store.close()
    with served(create_app(desk_for(out, None, None))) as url, httpx.Client(base_url=url) as client:
        assert client.get(f"/api/events/{event['id']}/crop.jpg").status_code == 404  # outside the folder
        for path in ("/api/events/..%2F..%2Fetc%2Fpasswd/snapshot.jpg", "/api/events/x/..%2Fevents.sqlite",
                     "/static/..%2F..%2Fapp.py", f"/api/events/{event['id']}/events.sqlite"):
            response = client.get(path)
            assert response.status_code in (404, 422), path
            assert b"SQLite" not in response.content and b"import" not in response.content


def test_serving_beyond_loopback_without_a_token_is_refused(out: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["serve", "--out", str(out), "--host", "0.0.0.0"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "0.0.0.0" in line and "--token-file" in line
    short = out / "token"
    short.write_text("short")
    assert main(["serve", "--out", str(out), "--host", "0.0.0.0", "--token-file", str(short)]) == 2
    assert "shorter than 16" in capsys.readouterr().err


def test_each_change_of_verdict_reaches_the_sinks_in_order(tmp_path: Path, videos, coco_card) -> None:
    """Rejected (the work order is cancelled), then confirmed after all (reinstated), then rejected again."""
    receiver = Receiver().start()
    try:
        out = tmp_path / "out"
        camera = load_camera(REPO / "zones" / "demo-bikes.yaml")
        from detector.config.sinks import sinks_from_urls

        scan([videos["bikes_90s"]], camera, coco_card, out, fps=1.0, sinks=sinks_from_urls([receiver.url], []))
        event_id = receiver.accepted()[0]["event"]["id"]
        verdicts = [{"verdict": "rejected", "reason": "not a violation"}, {"verdict": "confirmed"},
                    {"verdict": "confirmed"}, {"verdict": "rejected", "reason": "duplicate"}]
        with served(create_app(desk_for(out, None, TOKEN))) as url:
            for verdict in verdicts:
                answer = httpx.post(f"{url}/api/events/{event_id}/review", json=verdict,
                                    headers={"Authorization": f"Bearer {TOKEN}"})
                assert answer.status_code == 200
        assert main(["deliver", str(out), "--sink", receiver.url, "--timeout", "20"]) == 0
        told = [b for b in receiver.accepted() if b["type"] in ("cancelled", "reinstated")]
        assert [b["type"] for b in told] == ["cancelled", "reinstated", "cancelled"]  # confirmed twice: once
        assert all(b["event"]["id"] == event_id and b["work_order"]["category"]["code"] == "05-06" for b in told)
        assert [b["review"]["reason"] for b in told] == ["not a violation", None, "duplicate"]
        assert len({b["message_id"] for b in told}) == 3
    finally:
        receiver.stop()


def test_review_export_writes_a_dataset_build_dataset_takes(out: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    with served(create_app(desk_for(out, None, TOKEN))) as url:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        first, second = [e["id"] for e in httpx.get(f"{url}/api/events", headers=auth).json()["events"]]
        httpx.post(f"{url}/api/events/{first}/review", headers=auth, json={"verdict": "confirmed"})
        httpx.post(f"{url}/api/events/{second}/review", headers=auth,
                   json={"verdict": "rejected", "reason": "not a violation"})
    dataset = tmp_path / "reviewed"
    assert main(["review", "export", "--events", str(out), "--out", str(dataset)]) == 0
    table = capsys.readouterr().out
    assert "confirmed" in table and "rejected" in table and re.search(r"total\s+2", table)
    # Both bikes were at their best in one frame: one image, the confirmed box on it, the wrong one not.
    [label] = dataset.glob("labels/*/*.txt")
    [line] = [ln.split() for ln in label.read_text().splitlines()]
    assert line[0] == "1" and all(0 < float(v) <= 1 for v in line[1:])  # class 1 = bike, a normalised box
    built = tmp_path / "built"
    import sys

    from scripts.build_dataset import main as build
    argv, sys.argv = sys.argv, ["build_dataset.py", "--out", str(built), "--source", str(dataset), "--no-pseudo"]
    try:
        assert build() == 0
    finally:
        sys.argv = argv
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest  # the export is a source like any YOLO dataset


def test_a_watch_process_serves_the_desk_with_its_health_on_its_http_port(tmp_path: Path, videos, coco_card,
                                                                          detector) -> None:
    import threading

    from detector.apps.watch.worker import Worker
    from detector.config.watch import WatchConfig
    from testkit.receiver import free_port
    from testkit.worker import wait_for

    port = free_port()
    camera = {"camera": {"id": "cam-desk", "timezone": "Europe/Amsterdam"}, "source": str(videos["bikes_20s"]),
              "rules": {"bike": {"min_dwell_s": 2}}}
    import yaml

    from detector.config.watch import load_watch

    path = tmp_path / "watch.yaml"
    path.write_text(yaml.safe_dump({"out": str(tmp_path / "out"), "http": {"port": port, "review": True},
                                    "cameras": [camera]}))
    config = load_watch(path)
    assert isinstance(config, WatchConfig)
    workers: list[Worker] = []

    def run() -> None:
        workers.append(Worker(config, coco_card, config_path=path, detector=detector))
        workers[0].run()

    thread = threading.Thread(target=run)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        def get(path: str) -> httpx.Response | None:
            try:
                return httpx.get(url + path, timeout=2)
            except httpx.HTTPError:
                return None

        health = wait_for(lambda: (r := get("/healthz")) is not None and r.status_code == 200 and r, 60, "/healthz")
        assert health.json()["cameras"]["cam-desk"]["state"] == "streaming"
        assert b"streetwatch_frames_total" in get("/metrics").content  # type: ignore[union-attr]
        wait_for(lambda: get("/api/events").json()["events"], 60, "an event on the desk")  # type: ignore[union-attr]
        dashboard = get("/dashboard")
        assert dashboard is not None and "cam-desk" in dashboard.text and "streaming" in dashboard.text
        live = get("/api/cameras/cam-desk/frame.jpg")  # the camera page's live picture: the latest frame
        assert live is not None and live.status_code == 200 and live.content[:2] == b"\xff\xd8"
        with httpx.Client(base_url=url, timeout=30) as browser:  # as the page does: its session cookie, then posts
            assert browser.get("/cameras/cam-desk").status_code == 200
            seen = browser.post("/api/cameras/cam-desk/preview", json={"zones": [], "uri": None}).json()
        assert seen["problems"] == {} and any(d["kind"] == "bike" and d["violation"] for d in seen["detections"])
    finally:
        wait_for(lambda: workers, 10, "the worker")
        workers[0].stop()
        thread.join(timeout=20)


def test_an_open_desk_answers_only_to_its_own_name_and_forged_cookies_are_just_strangers(out: Path) -> None:
    with served(create_app(desk_for(out, None, None))) as url, httpx.Client(base_url=url) as client:
        assert client.get("/api/events", headers={"Host": "evil.example:8080"}).status_code == 400  # DNS rebinding
        odd = "streetwatch_session=a.\u00e9t\u00e9".encode("latin-1")
        forged = client.get("/api/events", headers={"Cookie": odd})
        assert forged.status_code == 200  # read as no session: an open desk lets anyone at the machine read
        post = client.post("/api/events/x/review", json={"verdict": "confirmed"},
                           headers={"Cookie": "streetwatch_session=a.\u00e9".encode("latin-1")})
        assert post.status_code == 401
    with served(create_app(desk_for(out, None, TOKEN))) as url:
        assert httpx.get(f"{url}/events/nope", follow_redirects=False).status_code == 303  # login before lookup


def test_the_desk_on_postgresql_pages_reviews_and_keeps_who_and_when(out: Path) -> None:
    from detector.camera.resume import event_from_row
    from detector.output.store import open_store
    from testkit import pg
    from testkit.desk import multiply

    local = EventStore(out / "events.sqlite")
    real = [event_from_row(r) for r in local.events()]
    local.close()
    with pg.postgres_server() as url:
        store = open_store(url)
        store.upsert(real)
        multiply(store, 60)
        store.close()
        with served(create_app(desk_for(out, url, TOKEN))) as base, httpx.Client(base_url=base) as client:
            auth = {"Authorization": f"Bearer {TOKEN}", "X-Reviewer": "ann"}
            first = client.get("/api/events", headers=auth, params={"limit": 50}).json()
            second = client.get("/api/events", headers=auth, params={"cursor": first["next"]}).json()
            assert len(first["events"]) + len(second["events"]) == 62 and second["next"] is None
            target = second["events"][-1]["id"]
            assert client.get(f"/api/events/{target}/crop.jpg", headers=auth).status_code == 200  # files from --out
            client.post(f"/api/events/{target}/review", headers=auth,
                        json={"verdict": "rejected", "reason": "not a violation"})
            review = client.get(f"/api/events/{target}", headers=auth).json()["review"]
            listed = client.get("/api/events", headers=auth, params={"review": "rejected"}).json()["events"]
    assert review["reviewer"] == "ann" and review["reason"] == "not a violation" and review["reviewed_at"]
    assert [e["id"] for e in listed] == [target]


def test_pages_never_wait_for_a_writer_and_a_busy_store_answers_503(out: Path) -> None:
    """Another process holds the write lock (a scan committing): every page still loads at once (reads never take
    the lock, and a new server thread's store no longer runs the schema step under it); a review, which must
    write, answers 503 with Retry-After instead of hanging and failing with a traceback."""
    import sqlite3
    import time

    writer = sqlite3.connect(out / "events.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with served(create_app(desk_for(out, None, TOKEN))) as url:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            began = time.monotonic()
            pages = [httpx.get(f"{url}/api/events", headers=auth, timeout=40) for _ in range(12)]
            assert [p.status_code for p in pages] == [200] * 12 and time.monotonic() - began < 5
            event_id = pages[0].json()["events"][0]["id"]
            answer = httpx.post(f"{url}/api/events/{event_id}/review", headers=auth, json={"verdict": "confirmed"},
                                timeout=40)
            assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
            assert "busy" in answer.text and "Traceback" not in answer.text
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_running_watch_applies_zones_saved_in_the_desk_within_seconds(tmp_path: Path, shared: Path) -> None:
    """A desk given the watch file (another process) saves a camera's zones; the running watch notices the file
    changed and applies it as a SIGHUP would, without a restart; the file keeps its comments."""
    import time

    import yaml

    from testkit.rtsp import free_port
    from testkit.worker import WorkerProcess, wait_for

    port = free_port()
    config = {"out": "out", "model": str(REPO / "detector" / "cards" / "coco.yaml"), "http": {"port": port},
              "cameras": [{"camera": {"id": "cam-1", "timezone": "UTC"}, "rules": {"bike": {"min_dwell_s": 4}},
                           "source": str(shared / "videos" / "vtest.avi")}]}
    path = tmp_path / "watch.yaml"
    path.write_text("# the plaza camera, watched for tests\n" + yaml.safe_dump(config, sort_keys=False))
    worker = WorkerProcess(path, tmp_path / "out", port, tmp_path / "worker.log")
    try:
        worker.start()
        wait_for(lambda: worker.metric("streetwatch_frames_processed_total", "cam-1") >= 3, 60, "frames processed")
        assert worker.metric("streetwatch_reloads_total", None) == 0
        desk = desk_for(tmp_path / "out", None, TOKEN, cameras=[path])
        zones = [{"id": "fountain", "type": "ignore", "polygon": [[0.4, 0.3], [0.6, 0.3], [0.6, 0.6]]}]
        with served(create_app(desk)) as url:
            saved = httpx.put(f"{url}/api/cameras/cam-1/zones", json={"zones": zones},
                              headers={"Authorization": f"Bearer {TOKEN}"})
        assert saved.status_code == 200, saved.text
        began = time.monotonic()
        wait_for(lambda: worker.metric("streetwatch_reloads_total", None) == 1, 15, "the saved zones applied")
        assert time.monotonic() - began < 10
        assert "reloaded zones and rules" in (tmp_path / "worker.log").read_text()
        assert path.read_text().startswith("# the plaza camera") and "fountain" in path.read_text()
        code, _ = worker.terminate()
        assert code == 0
    finally:
        worker.kill()


def test_the_dashboard_shows_the_pool_cameras_per_machine_and_those_nobody_watches(out: Path) -> None:
    import time

    from detector.output.pool import PoolRows

    store = EventStore(out / "events.sqlite")
    try:
        rows = PoolRows(store)
        rows.publish({c: {"camera": {"id": c, "timezone": "UTC"}, "source": f"rtsp://u:pw@cam/{c}"}
                      for c in ("p1", "p2")})
        rows.beat("host-a:12:ab", 16, time.time(), 30)
        assert store.claim_leases(["p1"], "host-a:12:ab", 30) == {"p1"}
    finally:
        store.close()
    with served(create_app(desk_for(out, None, None))) as url, httpx.Client(base_url=url) as client:
        page = client.get("/dashboard").text
        assert "Watched by nobody: p2" in page
        assert re.search(r"host-a:12:ab</td><td>alive</td><td>16</td><td>[0-9.]+ s ago</td><td>1: p1<", page)
        assert "pw" not in page and 'data-pool-remove="p2"' in page
        csrf = {"X-CSRF-Token": _csrf(page)}
        entry = {"camera": {"id": "p3", "timezone": "UTC"}, "source": "rtsp://cam/p3",
                 "zones": [{"id": "bay", "type": "allowed", "kinds": ["bike"], "polygon": [[0, 0], [1, 0], [1, 1]]}]}
        assert client.put("/api/pool/cameras/p3", json=entry).status_code == 403  # no CSRF token
        assert client.put("/api/pool/cameras/p3", json=entry, headers=csrf).json()["added"] == ["p3"]
        bow_tie = {**entry, "zones": [{**entry["zones"][0], "polygon": [[0, 0], [1, 1], [1, 0], [0, 1]]}]}
        refused = client.put("/api/pool/cameras/p3", json=bow_tie, headers=csrf)
        assert refused.status_code == 422 and "bay" in refused.json()["detail"]
        relative = client.put("/api/pool/cameras/p3", json={**entry, "source": "clip.mp4"}, headers=csrf)
        assert relative.status_code == 422 and "absolute path" in relative.json()["detail"]
        assert client.put("/api/pool/cameras/p9", json=entry, headers=csrf).status_code == 422  # id mismatch
        assert client.delete("/api/pool/cameras/p2", headers=csrf).json() == {"removed": ["p2"]}
        assert client.delete("/api/pool/cameras/p2", headers=csrf).status_code == 404
        state = client.get("/api/pool").json()
        assert sorted(state["cameras"]) == ["p1", "p3"] and state["unheld"] == ["p3"]


def test_a_rejection_is_listed_as_holding_its_object_back_until_undone(out: Path) -> None:
    with served(create_app(desk_for(out, None, TOKEN))) as url, httpx.Client(base_url=url) as client:
        client.post("/login", data={"token": TOKEN, "name": "ann"})
        page = client.get("/")
        csrf = {"X-CSRF-Token": _csrf(page.text)}
        first, second = (e["id"] for e in client.get("/api/events").json()["events"])
        done = client.post(f"/api/events/{first}/review", json={"verdict": "rejected", "reason": "not a violation"},
                           headers=csrf).json()
        assert done["sticks"] is True
        dup = client.post(f"/api/events/{second}/review", json={"verdict": "rejected", "reason": "duplicate"},
                          headers=csrf).json()
        assert dup["sticks"] is False and "duplicate" in dup["why_not"]
        [held] = client.get("/api/suppressions").json()["suppressions"]
        assert held["id"] == first and held["reviewer"] == "ann" and held["tracks"] == 0
        listing = client.get("/suppressions")
        assert listing.status_code == 200 and f'data-undo="{first}"' in listing.text
        dashboard = client.get("/dashboard").text
        assert f'/suppressions?camera={held["camera_id"]}">1</a>' in dashboard
        assert client.post(f"/api/suppressions/{first}/undo").status_code == 403  # no CSRF token
        assert httpx.post(f"{url}/api/suppressions/{first}/undo").status_code == 401  # a stranger
        assert client.post(f"/api/suppressions/{first}/undo", headers=csrf).json() == {"lifted": first}
        assert client.post(f"/api/suppressions/{first}/undo", headers=csrf).status_code == 404  # not in force
        assert client.get("/api/suppressions").json()["suppressions"] == []
        [lifted] = client.get("/api/suppressions", params={"lifted": "true"}).json()["suppressions"]
        assert lifted["lifted_by"] == "ann"
        assert "No rejection holds anything back" in client.get("/suppressions").text


def test_missed_violations_and_set_right_boxes_go_into_the_export(out: Path, tmp_path: Path) -> None:
    camera_file = REPO / "zones" / "demo-bikes.yaml"  # read only: no zone is saved here
    with served(create_app(desk_for(out, None, TOKEN, cameras=[camera_file]))) as url:
        auth = {"Authorization": f"Bearer {TOKEN}", "X-Reviewer": "ann"}
        api = httpx.Client(base_url=url, headers=auth)
        [video] = api.get("/api/cameras/demo-bikes").json()["sources"]
        missed = {"uri": video["uri"], "t": 10, "boxes": [{"kind": "garbage", "box": [700, 380, 900, 620]},
                                                          {"kind": "bike", "box": [20, 20, 80, 90]}]}
        marks = api.post("/api/cameras/demo-bikes/marks", json=missed).json()["marks"]
        assert [m["kind"] for m in marks] == ["garbage", "bike"] and len({m["image"] for m in marks}) == 1
        assert (out / marks[0]["image"]).is_file() and marks[0]["width"] == 1280 and marks[0]["reviewer"] == "ann"
        tiny = {**missed, "boxes": [{"kind": "bike", "box": [5, 5, 6, 6]}]}
        assert "under 4 px" in api.post("/api/cameras/demo-bikes/marks", json=tiny).json()["detail"]
        assert api.post("/api/cameras/demo-bikes/marks",
                        json={**missed, "boxes": [{"kind": "dragon", "box": [1, 1, 50, 50]}]}).status_code == 422
        assert api.post("/api/cameras/demo-bikes/marks", json={**missed, "uri": "/etc/passwd"}).status_code == 404
        assert api.delete(f"/api/marks/{marks[1]['id']}").json() == {"removed": marks[1]["id"]}
        assert [m["id"] for m in api.get("/api/cameras/demo-bikes/marks").json()["marks"]] == [marks[0]["id"]]
        first = api.get("/api/events").json()["events"][0]
        fixed = api.put(f"/api/events/{first['id']}/box", json={"kind": "bike", "box": [100, 50, 400, 600]}).json()
        assert fixed["mark"]["bbox"] == [100, 50, 400, 600] and fixed["review"]["verdict"] == "confirmed"
        assert "box set right by ann" in api.get(f"/events/{first['id']}").text
        assert httpx.put(f"{url}/api/events/{first['id']}/box", json={"kind": "bike", "box": [1, 1, 9, 9]}
                         ).status_code == 401
    dataset = tmp_path / "reviewed"
    assert main(["review", "export", "--events", str(out), "--out", str(dataset)]) == 0
    labels = {p.name: [ln.split() for ln in p.read_text().splitlines()] for p in dataset.glob("labels/*/*.txt")}
    [drawn] = [v for k, v in labels.items() if k.startswith("m")]
    assert [row[0] for row in drawn] == ["0"]  # the missed pile, class 0 = garbage; the removed mark is not there
    assert [float(v) for v in drawn[0][1:]] == pytest.approx([800 / 1280, 500 / 640, 200 / 1280, 240 / 640], abs=1e-5)
    [event_label] = [v for k, v in labels.items() if not k.startswith("m")]
    assert [float(v) for v in event_label[0][1:]] == pytest.approx([250 / 1280, 325 / 640, 300 / 1280, 550 / 640],
                                                                   abs=1e-5)  # the corrected box, exactly
