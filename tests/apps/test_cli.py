"""The command line on bad input: one-line errors naming the file and the fix, the right exit code,
and nothing half-written."""

import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from detector.cli import main
from testkit import REPO

CAMERA = """
camera: {id: cam-bikes, timezone: Europe/Amsterdam}
zones:
  - {id: bike-bay, type: allowed, kinds: [bike], polygon: [[0.52, 0.0], [1.0, 0.0], [1.0, 1.0], [0.52, 1.0]]}
rules:
  bike: {min_dwell_s: 30}
"""


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def streetwatch(*args: str, env: dict | None = None) -> Result:
    """`streetwatch ARGS` in this process (no process is needed to check messages and exit codes), from
    the repository root, with `env` added to the environment."""
    out, err = io.StringIO(), io.StringIO()
    saved, cwd = dict(os.environ), os.getcwd()
    os.environ.update(env or {})
    os.chdir(REPO)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse: usage errors, --version
                code = e.code if isinstance(e.code, int) else 2
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def camera_file(tmp_path: Path) -> Path:
    path = tmp_path / "cam.yaml"
    path.write_text(CAMERA)
    return path


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_config_check_and_schema(camera_file: Path) -> None:
    ok = streetwatch("config", "check", str(camera_file), "detector/cards/coco.yaml", "zones/example.yaml")
    assert ok.returncode == 0 and ok.stdout.count(": ok") == 3
    schema = streetwatch("config", "schema")
    assert schema.returncode == 0 and "zones" in json.loads(schema.stdout)["properties"]
    card_schema = streetwatch("config", "schema", "--card")
    assert "classes" in json.loads(card_schema.stdout)["properties"]


