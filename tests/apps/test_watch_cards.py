"""The card switch of a camera group's watch process (pure logic: the loading is replaced by a slow stub)."""

import threading
import time

from detector.apps.watch import cards
from detector.apps.watch.cards import CardSwitch, Ready


class _Store:
    """The one query CardSwitch makes, answered from a variable."""


def test_a_load_the_store_moved_on_from_is_not_switched_to(monkeypatch) -> None:
    gates = {"b": threading.Event(), "c": threading.Event()}
    monkeypatch.setattr(cards, "load", lambda card, runtime: (gates[card].wait(5), Ready(card, None, None))[1])
    switch = CardSwitch("north", "a")
    named = {"card": "b"}
    monkeypatch.setattr(switch, "wanted", lambda store: named["card"])
    switch.check(_Store())  # loading b ...
    named["card"] = "c"
    switch.check(_Store())  # ... the store names c meanwhile
    gates["c"].set()
    deadline = time.monotonic() + 5
    ready = None
    while ready is None and time.monotonic() < deadline:
        ready = switch.take()
        time.sleep(0.01)
    assert ready is not None and ready.source == "c" and switch.running == "c"
    gates["b"].set()  # b finishes late: never taken
    time.sleep(0.1)
    assert switch.take() is None


def test_a_card_that_failed_is_tried_again_once_the_store_named_another(monkeypatch) -> None:
    calls = []

    def failing(card, runtime):
        calls.append(card)
        raise FileNotFoundError(card)

    monkeypatch.setattr(cards, "load", failing)
    switch = CardSwitch("north", "a")
    named = {"card": "x"}
    monkeypatch.setattr(switch, "wanted", lambda store: named["card"])
    for card in ("x", "x", None, "x"):
        named["card"] = card
        switch.check(_Store())
        deadline = time.monotonic() + 2
        while card == "x" and switch.failed != "x" and time.monotonic() < deadline:
            time.sleep(0.01)
    assert calls == ["x", "x"]  # not again while the store still names it; again once it named another


def test_a_group_card_that_does_not_load_at_start_leaves_the_files_card_running(tmp_path, coco_card, caplog):
    from detector.apps.watch.worker import Worker
    from detector.config.watch import WatchConfig
    from detector.output.rollouts import RolloutRows
    from detector.output.store import EventStore

    config = WatchConfig.model_validate({"out": str(tmp_path), "card_group": "north", "cameras": [
        {"camera": {"id": "c1", "timezone": "UTC"}, "source": str(tmp_path / "none.mp4")}]})
    store = EventStore(tmp_path / "events.sqlite")
    RolloutRows(store).promote("north", str(tmp_path / "gone.yaml"), "ann", "a card since deleted")
    worker = Worker(config, coco_card, detector=object())  # type: ignore[arg-type]
    worker._take_group_card(store)
    assert worker.loaded is coco_card and worker.cards.failed == str(tmp_path / "gone.yaml")
    assert "does not load, the running one stays" in caplog.text
    store.close()
