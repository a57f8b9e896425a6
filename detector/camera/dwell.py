"""Persistence: a detected object becomes a violation only after it stays in place long enough.

A bike wheeled past, a bag carried by, a person with an umbrella walking through never reach their
kind's `min_dwell_s` at one place. Missed detections are tolerated (the track lives on and the share of
frames with a hit must stay above `min_seen_ratio`); moving further than `max_shift` from where the
object settled starts its dwell again, as a new placement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from detector.camera.vendor import VendorWatch
from detector.config.camera import Rule
from detector.detections import Detections
from detector.geometry import iou_matrix
from detector.kinds import VENDOR, Kind


@dataclass
class Placement:
    """One object settled at one place; becomes a violation when it has dwelt long enough."""

    track_id: int
    since: datetime
    box: np.ndarray
    kind: str = ""
    samples: int = 0  # sampled frames since it settled, seen or not
    hits: int = 0  # of those, the frames it was detected in
    confirmed: bool = False
    vendor: VendorWatch | None = None  # with a rule's vendor_stays: who stands beside the stall

    @property
    def key(self) -> str:
        """Identifies this placement of this track, so a bike moved elsewhere is a new violation."""
        return f"{self.track_id}@{self.since.timestamp():.3f}"


@dataclass(frozen=True)
class Violation:
    placement: Placement
    detection: Detections  # one row


class DwellRule:
    """`update()` takes tracked detections of one frame and returns the confirmed violations in it."""

    def __init__(self, rules: dict[Kind, Rule], zone_dwell: dict[str, float] | None = None) -> None:
        """`zone_dwell`: prohibited zones' own dwell (zone id -> seconds), instead of their kind's."""
        self.rules = {k.value: r for k, r in rules.items()}
        self.zone_dwell = dict(zone_dwell or {})
        self.placements: dict[int, Placement] = {}

    def reconfigure(self, rules: dict[Kind, Rule], zone_dwell: dict[str, float] | None = None) -> None:
        """New rules for the placements to come and those still dwelling; confirmed ones stay confirmed.
        A stall still dwelling is watched over the new window (a watch started late must cover it whole)."""
        self.rules = {k.value: r for k, r in rules.items()}
        self.zone_dwell = dict(zone_dwell or {})
        for placement in self.placements.values():
            rule = self.rules.get(placement.kind)
            if placement.vendor is not None and not placement.confirmed:
                if rule is None or rule.vendor_stays is None:
                    placement.vendor = None
                else:
                    placement.vendor.window = timedelta(seconds=rule.min_dwell_s)

    def adopt(self, track_id: int, since: datetime, box: np.ndarray) -> Placement:
        """A placement whose dwell was proven before (a resumed event): confirmed from the start."""
        placement = Placement(track_id=track_id, since=since, box=box.copy(), confirmed=True)
        self.placements[track_id] = placement
        return placement

    def filter(self, dets: Detections) -> Detections:
        """Drop boxes below a camera's raised `min_confidence` for their kind."""
        floor = np.array(
            [self.rules[k].min_confidence or 0.0 if k in self.rules else 1.1 for k in dets.kind.astype(str)],
            dtype=np.float32,
        )
        return dets[dets.confidence >= floor]

    def update(self, dets: Detections, time: datetime) -> list[Violation]:
        """Detections held over frames the static-scene gate did not infer count as seen, vendors included:
        the gate found the picture unchanged."""
        for placement in self.placements.values():
            placement.samples += 1
            if placement.vendor is not None:
                placement.vendor.sample(time)
        violations = []
        for i in range(len(dets)):
            track_id = int(dets.track_id[i])
            rule = self.rules[str(dets.kind[i])]
            box = dets.xyxy[i]
            known = self.placements.get(track_id)
            if known is not None and iou_matrix(known.box[None], box[None])[0, 0] >= 1 - rule.max_shift:
                placement = known
            else:
                placement = Placement(track_id=track_id, since=time, box=box.copy(), kind=str(dets.kind[i]),
                                      samples=1)
                self.placements[track_id] = placement
            placement.hits += 1
            if rule.vendor_stays is not None and not placement.confirmed:
                if placement.vendor is None:
                    placement.vendor = VendorWatch(rule.min_dwell_s)
                    placement.vendor.sample(time)
                placement.vendor.see(dets.extra(VENDOR)[i])
            dwell = self.zone_dwell.get(str(dets.zone_id[i]), rule.min_dwell_s)
            if not placement.confirmed and (time - placement.since).total_seconds() >= dwell:
                placement.confirmed = _dwelt(placement, rule)
                if placement.confirmed:
                    placement.vendor = None  # proven; the event goes on whoever stands there now
            if placement.confirmed:
                violations.append(Violation(placement, dets[i]))
        return violations

    def forget(self, track_ids: list[int]) -> None:
        for track_id in track_ids:
            self.placements.pop(track_id, None)

    def clear(self) -> None:
        """Forget every placement (end of input, or the camera now shows another scene)."""
        self.placements.clear()


def _dwelt(placement: Placement, rule: Rule) -> bool:
    """Seen in enough of the dwell's frames and, where the rule asks, with a vendor staying beside it."""
    if placement.hits / placement.samples < rule.min_seen_ratio:
        return False
    stay = rule.vendor_stays
    if stay is None:
        return True
    watch = placement.vendor
    return watch is not None and watch.covers() and watch.share(stay.radius, stay.min_stay_s) >= stay.min_share
