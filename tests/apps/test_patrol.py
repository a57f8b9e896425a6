"""`streetwatch patrol` on the composed drive-by (three passes, the real model) and on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.cli import main
from testkit.driveby import DEMO_CAMERA, Drive, compose, judge
from testkit.receiver import Receiver

SMALL = DEMO_CAMERA.__class__(**{**DEMO_CAMERA.__dict__, "width": 960, "height": 540})


@pytest.fixture(scope="module")
def drive_by(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> tuple[Path, dict]:
    media = tmp_path_factory.mktemp("drive-by")
    return media, compose(media, shared, SMALL, Drive(fps=10))


def test_three_passes_give_one_event_per_object_where_it_is_and_clear_the_removed_garbage(
        drive_by: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Two passes in one run, the third in a later run on the same store (as a vehicle uploads its drives):
    places carry over, the third pass updates the bikes and clears the garbage."""
    media, truth = drive_by
    receiver = Receiver().start()
    base = ["--track", str(media / "track.gpx"), "--camera", str(media / "patrol.yaml"), "--out", str(tmp_path),
            "--json", "--sink", receiver.url]
    try:
        assert main(["patrol", str(media / "pass-1.mp4"), str(media / "pass-2.mp4"), *base]) == 0
        after_two = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert main(["patrol", str(media / "pass-3.mp4"), *base]) == 0
        bodies = receiver.accepted()
    finally:
        receiver.stop()
    assert len(after_two) == len(truth["objects"]) and all(e["status"] == "open" for e in after_two)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    report = judge(events, truth)
    assert report["one_event_per_object"] and report["false_events"] == [], report
    assert report["garbage_cleared_on_pass_3"] and report["present_ones_stay_open"], report
    assert report["median_error_m"] <= 5.0 and report["worst_error_m"] <= 10.0, report
    features = json.loads((tmp_path / "events.geojson").read_text())["features"]
    assert len(features) == len(truth["objects"])
    lon, lat = features[0]["geometry"]["coordinates"]
    assert (lat, lon) == (features[0]["properties"]["location"]["lat"], features[0]["properties"]["location"]["lon"])
    assert all((tmp_path / e["snapshot"]).is_file() and e["vehicle"]["speed_mps"] > 4 for e in events)
    orders = [b["work_order"] for b in bodies]  # the work orders go where the objects are, not the car
    assert {b["type"] for b in bodies} >= {"opened", "closed"} and all(o["location"]["accuracy_m"] for o in orders)
    assert {(o["location"]["lat"], o["location"]["lon"]) for o in orders} >= {
        (e["location"]["lat"], e["location"]["lon"]) for e in events if e["status"] == "closed"}
    capsys.readouterr()
    assert main(["patrol", str(media / "pass-2.mp4"), *base]) == 1  # given again: not counted twice
    assert "already counted in this store" in capsys.readouterr().err  # the summary, beside --json lines
    assert [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()] == events


def _patrol(media: Path, tmp_path: Path, *extra: str) -> int:
    return main(["patrol", str(media / "pass-1.mp4"), "--camera", str(media / "patrol.yaml"),
                 "--out", str(tmp_path / "out"), *extra])


def test_a_track_of_another_day_is_refused_naming_the_file_and_the_fix(drive_by, tmp_path, capsys) -> None:
    media, _ = drive_by
    text = (media / "track.gpx").read_text().replace("2026-12-01T", "2026-11-01T")
    (tmp_path / "old.gpx").write_text(text)
    assert _patrol(media, tmp_path, "--track", str(tmp_path / "old.gpx")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "old.gpx" in err[0] and "does not overlap" in err[0] and "--track-offset-s" in err[0]
    assert not (tmp_path / "out" / "events.sqlite").exists()


@pytest.mark.parametrize("content, message", [
    ('<?xml version="1.0"?><gpx version="1.1" creator="x"></gpx>', "0 fixes"),
    ("time,lat,lon\n2026-12-01T01:00:00+00:00,nan,121.4\n2026-12-01T01:00:01+00:00,31.2,121.4\n", "out of range"),
])
def test_broken_tracks_are_one_line_errors(drive_by, tmp_path, capsys, content: str, message: str) -> None:
    media, _ = drive_by
    suffix = ".gpx" if content.startswith("<") else ".csv"
    (tmp_path / f"t{suffix}").write_text(content)
    assert _patrol(media, tmp_path, "--track", str(tmp_path / f"t{suffix}")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and f"t{suffix}" in err[0]


def test_a_fence_file_in_lat_lon_order_is_caught(drive_by, tmp_path, capsys) -> None:
    media, truth = drive_by
    lat, lon = truth["objects"][0]["lat"], truth["objects"][0]["lon"]
    ring = [[lat - 1e-4, lon - 1e-4], [lat - 1e-4, lon + 1e-4], [lat + 1e-4, lon + 1e-4], [lat - 1e-4, lon - 1e-4]]
    (tmp_path / "fences.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "market", "type": "allowed"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    (tmp_path / "patrol.yaml").write_text((media / "patrol.yaml").read_text() + "fences: fences.geojson\n")
    code = main(["patrol", str(media / "pass-1.mp4"), "--camera", str(tmp_path / "patrol.yaml"),
                 "--track", str(media / "track.gpx"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "fences.geojson" in err[0] and "[lon, lat]" in err[0]
