"""The stay-beside-the-goods rule on synthetic sightings (pure logic: no model, no video)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import ValidationError

from detector.camera.dwell import DwellRule
from detector.camera.vendor import VendorWatch
from detector.config.camera import CameraConfig
from detector.detections import Detections
from detector.kinds import Kind

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
STALL = [300.0, 200.0, 420.0, 280.0]
NOBODY = [np.nan] * 4


def person(x: float, height: float = 170.0) -> list[float]:
    """A person standing with their feet at (x, 300)."""
    return [x - 25, 300 - height, x + 25, 300]


def stall_frame(vendor: list[float]) -> Detections:
    return Detections(xyxy=[STALL], confidence=[0.8], class_name=["umbrella+person"], kind=["vending"],
                      track_id=[1], data={"vendor_xyxy": [vendor]})


def rules(**stay: float) -> dict:
    camera = CameraConfig.model_validate({
        "camera": {"id": "cam", "timezone": "Asia/Shanghai"},
        "rules": {"vending": {"min_dwell_s": 30, "vendor_stays": stay}},
    })
    return camera.rules


def rule(**stay: float) -> DwellRule:
    return DwellRule(rules(**stay))


def run(dwell: DwellRule, vendors: list[list[float]], fps: float = 2.0) -> int:
    """Feed one stall with the given person beside it on each frame; the frame index it confirms at, or -1."""
    for i, vendor in enumerate(vendors):
        if dwell.update(stall_frame(vendor), T0 + timedelta(seconds=i / fps)):
            return i
    return -1


def test_vendor_standing_by_the_goods_confirms_after_the_dwell() -> None:
    rng = np.random.default_rng(0)
    shuffling = [person(360 + rng.normal(0, 15)) for _ in range(80)]  # moves about a little: ~0.1 heights
    assert run(rule(), shuffling) == 60  # 30 s at 2 fps


def test_passers_by_in_every_frame_are_not_a_vendor() -> None:
    # Someone walks past the stall in every frame (1.4 m/s, about 0.4 heights a frame at 2 fps), but none stays:
    # each passer is near one spot for two frames at most.
    walkers = [person(250 + (i % 6) * 70) for i in range(120)]
    assert run(rule(), walkers) == -1
    assert run(DwellRule({Kind.VENDING: rule().rules["vending"].model_copy(update={"vendor_stays": None})}),
               walkers) == 60  # without the rule the stall "dwells": why the rule exists


def test_vendor_arriving_late_confirms_once_the_window_holds_them() -> None:
    late = [NOBODY if i < 40 else person(340) for i in range(200)]  # the goods were set out first
    # 80 % of the window's 61 frames (30 s at 2 fps, both ends): 49 frames of the vendor, the 49th at 40 + 48
    assert run(rule(min_share=0.8), late) == 40 + 48


def test_one_missed_frame_is_bridged_and_longer_breaks_are_not() -> None:
    flickering = [person(360) if i % 2 == 0 else NOBODY for i in range(120)]  # the detector misses every other
    assert run(rule(min_share=0.5), flickering) == 60
    rarely = [person(360) if i % 3 == 0 else NOBODY for i in range(120)]  # seen for a moment every 1.5 s
    assert run(rule(min_share=0.3), rarely) == -1


def test_short_visits_to_the_stall_do_not_add_up_to_a_stay() -> None:
    visits = [person(360) if i % 16 < 12 else NOBODY for i in range(160)]  # 6 s at the stall, 2 s away
    assert run(rule(min_stay_s=10, min_share=0.3), visits) == -1
    assert run(rule(min_stay_s=5, min_share=0.5), visits) == 60


def test_watch_forgets_frames_older_than_its_window() -> None:
    watch = VendorWatch(window_s=10)
    for i in range(40):
        watch.sample(T0 + timedelta(seconds=i))
        if i >= 30:
            watch.see(np.array(person(300), np.float32))
    assert watch.share(0.5, min_stay_s=5) == pytest.approx(10 / 11)  # frames 29..39 kept, 30..39 the vendor's
    assert watch.share(0.5, min_stay_s=10) == 0.0  # 9 s of stay


def test_vendor_stays_belongs_to_the_vending_rule_and_fits_its_dwell() -> None:
    with pytest.raises(ValidationError, match="only the vending rule"):
        CameraConfig.model_validate({"camera": {"id": "cam", "timezone": "UTC"},
                                     "rules": {"bike": {"min_dwell_s": 30, "vendor_stays": {}}}})
    with pytest.raises(ValidationError, match="longer than min_dwell_s"):
        CameraConfig.model_validate({"camera": {"id": "cam", "timezone": "UTC"},
                                     "rules": {"vending": {"min_dwell_s": 30, "vendor_stays": {"min_stay_s": 40}}}})


def test_a_rule_switched_on_mid_dwell_needs_a_whole_window_of_watching() -> None:
    plain = {Kind.VENDING: rules()[Kind.VENDING].model_copy(update={"vendor_stays": None})}
    dwell = DwellRule(plain)
    for i in range(50):  # 25 s with the rule off: no watch, and not yet 30 s
        assert not dwell.update(stall_frame(person(360)), T0 + timedelta(seconds=i / 2))
    dwell.reconfigure(rules())
    frames = range(50, 200)
    confirmed_at = next(i for i in frames if dwell.update(stall_frame(person(360)), T0 + timedelta(seconds=i / 2)))
    assert confirmed_at == 50 + 60  # 30 s of watching from the switch, not 10 s of stay

