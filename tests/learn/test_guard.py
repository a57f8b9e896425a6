"""A learnt card is promoted only when it is better on the holdout and keeps its recall on the references."""

from detector.learn.guard import promotable


def _report(old_holdout, new_holdout, refs=((0.80, 0.79),)) -> dict:
    def fig(recall, alarms):
        return {"recall": recall, "false_alarms": alarms, "photos": 40}

    old = {"holdout": fig(*old_holdout), **{f"reference:r{i}": fig(o, 0.1) for i, (o, _) in enumerate(refs)}}
    new = {"holdout": fig(*new_holdout), **{f"reference:r{i}": fig(n, 0.1) for i, (_, n) in enumerate(refs)}}
    return {"garbage": {"old": old, "new": new}}


def test_more_recall_at_no_more_alarms_or_fewer_alarms_at_no_less_recall_is_better() -> None:
    assert promotable(_report((0.5, 0.1), (0.7, 0.1)))[0]
    assert promotable(_report((0.5, 0.2), (0.5, 0.1)))[0]


def test_a_trade_a_tie_or_a_lost_reference_is_not() -> None:
    ok, reasons = promotable(_report((0.32, 0.0), (0.48, 0.06)))  # recall for false alarms: the simulated site's
    assert not ok and "not better on both" in reasons[0]
    assert not promotable(_report((0.5, 0.1), (0.5, 0.1)))[0]
    ok, reasons = promotable(_report((0.5, 0.1), (0.7, 0.1), refs=((0.80, 0.77),)))
    assert not ok and "more than 0.02 worse" in reasons[1]
    assert not promotable({"garbage": {"old": {}, "new": {}}})[0]
