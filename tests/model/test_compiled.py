"""The default runtime: the card's network (base + trained head) compiled to OpenVINO once, then cached."""

from __future__ import annotations

import logging
import sqlite3
import sys
from pathlib import Path

import pytest

from detector.cli import main
from detector.model.compiled import READY, for_runtime
from detector.model.weights import load_card
from tests.apps.test_cli import CAMERA  # the parked-bike camera: two bikes outside the bay


def events(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "events.sqlite") as db:
        return db.execute("SELECT id, first_seen, last_seen, zone_id, model_card FROM events ORDER BY id").fetchall()


def test_the_compiled_default_card_gives_pytorchs_events_and_is_compiled_once(tmp_path, videos, monkeypatch):
    monkeypatch.setenv("STREETWATCH_CACHE", str(tmp_path / "cache"))
    camera = tmp_path / "cam.yaml"
    camera.write_text(CAMERA)
    scan = ["scan", str(videos["bikes_90s"]), "--camera", str(camera), "--start", "2026-11-20T10:00:00"]
    assert main([*scan, "--out", str(tmp_path / "torch"), "--runtime", "pytorch"]) == 0
    assert main([*scan, "--out", str(tmp_path / "ov"), "--runtime", "auto"]) == 0
    [export] = (tmp_path / "cache").glob("streetwatch-v4-*_openvino_model")
    assert (export / READY).exists()
    reference, compiled = events(tmp_path / "torch"), events(tmp_path / "ov")
    assert len(reference) == 2 and [e[:4] for e in compiled] == [e[:4] for e in reference]  # same ids and times
    assert {e[4] for e in compiled} == {"streetwatch-v4-openvino"} and {e[4] for e in reference} == {"streetwatch-v4"}
    stamp = (export / READY).stat().st_mtime_ns
    assert main(["models", "export"]) == 0  # ahead of time: already there, not made again
    assert (export / READY).stat().st_mtime_ns == stamp


def test_without_openvino_the_card_runs_on_pytorch_and_says_why(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import fails as when the package is missing
    loaded = load_card("coco")
    with caplog.at_level(logging.WARNING):
        assert for_runtime(loaded, "auto") is loaded
    assert "runs on PyTorch: OpenVINO is not installed (pip install openvino)" in caplog.text
    from detector.errors import WeightsError

    with pytest.raises(WeightsError, match="cannot run coco-yolov8n on OpenVINO"):
        for_runtime(loaded, "openvino")


def test_an_install_without_torch_and_no_compiled_card_is_one_error_with_the_fix(tmp_path, monkeypatch) -> None:
    from detector.errors import WeightsError
    from detector.model import compiled

    monkeypatch.setenv("STREETWATCH_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(compiled, "_has_torch", lambda: False)  # as in an install of the compiled runtime only
    with pytest.raises(WeightsError, match=r"not compiled in .* and this install has no torch") as error:
        for_runtime(load_card("streetwatch-v4"), "auto")
    assert "streetwatch models export" in str(error.value) and not (tmp_path / "empty").exists()
