import re
from pathlib import Path

import pytest

from detector.config.camera import CameraConfig, load_camera, parse_hours
from detector.errors import ConfigError
from testkit import REPO

VALID = """
camera: {id: cam-01, timezone: Asia/Shanghai}
default: prohibited
zones:
  - id: bike-bay-1
    type: allowed
    kinds: [bike]
    polygon: [[0.10, 0.55], [0.45, 0.55], [0.45, 0.95], [0.10, 0.95]]
rules:
  bike: {min_dwell_s: 60}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cam.yaml"
    path.write_text(text)
    return path


def test_bundled_example_is_valid() -> None:
    camera = load_camera(REPO / "zones" / "example.yaml")
    assert camera.id == "cam-01"
    assert [z.id for z in camera.zones] == ["bike-bay-1", "night-market", "shop-window"]


def test_valid_file_loads(tmp_path: Path) -> None:
    camera = load_camera(write(tmp_path, VALID))
    assert camera.zones[0].is_fraction
    assert [k.value for k in camera.rules] == ["bike"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("min_dwell_s: 60", "min_dwel_s: 60"), "rules.bike.min_dwel_s: unknown key"),
        (("kinds: [bike]", "kinds: [cars]"), "zones.0.kinds.0: unknown value 'cars'"),
        (("  bike: {min_dwell_s: 60}", "  cars: {min_dwell_s: 60}"), "rules.cars"),
        (("Asia/Shanghai", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (("[[0.10, 0.55], [0.45, 0.55], [0.45, 0.95], [0.10, 0.95]]", "[[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]"),
         "zone 'bike-bay-1': polygon"),  # all points on one line
        (("type: allowed", "type: maybe"), "zones.0.type: unknown value 'maybe'"),
    ],
)
def test_errors_name_file_and_problem(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    path = write(tmp_path, VALID.replace(*edit))
    with pytest.raises(ConfigError) as info:
        load_camera(path)
    message = str(info.value)
    assert str(path) in message and expected in message and "fix:" in message
    assert "\n" not in message


def test_self_intersecting_polygon_is_named(tmp_path: Path) -> None:
    bowtie = "[[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]"
    path = write(tmp_path, VALID.replace("[[0.10, 0.55], [0.45, 0.55], [0.45, 0.95], [0.10, 0.95]]", bowtie))
    with pytest.raises(ConfigError, match=r"zone 'bike-bay-1': polygon is not valid \(Self-intersection"):
        load_camera(path)


def test_too_few_points(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("[[0.10, 0.55], [0.45, 0.55], [0.45, 0.95], [0.10, 0.95]]",
                                         "[[0.1, 0.1], [0.5, 0.5]]"))
    with pytest.raises(ConfigError, match="polygon has 2 points, needs at least 3"):
        load_camera(path)


def test_duplicate_zone_ids(tmp_path: Path) -> None:
    zone = VALID.split("zones:\n")[1].split("rules:")[0]
    path = write(tmp_path, VALID.replace(zone, zone + zone))
    with pytest.raises(ConfigError, match="zone id 'bike-bay-1' is used twice"):
        load_camera(path)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="camera file not found"):
        load_camera(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_camera(write(tmp_path, "camera: {id: [\n"))
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_camera(write(tmp_path, "- a\n- b\n"))


def test_bad_hours(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not HH:MM-HH:MM"):
        parse_hours("5pm-9pm")
    with pytest.raises(ValueError, match="impossible time"):
        parse_hours("17:00-25:00")
    path = write(tmp_path, VALID.replace("kinds: [bike]", "kinds: [bike]\n    hours: ['17:00-17:00']"))
    with pytest.raises(ConfigError, match="is empty"):
        load_camera(path)


def test_schema_has_descriptions() -> None:
    schema = CameraConfig.model_json_schema()
    zone = schema["$defs"]["Zone"]["properties"]
    assert all("description" in field for field in zone.values())


@pytest.mark.parametrize(("polygon", "expected"), [
    ("[[0.1, 0.1], [0.3, 0.3], [0.5, 0.5]]", "polygon has no area (its points lie on one line)"),
    ("[[0.1, 0.55], [1.5, 0.55], [0.45, 0.95]]", "looks like fractions of the frame but has 1.5, above 1"),
])
def test_collinear_points_and_a_fraction_typo_are_named(tmp_path: Path, polygon: str, expected: str) -> None:
    path = write(tmp_path, VALID.replace("[[0.10, 0.55], [0.45, 0.55], [0.45, 0.95], [0.10, 0.95]]", polygon))
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_camera(path)


def test_a_pixel_zone_outside_the_frame_is_warned_about(caplog) -> None:
    from datetime import UTC, datetime

    import numpy as np

    from detector.camera.zones import ZoneFilter
    from detector.detections import Detections

    camera = CameraConfig.model_validate({
        "camera": {"id": "cam", "timezone": "UTC"},
        "zones": [{"id": "far", "type": "allowed", "polygon": [[2000, 0], [2600, 0], [2600, 400]]}]})
    dets = Detections(xyxy=np.array([[10, 10, 50, 50]], np.float32), confidence=[0.9], kind=["bike"])
    ZoneFilter(camera).filter(dets, (1280, 720), datetime.now(UTC))
    assert "zone 'far' lies wholly outside the 1280x720 frame" in caplog.text
