"""scripts/build_vending_dataset.py on a tiny fixture: a bare git repository made here, a manifest pointing at it.

No real photos and no network: three small synthetic images are committed to a temporary bare repository laid
out as the `fetch` tool lays out its mirrors (OWNER+NAME/repo), so the test checks the rebuild itself — labels,
split folders, the perceptual-hash dedupe across splits and the one-line error for a missing mirror.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from testkit import script

build_vending = script("build_vending_dataset")
COLUMNS = ["repo", "commit", "path", "license", "camera", "split", "boxes"]


def git(*args: str, cwd: Path) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "HOME": str(cwd), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def scene(seed: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """A blocky random picture: different seeds give far-apart perceptual hashes."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(blocks, size, interpolation=cv2.INTER_NEAREST)


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, str]:
    """tmp/mirrors/someone+stalls/repo: a bare repository with stall.jpg, copy.png (stall.jpg resized), empty.jpg."""
    work = tmp_path / "work"
    (work / "img").mkdir(parents=True)
    cv2.imwrite(str(work / "img" / "stall.jpg"), scene(1))
    cv2.imwrite(str(work / "img" / "copy.png"), cv2.resize(scene(1), (200, 150)))
    cv2.imwrite(str(work / "img" / "empty.jpg"), scene(2))
    (work / "README.md").write_text("not an image\n")
    git("init", "-q", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-qm", "images", cwd=work)
    commit = git("rev-parse", "HEAD", cwd=work).strip()
    mirrors = tmp_path / "mirrors"
    (mirrors / "someone+stalls").mkdir(parents=True)
    git("clone", "-q", "--bare", str(work), str(mirrors / "someone+stalls" / "repo"), cwd=tmp_path)
    return mirrors, commit


def manifest(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([COLUMNS, *rows])
    return path


def run(tmp_path: Path, mirrors: Path, rows: list[list[str]]) -> tuple[int, Path]:
    out = tmp_path / "out"
    code = build_vending.main(["--manifest", str(manifest(tmp_path / "vending.csv", rows)), "--mirrors", str(mirrors),
                               "--out", str(out), "--no-shared"])
    return code, out


def test_builds_labels_splits_and_drops_a_copy_across_splits(tmp_path: Path, mirror: tuple[Path, str],
                                                            capsys: pytest.CaptureFixture) -> None:
    mirrors, commit = mirror
    rows = [["someone/stalls", commit, "img/stall.jpg", "MIT", "cctv", "test", "16 12 96 72;100 60 160 120"],
            ["someone/stalls", commit, "img/copy.png", "MIT", "phone", "train", "20 15 120 90"],
            ["someone/stalls", commit, "img/empty.jpg", "MIT", "dashcam", "val", ""]]
    code, out = run(tmp_path, mirrors, rows)
    assert code == 0
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["path"] == "." and data["names"] == {0: "vending"} and data["test"] == "images/test"
    test_images = sorted((out / "images" / "test").iterdir())
    assert len(test_images) == 1 and test_images[0].read_bytes() == (tmp_path / "work/img/stall.jpg").read_bytes()
    label = (out / "labels" / "test" / f"{test_images[0].stem}.txt").read_text().split("\n")
    first = [float(v) for v in label[0].split()]
    assert first == pytest.approx([0, 56 / 160, 42 / 120, 80 / 160, 60 / 120], abs=1e-6)
    assert len([line for line in label if line]) == 2
    assert list((out / "images" / "train").iterdir()) == []  # copy.png is stall.jpg resized: left out of train
    negative = next((out / "labels" / "val").iterdir())
    assert negative.read_text() == ""  # a hard negative: an image with an empty label file
    printed = capsys.readouterr().out
    assert "left out 1 (train: a copy of a photo in another split" in printed
    table = [" ".join(line.split()) for line in printed.splitlines()]
    assert "test cctv 1 0" in table and "val dashcam 0 1" in table and "test all 1 0 2" in table
    sources = list(csv.DictReader((out / "sources.csv").open()))
    assert [(s["split"], s["camera"], s["vending"]) for s in sources] == [("test", "cctv", "yes"),
                                                                         ("val", "dashcam", "no")]


def test_a_missing_mirror_is_one_line_naming_the_fetch(tmp_path: Path, mirror: tuple[Path, str],
                                                       capsys: pytest.CaptureFixture) -> None:
    mirrors, commit = mirror
    code, _ = run(tmp_path, mirrors, [["nobody/absent", commit, "x.jpg", "", "web", "train", ""]])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "nobody/absent" in err and "fetch github:nobody/absent" in err


def test_a_missing_path_or_a_non_image_is_a_clear_error(tmp_path: Path, mirror: tuple[Path, str],
                                                        capsys: pytest.CaptureFixture) -> None:
    mirrors, commit = mirror
    assert run(tmp_path, mirrors, [["someone/stalls", commit, "img/gone.jpg", "", "web", "train", ""]])[0] == 2
    err = capsys.readouterr().err
    assert "someone/stalls@" in err and "img/gone.jpg" in err and "fetch github:someone/stalls" in err
    assert run(tmp_path, mirrors, [["someone/stalls", commit, "README.md", "", "web", "train", ""]])[0] == 2
    assert "does not decode as an image" in capsys.readouterr().err
