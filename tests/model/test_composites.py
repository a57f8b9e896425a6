import numpy as np

from detector.config.card import VendingRule
from detector.detections import Detections
from detector.model.composites import attach_vendors, compose_vending, pool_vending

RULE = VendingRule(stall_classes=["umbrella", "dining table"], produce_classes=["apple", "orange", "banana"],
                   min_produce=3, person_class="person", max_gap=0.5)


def dets(items: list[tuple[str, list[float], float]]) -> Detections:
    return Detections(xyxy=np.array([b for _, b, _ in items], np.float32).reshape(-1, 4),
                      confidence=[c for *_, c in items], class_name=[n for n, *_ in items], kind=[""] * len(items))


PERSON = ("person", [100, 100, 150, 300], 0.9)  # 200 px tall


def test_stall_with_person_beside_it_is_vending() -> None:
    out = compose_vending(dets([PERSON, ("umbrella", [180, 80, 320, 200], 0.6),
                                ("dining table", [170, 200, 330, 280], 0.5)]), RULE)
    # The umbrella over the table is one stall; the box is the stall's, confidence the weaker link.
    assert len(out) == 1
    assert out.xyxy[0].tolist() == [170, 80, 330, 280]
    assert out.kind.tolist() == ["vending"] and out.confidence[0] == np.float32(0.6)
    assert out.class_name[0] == "dining table+umbrella+person"


def test_stall_without_person_or_too_far_is_not_vending() -> None:
    assert len(compose_vending(dets([("umbrella", [180, 80, 320, 200], 0.6)]), RULE)) == 0
    far = compose_vending(dets([PERSON, ("umbrella", [300, 80, 420, 200], 0.6)]), RULE)  # gap 150 > 100
    assert len(far) == 0


def test_produce_cluster_makes_a_stall() -> None:
    fruit = [("apple", [200 + 30 * i, 250, 225 + 30 * i, 275], 0.5) for i in range(3)]
    out = compose_vending(dets([PERSON, *fruit]), RULE)
    assert len(out) == 1 and out.class_name[0] == "produce+person"
    assert out.xyxy[0].tolist() == [200, 250, 285, 275]
    two = compose_vending(dets([PERSON, *fruit[:2]]), RULE)
    assert len(two) == 0
    scattered = [("apple", [200 + 300 * i, 250, 225 + 300 * i, 275], 0.5) for i in range(3)]
    assert len(compose_vending(dets([PERSON, *scattered]), RULE)) == 0


def test_each_vending_box_carries_the_person_nearest_to_it() -> None:
    far_person = ("person", [10, 100, 60, 300], 0.95)  # 120 px from the stall: within 0.5 heights too
    out = compose_vending(dets([far_person, PERSON, ("umbrella", [180, 80, 320, 200], 0.6)]), RULE)
    assert out.extra("vendor_xyxy").tolist() == [PERSON[1]]  # the nearer one, though less confident
    assert out.confidence[0] == np.float32(0.6)  # confidence still the weaker link with the best person


def test_a_learnt_vending_box_gets_its_vendor_too() -> None:
    learnt = dets([PERSON, ("vending", [160, 150, 300, 300], 0.7), ("vending", [600, 150, 700, 300], 0.7)])
    learnt = learnt.with_(kind=np.array(["", "vending", "vending"], dtype=object))
    out = attach_vendors(learnt, RULE.person_class, RULE.max_gap)
    assert out.extra("vendor_xyxy")[1].tolist() == PERSON[1]
    vendors = out.extra("vendor_xyxy")
    assert np.isnan(vendors[2]).all() and np.isnan(vendors[0]).all()  # nobody near; not vending


def test_a_card_with_both_reports_one_box_per_stall_the_learnt_one() -> None:
    """The learnt box covers table and goods; COCO saw the parasol above it: one stall, not two events."""
    frame = dets([PERSON, ("vending", [170, 200, 330, 300], 0.7), ("umbrella", [175, 120, 325, 198], 0.6),
                  ("umbrella", [600, 120, 700, 200], 0.6), ("person", [600, 200, 650, 400], 0.9)])
    frame = frame.with_(kind=np.array(["", "vending", "", "", ""], dtype=object))
    pooled = pool_vending(frame, RULE)
    vending = pooled[pooled.kind == "vending"]
    assert vending.class_name.tolist() == ["vending", "umbrella+person"]  # the far parasol has its own vendor
    assert vending.xyxy[1].tolist() == [600, 120, 700, 200]
