"""`streetwatch learn` end to end on real photos with the default card: two days of a simulated site, the new
card written and loadable, a rerun that resumes from its cache, and the inputs it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detector.cli import main
from testkit import script


@pytest.fixture(scope="module")
def site(tmp_path_factory, shared: Path) -> tuple[Path, Path]:
    """16 of street-garbage-dev's photos as two days of one camera (yes and no in both)."""
    out = tmp_path_factory.mktemp("site")
    labels = script("simulate_site").two_days(shared / "datasets" / "street-garbage-dev" / "labels.csv", out, 16)
    return shared / "datasets" / "street-garbage-dev" / "images", labels


def _learn(out: Path, site: tuple[Path, Path], shared: Path) -> int:
    cn = shared / "datasets" / "cn-street-garbage"
    return main(["learn", "--out", str(out), "--photos", str(site[0]), "--labels", str(site[1]), "--keep", str(cn),
                 "--keep-sample", "6", "--reference", str(cn), "--reference-limit", "6", "--epochs", "5",
                 "--holdout-share", "0.5"])


@pytest.fixture(scope="module")
def learnt(tmp_path_factory, site, shared) -> Path:
    out = tmp_path_factory.mktemp("learnt")
    assert _learn(out, site, shared) == 0
    return out


def test_a_learnt_card_is_promoted_only_when_better_and_rolled_back(tmp_path, learnt, capsys) -> None:
    from detector.learn.guard import promotable

    report = json.loads((learnt / "report.json").read_text())
    ok, _ = promotable(report)
    events = ["--events", str(tmp_path)]
    assert main(["models", "promote", str(learnt), "--group", "north", *events]) == (0 if ok else 1)
    printed = capsys.readouterr().out
    assert "holdout: recall" in printed and "cn-street-garbage: recall" in printed
    assert main(["models", "promote", str(learnt), "--group", "south", "--force", *events]) == 0
    assert main(["models", "list", *events]) == 0
    listed = capsys.readouterr().out
    assert "south: " in listed and "streetwatch-v4-site.yaml" in listed and "forced" in listed
    assert main(["models", "rollback", "--group", "south", *events]) == 0
    assert "back to " in (back := capsys.readouterr().out) and "cards/streetwatch-v4.yaml (was " in back
    assert main(["models", "rollback", "--group", "south", *events]) == 2  # once: nowhere further back
    assert "no earlier card" in capsys.readouterr().err
    assert main(["models", "promote", str(tmp_path), "--group", "north", *events]) == 2  # not a learn folder


def test_learn_writes_a_card_that_loads_and_a_report_old_against_new(learnt, site, shared, capsys) -> None:
    import cv2

    from detector.model.detector import Detector
    from detector.model.weights import load_card

    report = json.loads((learnt / "report.json").read_text())
    assert report["site"]["train_days"] == ["site|2026-12-01"] and report["site"]["holdout_days"] == ["site|2026-12-02"]
    for who in ("old", "new"):
        assert set(report["garbage"][who]) == {"train", "keep", "holdout", "reference:cn-street-garbage"}
        for figures in report["garbage"][who].values():
            assert 0 <= figures["false_alarms"] <= 1 and (figures["recall"] is None or 0 <= figures["recall"] <= 1)
    assert sum(report["crops"]) > 0 and report["thresholds"]["old"]["garbage"] == 0.15
    assert "| holdout |" in (learnt / "report.md").read_text()
    card = load_card(report["new_card"])
    assert card.card.name == "streetwatch-v4-site" and card.card.second_look is not None
    assert card.look_path == learnt / "streetwatch-v4-site.look.pt"
    [dets] = Detector(card).detect([cv2.imread(str(next(site[0].iterdir())))])  # it runs, its look included
    assert np.all(dets.confidence >= 0)
    cached = {p.name: p.stat().st_mtime_ns for p in (learnt / "cache").iterdir()}
    assert len(cached) >= 16
    capsys.readouterr()
    assert _learn(learnt, site, shared) == 0  # resumed: every photo's candidates come from the cache
    assert {p.name: p.stat().st_mtime_ns for p in (learnt / "cache").iterdir()} == cached
    assert "new card:" in capsys.readouterr().out


def test_learn_refuses_what_it_cannot_use_in_one_line(tmp_path, site, capsys) -> None:
    assert main(["learn", "--out", str(tmp_path)]) == 2
    assert "nothing to learn from" in capsys.readouterr().err
    assert main(["learn", "--out", str(tmp_path), "--photos", str(site[0])]) == 2
    assert "needs its --labels" in capsys.readouterr().err
    assert main(["learn", "--out", str(tmp_path), "--reviews", str(tmp_path)]) == 2
    assert "not a review export" in capsys.readouterr().err
    assert main(["learn", "--out", str(tmp_path), "--photos", str(site[0]), "--labels", str(site[1]),
                 "--holdout-share", "0.5", "--card", "nonexistent-card"]) == 2
    capsys.readouterr()
