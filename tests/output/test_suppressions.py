"""Rejections that stick, in the store: made by a rejection, lifted by an undo or a confirmation, counted."""

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from detector.camera.suppress import Hits
from detector.output.reviews import Reviews
from detector.output.store import EventStore, open_store
from detector.output.suppressions import SuppressionRows


@pytest.fixture
def out(demo_bikes_scanned: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(demo_bikes_scanned, copy)
    return copy


@pytest.fixture
def store(out: Path):
    store = open_store(out / "events.sqlite")
    yield store
    store.close()


def _ids(store: EventStore) -> list[str]:
    return sorted(e["id"] for e in store.events())


def test_a_rejection_sticks_with_the_picture_of_its_crop(store: EventStore, out: Path) -> None:
    first, _ = _ids(store)
    verdict = Reviews(store, out).review(first, "rejected", "not a violation", "ops")
    assert verdict["sticks"] is True and verdict["why_not"] is None
    event = next(e for e in store.events() if e["id"] == first)
    [(camera, [kept])] = SuppressionRows(store).active().items()
    assert camera == event["camera_id"] and kept.id == first and kept.kind == "bike"
    assert list(kept.bbox) == event["bbox"] and kept.signature.shape == (16, 16, 3)
    assert kept.since.tzinfo is not None
    assert SuppressionRows(store).active(["another-camera"]) == {}
    # A confirmation (a change of mind) lifts it; a second rejection puts it back.
    assert Reviews(store, out).review(first, "confirmed", None, "lead")["sticks"] is False
    assert SuppressionRows(store).active() == {}
    [lifted] = SuppressionRows(store).listing(lifted=True)
    assert lifted["lifted_by"] == "lead (confirmed)" and lifted["lifted_at"]
    Reviews(store, out).review(first, "rejected", "allowed here", "ops")
    [again] = SuppressionRows(store).listing()
    assert again["reason"] == "allowed here" and again["lifted_at"] is None


def test_what_does_not_stick_says_why(store: EventStore, out: Path) -> None:
    first, second = _ids(store)
    assert Reviews(store, out).review(first, "rejected", "duplicate", "ops")["why_not"] == (
        "a 'duplicate' rejection does not stick")
    assert Reviews(store).review(second, "rejected", "other", "ops")["why_not"] == (  # no folder: no crop
        "no crop of the event to remember its picture by")
    crop = next(e for e in store.events() if e["id"] == second)["crop"]
    (out / crop).write_bytes(b"not a jpeg")
    assert Reviews(store, out).review(second, "rejected", "other", "ops")["sticks"] is False
    assert SuppressionRows(store).listing(lifted=True) == []


def test_hits_add_up_and_the_undo_is_counted_once(store: EventStore, out: Path) -> None:
    first, _ = _ids(store)
    Reviews(store, out).review(first, "rejected", "not a violation", "ops")
    rows = SuppressionRows(store)
    t = datetime.fromisoformat("2026-12-08T09:00:00+08:00")
    rows.record({first: Hits(2, t)})
    rows.record({first: Hits(1, t - timedelta(hours=1))})  # an older hit does not move last_hit back
    [row] = rows.listing()
    assert row["tracks"] == 3 and row["last_hit"] == "2026-12-08T01:00:00.000+00:00"
    assert rows.counts() == {row["camera_id"]: {"active": 1, "tracks": 3}}
    assert rows.undo(first, "ops") is True and rows.undo(first, "ops") is False
    assert rows.counts() == {row["camera_id"]: {"active": 0, "tracks": 3}}


def test_a_rejection_changed_to_a_reason_that_does_not_stick_lifts_the_earlier_one(store: EventStore,
                                                                                    out: Path) -> None:
    first, _ = _ids(store)
    Reviews(store, out).review(first, "rejected", "not a violation", "ops")
    assert Reviews(store, out).review(first, "rejected", "duplicate", "lead")["sticks"] is False
    assert SuppressionRows(store).active() == {}
