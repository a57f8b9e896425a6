"""Composite detections: violations a model has no class for, built from classes it has.

Vending from COCO: a stall-like object (umbrella, table, bench) or a cluster of produce, with a person
next to it. This module only says "a stall with a vendor is here in this frame"; that it *stays* (the
vendor lingers, the stall does not move) is the dwell rule's job, like for every other kind.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from detector.config.card import VendingRule
from detector.detections import Detections
from detector.geometry import box_gap, containment_matrix, union_box
from detector.kinds import VENDOR, Kind


def _groups(boxes: np.ndarray, linked: Callable[[int, int], bool]) -> list[list[int]]:
    """Connected components of boxes under a pairwise `linked(i, j)` relation."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if linked(i, j):
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _stall_candidates(dets: Detections, rule: VendingRule) -> list[tuple[np.ndarray, float, str]]:
    candidates = []
    stall = np.isin(dets.class_name.astype(str), rule.stall_classes)
    for i in np.flatnonzero(stall):
        candidates.append((dets.xyxy[i], float(dets.confidence[i]), str(dets.class_name[i])))
    produce = np.flatnonzero(np.isin(dets.class_name.astype(str), rule.produce_classes))
    if len(produce) >= rule.min_produce:
        boxes = dets.xyxy[produce]
        heights = boxes[:, 3] - boxes[:, 1]

        def near(i: int, j: int) -> bool:
            return box_gap(boxes[i], boxes[j]) <= max(heights[i], heights[j])

        for group in _groups(boxes, near):
            if len(group) >= rule.min_produce:
                conf = float(np.mean(dets.confidence[produce[group]]))
                candidates.append((union_box(boxes[group]), conf, "produce"))
    return candidates


def same_stall(a: np.ndarray, b: np.ndarray) -> bool:
    """Two boxes of one stall: overlapping (by a third of the smaller), or stacked (an umbrella right above a
    table, a learnt stall box under the canopy the COCO head saw)."""
    if containment_matrix(a[None], b[None])[0, 0] > 0.3:
        return True
    width = min(a[2], b[2]) - max(a[0], b[0])  # side by side: no overlap
    stacked = width >= 0.5 * min(a[2] - a[0], b[2] - b[0])
    return bool(stacked and box_gap(a, b) <= 0.1 * min(a[3] - a[1], b[3] - b[1]))


def compose_vending(dets: Detections, rule: VendingRule) -> Detections:
    """One `vending` box per stall (overlapping stall objects merged) that has a person beside it."""
    candidates = _stall_candidates(dets, rule)
    persons = np.flatnonzero(dets.class_name.astype(str) == rule.person_class)
    if not candidates or len(persons) == 0:
        return Detections()
    boxes = np.stack([c[0] for c in candidates])
    person_boxes = dets.xyxy[persons]
    out_boxes, out_conf, out_names, out_vendors = [], [], [], []
    for group in _groups(boxes, lambda i, j: same_stall(boxes[i], boxes[j])):
        stall_box = union_box(boxes[group])
        near = persons_near(stall_box, person_boxes, rule.max_gap)
        if len(near) == 0:
            continue
        stall_conf = max(candidates[i][1] for i in group)
        out_boxes.append(stall_box)
        out_conf.append(min(stall_conf, float(dets.confidence[persons[near]].max())))
        out_names.append("+".join(sorted({candidates[i][2] for i in group})) + "+person")
        out_vendors.append(person_boxes[near[0]])
    return Detections(
        xyxy=np.array(out_boxes, np.float32).reshape(-1, 4),
        confidence=np.array(out_conf, np.float32),
        class_name=np.array(out_names, dtype=object),
        kind=np.array([Kind.VENDING.value] * len(out_boxes), dtype=object),
        data={VENDOR: np.array(out_vendors, np.float32).reshape(-1, 4)},
    )


def pool_vending(dets: Detections, rule: VendingRule) -> Detections:
    """The frame's detections plus the composite stalls that no learnt vending box already covers: with a
    card that has both, the union, one box per stall (the learnt one)."""
    composite = compose_vending(dets, rule)
    learnt = dets.xyxy[dets.kind == Kind.VENDING.value]
    if len(learnt) and len(composite):
        composite = composite[np.array([not any(same_stall(c, b) for b in learnt) for c in composite.xyxy])]
    return Detections.merge([dets, composite])


def persons_near(stall: np.ndarray, persons: np.ndarray, max_gap: float) -> np.ndarray:
    """Indices of the persons within `max_gap` of their own height of a stall, nearest first (ties: the
    one overlapping it most, standing behind or at it)."""
    gaps = np.array([box_gap(stall, p) for p in persons], np.float32).reshape(-1)
    heights = persons[:, 3] - persons[:, 1]
    near = np.flatnonzero(gaps <= max_gap * heights)
    overlap = containment_matrix(persons[near], stall[None])[:, 0]
    return near[np.lexsort((-overlap, gaps[near]))]


def attach_vendors(dets: Detections, person_class: str, max_gap: float) -> Detections:
    """Vending boxes a model found itself (a learnt stall class) get the person nearest to them, as the
    composite ones have, so the camera's stay rule can tell a vendor from passers-by for both."""
    vendors = dets.extra(VENDOR).copy()
    own = np.flatnonzero((dets.kind == Kind.VENDING.value) & np.isnan(vendors[:, 0]))
    persons = dets.xyxy[dets.class_name.astype(str) == person_class]
    if len(own) == 0 or len(persons) == 0:
        return dets
    for i in own:
        near = persons_near(dets.xyxy[i], persons, max_gap)
        if len(near):
            vendors[i] = persons[near[0]]
    return dets.with_(data={**dets.data, VENDOR: vendors})
