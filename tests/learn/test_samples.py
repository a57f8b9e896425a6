"""What a site teaches: photos from labelled folders and review exports, split by camera and day."""

import shutil
from pathlib import Path

import pytest

from detector.errors import ConfigError
from detector.learn.samples import Photo, export_photos, labelled_photos, split_groups


def _photos(groups: dict[str, int]) -> list[Photo]:
    return [Photo(Path(f"{g}-{i}.jpg"), group=g) for g, n in groups.items() for i in range(n)]


def test_the_latest_days_of_each_camera_are_held_out_and_no_day_is_split() -> None:
    photos = _photos({"a|2026-12-01": 3, "a|2026-12-02": 2, "a|2026-12-03": 4, "a|2026-12-04": 1,
                      "b|2026-12-01": 2, "b|2026-12-02": 2, "c|2026-12-05": 5})
    train, holdout = split_groups(photos, 0.25)
    assert {p.group for p in holdout} == {"a|2026-12-04", "b|2026-12-02"}  # one day of camera c only: all trains
    assert {p.group for p in train} & {p.group for p in holdout} == set()
    assert len(train) + len(holdout) == len(photos)
    _, half = split_groups(photos, 0.5)
    assert {p.group for p in half} == {"a|2026-12-03", "a|2026-12-04", "b|2026-12-02"}


def test_labelled_photos_take_camera_and_day_columns_and_leave_unknowns_open(tmp_path: Path, shared: Path) -> None:
    dev = shared / "datasets" / "street-garbage-dev" / "images"
    first, second = sorted(p.name for p in dev.iterdir())[:2]
    csv = tmp_path / "labels.csv"
    csv.write_text(f"file,garbage,camera,day\n{first},yes,gate-3,2026-12-01\n{second},maybe,,\nmissing.jpg,no,x,y\n")
    a, b = labelled_photos(dev, csv)
    assert (a.garbage, a.camera, a.day) == (True, "gate-3", "2026-12-01")
    assert b.garbage is None and b.camera == "images" and b.day == ""
    (tmp_path / "bad.csv").write_text("name,garbage\nx.jpg,yes\n")
    with pytest.raises(ConfigError, match="`file` column"):
        labelled_photos(dev, tmp_path / "bad.csv")


def test_a_review_export_gives_its_boxes_days_and_verdicts(tmp_path: Path, demo_bikes_scanned: Path) -> None:
    from detector.apps.review import export
    from detector.output.reviews import Reviews
    from detector.output.store import EventStore

    out = tmp_path / "out"
    shutil.copytree(demo_bikes_scanned, out)
    store = EventStore(out / "events.sqlite")
    first, second = sorted(e["id"] for e in store.events())
    Reviews(store, out).review(first, "confirmed", None, "ann")
    Reviews(store, out).review(second, "rejected", "not a violation", "ann")
    export(Reviews(store).reviewed(), out, tmp_path / "export")
    store.close()
    [photo] = export_photos(tmp_path / "export")  # both bikes at their best in one frame: one image
    assert photo.camera == "demo-bikes" and len(photo.day) == 10
    assert list(photo.boxes) == ["bike"] and len(photo.boxes["bike"]) == 1  # the confirmed one only
    assert photo.garbage is None  # no garbage verdict on it: it tells the garbage look nothing
    with pytest.raises(ConfigError, match="not a review export"):
        export_photos(tmp_path)
