from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
from shapely import Polygon

from detector.camera.zones import ZoneFilter, anchor_inside
from detector.config.camera import Anchor, AnchorMode, CameraConfig
from detector.detections import Detections

SHANGHAI = ZoneInfo("Asia/Shanghai")
FRAME = (1000, 1000)
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI)


def camera(zones: list[dict], default: str = "prohibited", **extra) -> CameraConfig:
    return CameraConfig.model_validate({
        "camera": {"id": "cam", "timezone": "Asia/Shanghai"},
        "default": default,
        "zones": zones,
        "rules": {"bike": {"min_dwell_s": 60}, "vending": {"min_dwell_s": 180}, "garbage": {"min_dwell_s": 120}},
        **extra,
    })


def dets(boxes: list[list[float]], kinds: list[str] | None = None) -> Detections:
    kinds = kinds or ["bike"] * len(boxes)
    return Detections(xyxy=np.array(boxes, np.float32), confidence=[0.9] * len(boxes),
                      class_name=["x"] * len(boxes), kind=kinds)


LEFT_HALF = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]


def test_anchor_modes() -> None:
    square = Polygon([(0, 0), (100, 0), (100, 100), (0, 100)])
    # Box whose centre is inside the square but whose bottom edge is below it; 40% of it inside.
    box = np.array([[20, 50, 60, 150]], np.float32)
    assert not anchor_inside(square, box, Anchor(mode=AnchorMode.BOTTOM_CENTER))[0]
    assert anchor_inside(square, box, Anchor(mode=AnchorMode.CENTER))[0]
    assert anchor_inside(square, box, Anchor(mode=AnchorMode.OVERLAP, min_overlap=0.5))[0]
    assert not anchor_inside(square, box, Anchor(mode=AnchorMode.OVERLAP, min_overlap=0.6))[0]


def test_bay_allows_only_inside_and_only_its_kind() -> None:
    cam = camera([{"id": "bay", "type": "allowed", "kinds": ["bike"], "polygon": LEFT_HALF}])
    found = ZoneFilter(cam).filter(
        dets([[100, 100, 200, 300], [600, 100, 700, 300], [100, 100, 200, 300]], ["bike", "bike", "garbage"]),
        FRAME, NOON,
    )
    # The bike in the bay is parked; the bike outside and the garbage in the bay are violations.
    assert found.xyxy[:, 0].tolist() == [600, 100]
    assert found.kind.tolist() == ["bike", "garbage"]
    assert found.zone_id.tolist() == ["", ""]


def test_precedence_ignore_then_allowed_then_prohibited() -> None:
    cam = camera(
        [
            {"id": "no-parking", "type": "prohibited", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]},
            {"id": "bay", "type": "allowed", "kinds": ["bike"], "polygon": LEFT_HALF},
            {"id": "mask", "type": "ignore", "polygon": [[0.8, 0], [1, 0], [1, 1], [0.8, 1]]},
        ],
        default="allowed",
    )
    found = ZoneFilter(cam).filter(dets([[100, 0, 200, 500], [600, 0, 700, 500], [900, 0, 950, 500]]),
                                   FRAME, NOON)
    assert found.xyxy[:, 0].tolist() == [600]
    assert found.zone_id.tolist() == ["no-parking"]


def test_default_allowed_keeps_only_prohibited_zones() -> None:
    cam = camera([{"id": "crossing", "type": "prohibited", "polygon": LEFT_HALF}], default="allowed")
    found = ZoneFilter(cam).filter(dets([[100, 0, 200, 500], [600, 0, 700, 500]]), FRAME, NOON)
    assert found.zone_id.tolist() == ["crossing"]


def test_pixel_polygons() -> None:
    cam = camera([{"id": "bay", "type": "allowed", "polygon": [[0, 0], [500, 0], [500, 1000], [0, 1000]]}])
    assert not cam.zones[0].is_fraction
    found = ZoneFilter(cam).filter(dets([[100, 0, 200, 500], [600, 0, 700, 500]]), FRAME, NOON)
    assert found.xyxy[:, 0].tolist() == [600]


