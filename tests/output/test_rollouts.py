"""Which card a camera group runs: promoted, rolled back once, and nowhere further back."""

import pytest

from detector.output.rollouts import RolloutRows
from detector.output.store import EventStore


def test_a_rollback_goes_to_the_card_before_and_no_further(tmp_path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    rows = RolloutRows(store)
    assert rows.active("north") is None
    rows.promote("north", "/cards/site-a.yaml", "ann", "better on the holdout", {"x": 1}, default="/cards/v4.yaml")
    rows.promote("north", "/cards/site-b.yaml", "ann", "better on the holdout")
    assert rows.active("north")["previous"] == "/cards/site-a.yaml"
    back = rows.rollback("north", "bob")
    assert back["card"] == "/cards/site-a.yaml" and back["rolled_back_from"] == "/cards/site-b.yaml"
    assert rows.active("north")["previous"] is None and rows.active("north")["changed_by"] == "bob"
    with pytest.raises(ValueError, match="no earlier card"):
        rows.rollback("north", "bob")  # going forward again is a promotion, with its guard
    with pytest.raises(ValueError, match="no earlier card"):
        rows.rollback("south", "bob")
    store.close()
