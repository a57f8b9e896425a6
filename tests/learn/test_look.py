"""Teaching the second look, pure logic: how candidates are labelled and how thresholds are chosen."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detector.learn import look
from detector.learn.look import Found, labelled_boxes
from detector.learn.samples import Photo


def test_candidates_are_labelled_by_what_they_overlap() -> None:
    photo = Photo(Path("x.jpg"), {"garbage": np.array([[0, 0, 10, 10]], np.float32),
                                       "garbage_bin": np.array([[50, 50, 60, 60]], np.float32)}, True)
    assert look.label_of(np.array([0, 0, 10, 11], np.float32), photo) == look.VIOLATION
    assert look.label_of(np.array([50, 50, 60, 61], np.float32), photo) == look.BIN
    assert look.label_of(np.array([100, 100, 120, 120], np.float32), photo) == look.BACKGROUND
    assert look.label_of(np.array([0, 0, 20, 20], np.float32), photo) is None  # partly a pile: left out


def test_thresholds_are_chosen_for_the_best_worst_case_recall_within_the_cap() -> None:
    yes, no = Photo(Path("y"), {}, True), Photo(Path("n"), {}, False)
    # a pile the detector is unsure of that the look believes; a bin the detector likes that the look doubts
    photos = [yes, yes, no, no]
    per = [[("garbage", 0.2, 0.9)], [("overflow", 0.7, 0.8)], [("garbage", 0.6, 0.2)], []]
    thr, t, got = look.choose({"a": (photos, per)}, cap=0.0)
    assert got["a"] == (1.0, 0.0) and 0.2 < t <= 0.8 and thr["garbage"] <= 0.2
    assert look.rates(per, photos, {"garbage": 0.05, "overflow": 0.05}, 0.05) == (1.0, 0.5)


def test_a_photo_known_at_image_level_gives_its_candidates_its_verdict() -> None:
    found: Found = (np.array([[0, 0, 20, 20], [30, 30, 60, 60]], np.float32), np.array(["garbage", "overflow"]),
                    np.array([0.3, 0.6], np.float32))
    assert [y for _, y in labelled_boxes(found, Photo(Path("y"), {}, True))] == [look.VIOLATION] * 2
    assert [y for _, y in labelled_boxes(found, Photo(Path("n"), {}, False))] == [look.BACKGROUND] * 2
    tiny = (np.array([[0, 0, 5, 5]], np.float32), np.array(["garbage"]), np.array([0.9], np.float32))
    assert labelled_boxes(tiny, Photo(Path("y"), {}, True)) == []  # under 8 px: no crop worth learning