def test_kinds_without_rules_are_dropped() -> None:
    cam = CameraConfig.model_validate({"camera": {"id": "c", "timezone": "UTC"}, "rules": {"bike": {"min_dwell_s": 1}}})
    found = ZoneFilter(cam).filter(dets([[0, 0, 10, 10], [0, 0, 10, 10]], ["bike", "vending"]), FRAME, NOON)
    assert found.kind.tolist() == ["bike"]


def market(hours: list[str], days: list[str] | None = None) -> ZoneFilter:
    zone = {"id": "market", "type": "allowed", "kinds": ["vending"], "polygon": LEFT_HALF, "hours": hours}
    if days:
        zone["days"] = days
    return ZoneFilter(camera([zone]))


def allowed_at(zf: ZoneFilter, when: datetime) -> bool:
    return len(zf.filter(dets([[100, 0, 200, 500]], ["vending"]), FRAME, when)) == 0


def test_market_hours_in_camera_local_time() -> None:
    zf = market(["17:00-21:30"])
    assert allowed_at(zf, datetime(2026, 11, 23, 18, 0, tzinfo=SHANGHAI))
    assert not allowed_at(zf, datetime(2026, 11, 23, 21, 30, tzinfo=SHANGHAI))  # end is exclusive
    assert not allowed_at(zf, datetime(2026, 11, 23, 16, 59, tzinfo=SHANGHAI))
    # 10:00 UTC is 18:00 in Shanghai: frame times in another zone are converted, not read as local.
    assert allowed_at(zf, datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    assert not allowed_at(zf, datetime(2026, 11, 23, 18, 0, tzinfo=UTC))


def test_hours_across_midnight_and_days() -> None:
    zf = market(["22:00-02:00"], days=["fri"])
    friday_night = datetime(2026, 11, 27, 23, 0, tzinfo=SHANGHAI)  # a Friday
    saturday_early = datetime(2026, 11, 28, 1, 30, tzinfo=SHANGHAI)  # still Friday's market
    saturday_night = datetime(2026, 11, 28, 23, 0, tzinfo=SHANGHAI)
    assert allowed_at(zf, friday_night)
    assert allowed_at(zf, saturday_early)
    assert not allowed_at(zf, saturday_night)
    assert not allowed_at(zf, datetime(2026, 11, 28, 2, 0, tzinfo=SHANGHAI))
    assert allowed_at(market(["22:00-24:00"]), datetime(2026, 11, 28, 23, 59, tzinfo=SHANGHAI))


def test_each_detection_is_explained_by_the_zone_that_decided_it() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    camera = CameraConfig.model_validate({
        "camera": {"id": "c", "timezone": "Asia/Shanghai"}, "default": "prohibited",
        "rules": {"bike": {"min_dwell_s": 60}, "vending": {"min_dwell_s": 60}},
        "zones": [{"id": "mask", "type": "ignore", "polygon": [[0, 0], [100, 0], [100, 100], [0, 100]]},
                  {"id": "bay", "type": "allowed", "kinds": ["bike"],
                   "polygon": [[200, 0], [300, 0], [300, 100], [200, 100]]},
                  {"id": "market", "type": "allowed", "kinds": ["vending"], "hours": ["17:00-21:30"],
                   "polygon": [[400, 0], [500, 0], [500, 100], [400, 100]]}]})
    dets = Detections(xyxy=np.array([[10, 10, 50, 90], [210, 10, 250, 90], [410, 10, 450, 90], [600, 10, 650, 90],
                                     [610, 10, 650, 90]], np.float32),
                      confidence=[0.9] * 5, kind=["bike", "bike", "vending", "bike", "garbage"])
    noon = datetime(2026, 12, 7, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    verdicts = ZoneFilter(camera).explain(dets, (800, 100), noon)
    assert [v for v, _ in verdicts] == [False, False, True, True, False]
    assert "inside ignore zone mask" in verdicts[0][1] and "allowed in zone bay" in verdicts[1][1]
    assert "allowed zone market applies only at 17:00-21:30, not at Mon 12:00" in verdicts[2][1]
    assert "the camera's default, prohibited" in verdicts[3][1] and "garbage is not reported" in verdicts[4][1]
