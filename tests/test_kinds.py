"""One registry of kinds: a fourth kind added by one `register()` call (and a card class mapped to it) is a
kind everywhere: camera files and cards take it, a detection of it becomes an event, its work order names
it, its snapshot box has its colour and `review export` gives it a class."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
import yaml

from detector.camera.pipeline import CameraPipeline
from detector.config.camera import CameraConfig
from detector.config.card import ModelCard
from detector.detections import Detections, Frame
from detector.kinds import Category, Kind, KindSpec, export_classes, register, unregister
from detector.output.messages import work_order
from detector.output.outputs import Outputs

DEBRIS_COLOUR = (0, 255, 0)  # BGR: pure green, found nowhere else on a grey frame
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def debris() -> Iterator[Kind]:
    kind = register(KindSpec("debris", "建筑垃圾", "construction debris", "01-07", DEBRIS_COLOUR, 20.0,
                             aliases=("rubble",)), category=Category("01-07", "建筑垃圾"))
    yield kind
    unregister("debris")


def test_a_fourth_kind_from_the_registry_alone_is_reported_everywhere(debris: Kind, tmp_path: Path) -> None:
    from detector.apps.review import export

    camera = CameraConfig.model_validate({"camera": {"id": "site-1", "timezone": "Asia/Shanghai"},
                                          "rules": {"debris": {"min_dwell_s": 20}}})
    card = ModelCard.model_validate({"name": "debris-card", "weights": "x.pt",
                                     "classes": {"rubble": {"kind": "debris", "confidence": 0.3}}})
    assert camera.kinds() == [debris] and card.kinds() == {debris}
    assert card.category("rubble", debris) == {"code": "01-07", "name": "建筑垃圾"}
    assert export_classes()[-1] == debris and debris.spec.dwell_s == 20.0

    with Outputs.open(tmp_path / "events.sqlite", tmp_path, {camera.id: []}) as outputs:
        pipeline = CameraPipeline(camera, card, outputs.recorder(camera, remember_closed=True), model_sha256="s")
        pile = Detections(xyxy=[[100, 100, 180, 160]], confidence=[0.9], class_name=["rubble"], kind=["debris"])
        for i in range(12):  # 33 s at 3 s a frame: past the 20 s dwell
            image = np.full((240, 320, 3), 128, np.uint8)
            frame = Frame(image=image, pts_s=3.0 * i, time=T0 + timedelta(seconds=3 * i), source_uri="site.mp4",
                          index=i)
            pipeline.process(frame, pile)
        pipeline.end()
        events = outputs.write_final()
    assert [e["kind"] for e in events] == ["debris"] and events[0]["category"]["code"] == "01-07"
    event = events[0]
    order = work_order(event, camera)
    assert order["title"]["en"].startswith("Construction debris at") and "建筑垃圾" in order["description"]["zh"]

    snapshot = cv2.imread(str(tmp_path / event["snapshot"]))
    x1, y1, _, _ = (round(v) for v in event["bbox"])
    edge = snapshot[y1 + 6, x1 - 1: x1 + 2].astype(int)  # on the box's left edge, below its label
    assert np.abs(edge - np.array(DEBRIS_COLOUR)).sum(axis=1).min() < 60

    confirmed = {**event, "review": {"verdict": "confirmed", "reason": None}}
    counts = export([confirmed], tmp_path, tmp_path / "export")
    names = yaml.safe_load((tmp_path / "export" / "data.yaml").read_text())["names"]
    assert names == {0: "garbage", 1: "bike", 2: "vending", 3: "debris"}
    label = next((tmp_path / "export" / "labels").rglob("*.txt")).read_text()
    assert label.startswith("3 ") and sum(n for k, n in counts.items() if k[0] == "debris") == 1


def test_a_kind_taken_away_takes_its_category_with_it() -> None:
    from detector.kinds import CATEGORIES

    register(KindSpec("debris", "建筑垃圾", "construction debris", "01-07", DEBRIS_COLOUR, 20.0),
             category=Category("01-07", "建筑垃圾"))
    unregister("debris")
    assert "01-07" not in CATEGORIES and "05-06" in CATEGORIES


def test_an_unknown_kind_is_refused_where_it_is_read(debris: Kind) -> None:
    with pytest.raises(ValueError, match="unknown value 'cars'"):
        Kind("cars")
    with pytest.raises(ValueError, match="registered already"):
        register(KindSpec("debris", "x", "y", "01-07", (0, 0, 0), 1.0))
    with pytest.raises(ValueError, match="built-in"):
        unregister("bike")
    default = CameraConfig.model_validate({"camera": {"id": "c", "timezone": "UTC"}})  # no rules: every kind's
    assert [k.value for k in default.rules] == ["debris", "bike", "garbage", "vending"]  # shortest dwell first
    with pytest.raises(ValueError, match="unknown value 'debri', expected 'vending', 'garbage', 'bike' or 'debris'"):
        CameraConfig.model_validate({"camera": {"id": "c", "timezone": "UTC"}, "rules": {"debri": {"min_dwell_s": 5}}})
