from datetime import datetime
from pathlib import Path

import pytest

from detector.apps.rescan.archive import fingerprint, walk
from detector.config.archive import PathPattern, load_archive
from detector.errors import ConfigError


def test_pattern_gives_camera_and_start():
    pattern = PathPattern("{camera}/{date:%Y%m%d}/{time:%H%M%S}.mp4")
    assert pattern.match("cam-1/20261120/081530.mp4") == ("cam-1", datetime(2026, 11, 20, 8, 15, 30))
    assert pattern.match("cam-1/20261120/081530.mkv") is None
    assert pattern.match("cam-1/2026112/081530.mp4") is None
    assert PathPattern("{any}/{camera}_{start:%Y-%m-%dT%H-%M-%S}.mkv").match("nvr2/gate_2026-01-02T03-04-05.mkv") == (
        "gate", datetime(2026, 1, 2, 3, 4, 5))
    assert PathPattern("{camera}/{any}.mp4").match("gate/clip 1.mp4") == ("gate", None)


@pytest.mark.parametrize("text, message", [
    ("{date:%Y%m%d}.mp4", "needs a {camera}"),
    ("{camera}/{date:%Y%m%d}.mp4", "go together"),
    ("{camera}/{date}.mp4", "needs a strftime format"),
    ("{camera}/{when:%H}.mp4", "unknown field"),
    ("{camera}/{start:%b}.mp4", "not supported"),
])
def test_bad_patterns_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        PathPattern(text)


def test_walk_maps_files_and_reports_the_rest(tmp_path: Path):
    (tmp_path / "cam.yaml").write_text("camera: {id: gate, timezone: Asia/Shanghai}\n")
    (tmp_path / "archive.yaml").write_text('pattern: "{camera}/{start:%Y%m%d-%H%M%S}.mp4"\n'
                                           "cameras: {north: cam.yaml}\n")
    root = tmp_path / "videos"
    for name in ("north/20261120-080000.mp4", "south/20261120-080000.mp4", "north/readme.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x" * 10)
    files, ignored = walk(load_archive(root, tmp_path / "archive.yaml"))
    assert [(f.relative, f.camera_key, f.start.isoformat()) for f in files] == [
        ("north/20261120-080000.mp4", "north", "2026-11-20T08:00:00+08:00")]
    assert len(ignored) == 2 and "camera 'south' is not in the archive file" in " ".join(ignored)


def test_bad_archive_file_names_file_and_fix(tmp_path: Path):
    (tmp_path / "archive.yaml").write_text('pattern: "{camera}.mp4"\ncameras: {a: a.yaml}\nextra: 1\n')
    with pytest.raises(ConfigError, match="extra: unknown key"):
        load_archive(tmp_path, tmp_path / "archive.yaml")


def test_fingerprint_sees_changes_at_either_end(tmp_path: Path):
    path = tmp_path / "f.bin"
    data = bytearray(3 << 20)
    path.write_bytes(data)
    base = fingerprint(path)
    data[-1] = 1
    path.write_bytes(data)
    assert fingerprint(path) != base
    path.write_bytes(data[:-1])
    assert fingerprint(path) not in (base,)