def test_config_check_bad_file(tmp_path: Path, camera_file: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(CAMERA.replace("[0.52, 1.0]]", "[0.6, 0.5], [0.52, 1.0], [1.0, 0.2]]"))
    result = streetwatch("config", "check", str(bad))
    assert result.returncode == 2
    [line] = error_lines(result)
    assert str(bad) in line and "zone 'bike-bay': polygon is not valid" in line and "fix:" in line


def test_scan_missing_video(tmp_path: Path, camera_file: Path) -> None:
    result = streetwatch("scan", str(tmp_path / "nope.mp4"), "--camera", str(camera_file), "--out", str(tmp_path))
    assert result.returncode == 2
    assert f"error: {tmp_path / 'nope.mp4'}: video not found — fix: check the path" in result.stderr
    assert not (tmp_path / "events.sqlite").exists()


def test_scan_corrupt_video(tmp_path: Path, camera_file: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(random.Random(0).randbytes(100_000))  # seeded: some random bytes parse as audio-only
    result = streetwatch("scan", str(corrupt), "--camera", str(camera_file), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert f"{corrupt}: cannot be read as a video" in result.stderr


def test_scan_truncated_and_missing_among_good(tmp_path: Path, camera_file: Path, videos) -> None:
    from testkit import media

    whole = media.still_video(tmp_path / "whole.mkv", [(media.other_scene(REPO.parent / "shared"), 20.0)])
    truncated = tmp_path / "truncated.mkv"
    data = whole.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    result = streetwatch("scan", str(truncated), str(tmp_path / "gone.mp4"), str(videos["bikes_90s"]),
                         "--camera", str(camera_file), "--out", str(out), "--start", "2026-11-20T10:00:00")
    assert result.returncode == 1, result.stderr
    assert "video not found" in result.stdout and "truncated" in result.stdout
    assert len((out / "events.jsonl").read_text().splitlines()) == 2  # the good video was fully processed


def test_scan_missing_weights(tmp_path: Path, camera_file: Path, videos) -> None:
    result = streetwatch("scan", str(videos["bikes_20s"]), "--camera", str(camera_file), "--out", str(tmp_path),
                         "--weights", str(tmp_path / "none.pt"))
    assert result.returncode == 2 and "weights not found" in result.stderr and "--weights" in result.stderr
    card = tmp_path / "card.yaml"
    card.write_text((REPO / "detector" / "cards" / "coco.yaml").read_text().replace("yolov8n.pt", "yolov99x.pt"))
    result = streetwatch("scan", str(videos["bikes_20s"]), "--camera", str(camera_file), "--out", str(tmp_path),
                         "--model", str(card), env={"STREETWATCH_WEIGHTS_DIR": str(tmp_path)})
    [line] = error_lines(result)
    assert result.returncode == 2 and "weights 'yolov99x.pt' not found; looked in" in line
    assert str(tmp_path) in line and "shared/models" in line and "STREETWATCH_WEIGHTS_DIR" in line


def test_scan_corrupt_weights(tmp_path: Path, camera_file: Path, videos) -> None:
    weights = tmp_path / "broken.pt"
    weights.write_bytes(b"not a checkpoint")
    result = streetwatch("scan", str(videos["bikes_20s"]), "--camera", str(camera_file), "--out", str(tmp_path),
                         "--weights", str(weights))
    [line] = error_lines(result)
    assert result.returncode == 2 and f"{weights}: cannot load weights" in line


def test_scan_unknown_kind_in_card(tmp_path: Path, camera_file: Path, videos) -> None:
    card = tmp_path / "card.yaml"
    card.write_text((REPO / "detector" / "cards" / "coco.yaml").read_text().replace("kind: bike, confidence: 0.30",
                                                                        "kind: bikes, confidence: 0.30"))
    result = streetwatch("scan", str(videos["bikes_20s"]), "--camera", str(camera_file), "--out", str(tmp_path),
                         "--model", str(card))
    [line] = error_lines(result)
    assert result.returncode == 2 and "classes.bicycle.kind: unknown value 'bikes'" in line


def test_interrupt_closes_and_saves_open_events(tmp_path: Path, camera_file: Path, videos) -> None:
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "detector.cli", "scan", str(videos["bikes_90s"]), "--camera", str(camera_file),
         "--out", str(out), "--batch", "1", "--fps", "2", "--static-recheck-s", "0"],  # every sample inferred:
        # 60 of them after the first event opens, time to see it still running
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    rows = 0
    while time.monotonic() < deadline and rows == 0 and process.poll() is None:
        time.sleep(0.2)
        if (out / "events.sqlite").exists():
            try:
                with sqlite3.connect(out / "events.sqlite") as db:
                    rows = db.execute("SELECT count(*) FROM events").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    assert rows > 0, "no event was opened before the deadline"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    with sqlite3.connect(out / "events.sqlite") as db:
        events = db.execute("SELECT status, snapshot, clean_frame, crop FROM events").fetchall()
    assert events and all(status == "closed" for status, *_ in events)
    for _, *images in events:
        for image in images:
            assert (out / image).read_bytes()[-2:] == b"\xff\xd9"  # complete JPEGs
    assert len((out / "events.jsonl").read_text().splitlines()) == len(events)


def test_scan_out_is_a_file(tmp_path: Path, camera_file: Path, videos) -> None:
    out = tmp_path / "taken"
    out.write_text("not a folder")
    result = streetwatch("scan", str(videos["bikes_20s"]), "--camera", str(camera_file), "--out", str(out))
    [line] = error_lines(result)
    assert result.returncode == 2 and f"{out}: --out is a file, not a folder" in line


def test_version() -> None:
    result = streetwatch("--version")
    assert result.returncode == 0 and result.stdout.startswith("streetwatch ") and "unknown" not in result.stdout


def test_a_wheel_install_finds_its_cards_and_scans_from_another_folder(tmp_path: Path, shared: Path) -> None:
    """`pip install .` carries the bundled cards and the trained head; weights come from the environment."""
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = wheels.glob("streetwatch-*.whl")
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "cam.yaml").write_text((REPO / "zones" / "example.yaml").read_text())
    env = {**os.environ, "PYTHONPATH": str(site), "STREETWATCH_WEIGHTS_DIR": str(shared / "models")}
    command = [sys.executable, "-m", "detector.cli", "scan", str(shared / "videos" / "vtest.avi"),
               "--camera", "cam.yaml", "--out", "out", "--fps", "0.5"]
    result = subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "total" in result.stdout and (elsewhere / "out" / "events.sqlite").exists()
    where = subprocess.run([sys.executable, "-c", "import detector; print(detector.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True)
    assert where.stdout.startswith(str(site))  # the wheel's copy ran, not the checkout


@pytest.mark.parametrize(("option", "value"), [("--fps", "nan"), ("--static-recheck-s", "-1"),
                                               ("--deliver-timeout", "inf"), ("--batch", "0")])
def test_options_that_are_not_finite_or_in_range_are_refused_before_any_work(option: str, value: str,
                                                                             camera_file: Path) -> None:
    result = streetwatch("scan", "x.mp4", "--camera", str(camera_file), "--out", "/tmp/never", option, value)
    assert result.returncode == 2 and f"argument {option}" in result.stderr and "Traceback" not in result.stderr
